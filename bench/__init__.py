"""boatyard's benchmarks: ``python -m bench`` (``make bench``) writes BENCHMARKS.md.

Every scenario runs against a local stack started here (moto server, ``chalice
local``, real ``python -m worker`` processes) on free ports, with the real
Docker daemon and a registry of its own on 127.0.0.1:5060.  Comparisons with
the Docker CLI are interleaved in the same run and reported as ratios.
"""
