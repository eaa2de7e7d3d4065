"""The ``boatyard`` command line: build a folder (or a GitHub tag / tarball URL) with a boatyard service.

It speaks only boatyard's public HTTP API (``README.md``, ``openapi.yaml``); it
imports nothing from the service's own packages.
"""

__version__ = "1.0.0"
