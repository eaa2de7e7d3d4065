"""Hostile archives for the tests and the benchmark, built in memory in well under a second.

The worst of them (:func:`extended_header_bomb`) is a 0.6 MB tar.gz whose GNU
long-name (or PAX) header declares 600 MiB: ``tarfile`` alone buffers the
whole header, taking a worker past 1.2 GiB of memory.  The gzip data is made
without compressing 600 MiB: a run of zeros compressed once after a full flush
is a valid deflate fragment, so it is repeated; only the CRC walks the bytes.
"""

from __future__ import annotations

import bz2
import gzip
import lzma
import struct
import tarfile
import zlib

MiB = 1024 * 1024
DOCKERFILE = b"FROM scratch\nCOPY . /\n"
_GZIP_HEADER = b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x02\xff"


def _member(name: str, data: bytes = b"", kind: bytes = tarfile.REGTYPE, linkname: str = "") -> bytes:
    info = tarfile.TarInfo(name)
    info.type, info.linkname, info.size, info.mode = kind, linkname, len(data), 0o644
    return info.tobuf(tarfile.GNU_FORMAT) + data + bytes(-len(data) % 512)


def _raw_deflate(data: bytes, final: bool = False) -> bytes:
    compressor = zlib.compressobj(9, zlib.DEFLATED, -15)
    return compressor.compress(data) + compressor.flush(zlib.Z_FINISH if final else zlib.Z_FULL_FLUSH)


def gzip_with_zeros(prefix: bytes, zero_mib: int, suffix: bytes) -> bytes:
    """gzip of ``prefix + zero_mib MiB of zeros + suffix``, built in O(output) time."""
    zeros = bytes(MiB)
    block = _raw_deflate(zeros)
    crc = zlib.crc32(prefix)
    for _ in range(zero_mib):
        crc = zlib.crc32(zeros, crc)
    crc = zlib.crc32(suffix, crc)
    size = len(prefix) + zero_mib * MiB + len(suffix)
    body = _raw_deflate(prefix) + block * zero_mib + _raw_deflate(suffix, final=True)
    return _GZIP_HEADER + body + struct.pack("<II", crc, size & 0xFFFFFFFF)


def extended_header_bomb(declared_mib: int = 600, kind: bytes = tarfile.GNUTYPE_LONGNAME) -> bytes:
    """A tar.gz with a Dockerfile, then an extended header (``L``, ``K``, ``x`` or ``g``) of ``declared_mib`` MiB of zeros."""
    header = tarfile.TarInfo("././@LongLink" if kind in (tarfile.GNUTYPE_LONGNAME, tarfile.GNUTYPE_LONGLINK) else "pax")
    header.type, header.size = kind, declared_mib * MiB
    prefix = _member("Dockerfile", DOCKERFILE) + header.tobuf(
        tarfile.USTAR_FORMAT if kind in (tarfile.XHDTYPE, tarfile.XGLTYPE) else tarfile.GNU_FORMAT
    )
    suffix = _member("after", b"x") + bytes(1024)
    return gzip_with_zeros(prefix, declared_mib, suffix)


def _zeros_header(zero_mib: int) -> bytes:
    info = tarfile.TarInfo("zeros")
    info.size = zero_mib * MiB
    return info.tobuf(tarfile.GNU_FORMAT)


def gzip_bomb(zero_mib: int = 1024) -> bytes:
    """A tar.gz with a Dockerfile and a file of ``zero_mib`` MiB of zeros (~1 MB per GiB)."""
    return gzip_with_zeros(_member("Dockerfile", DOCKERFILE) + _zeros_header(zero_mib), zero_mib, bytes(1024))


def bz2_bomb(zero_mib: int = 64) -> bytes:
    """A tar.bz2 with a Dockerfile and a file of ``zero_mib`` MiB of zeros (a few hundred bytes)."""
    compressor = bz2.BZ2Compressor(9)
    out = [compressor.compress(_member("Dockerfile", DOCKERFILE) + _zeros_header(zero_mib))]
    zeros = bytes(MiB)
    out += [compressor.compress(zeros) for _ in range(zero_mib)]
    out += [compressor.compress(bytes(1024)), compressor.flush()]
    return b"".join(out)


def xz_archive() -> bytes:
    """A small, honest tar.xz with a Dockerfile (xz is not an accepted format)."""
    return lzma.compress(_member("Dockerfile", DOCKERFILE) + bytes(1024))


def symlink_through_symlink() -> bytes:
    """A tar.gz with ``a -> .`` then ``a/b -> ..``: lexically inside, ``b`` lands at the root pointing out."""
    raw = _member("Dockerfile", DOCKERFILE) + _member("a", kind=tarfile.SYMTYPE, linkname=".")
    raw += _member("a/b", kind=tarfile.SYMTYPE, linkname="..") + bytes(1024)
    return gzip.compress(raw, mtime=0)


def corpus() -> dict[str, bytes]:
    """The memory-hungry hostile archives, by name (the benchmark refuses each and reports the worst)."""
    return {
        "GNU long name declaring 600 MiB": extended_header_bomb(600, tarfile.GNUTYPE_LONGNAME),
        "GNU long link declaring 600 MiB": extended_header_bomb(600, tarfile.GNUTYPE_LONGLINK),
        "PAX header declaring 600 MiB": extended_header_bomb(600, tarfile.XHDTYPE),
        "PAX global header declaring 600 MiB": extended_header_bomb(600, tarfile.XGLTYPE),
        "bz2 bomb of 64 MiB": bz2_bomb(64),
        "gzip bomb of 1 GiB": gzip_bomb(1024),
    }
