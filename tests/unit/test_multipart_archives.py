"""multipart/form-data parsing and archive sniffing, without AWS."""

from __future__ import annotations

import gzip
import io
import tarfile

import pytest
from urllib3 import encode_multipart_formdata

from chalicelib.api import multipart
from chalicelib.domain import archive_format
from chalicelib.domain.errors import InvalidRequest


def _tar(fmt: int) -> bytes:
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=fmt) as tar:
        info = tarfile.TarInfo("Dockerfile")
        info.size = 6
        tar.addfile(info, io.BytesIO(b"FROM x"))
    return raw.getvalue()


@pytest.mark.parametrize("fmt", [tarfile.USTAR_FORMAT, tarfile.GNU_FORMAT, tarfile.PAX_FORMAT])
def test_detects_tar_formats(fmt):
    data = _tar(fmt)
    assert archive_format.detect_format(data[:512]) == archive_format.ArchiveFormat.TAR
    assert archive_format.detect_format(gzip.compress(data)[:512]) == archive_format.ArchiveFormat.GZIP


def test_detects_v7_tar_by_checksum():
    block = bytearray(_tar(tarfile.USTAR_FORMAT)[:512])
    block[257:265] = b"\0" * 8  # remove the ustar magic, fix the checksum: a pre-POSIX header
    block[148:156] = b" " * 8
    block[148:156] = b"%06o\0 " % sum(block)
    assert archive_format.detect_format(bytes(block)) == archive_format.ArchiveFormat.TAR
    block[0:10] = b"corrupted!"
    assert archive_format.detect_format(bytes(block)) is None


@pytest.mark.parametrize(
    "data", [b"", b"\x1f", b"PK\x03\x04" + b"\0" * 600, b"BZh91AY&SY" + b"\0" * 600, b"\0" * 512, b"x" * 1000]
)
def test_rejects_other_data(data):
    assert archive_format.detect_format(data[:512]) is None


def test_dockerfile_context_holds_only_the_dockerfile():
    data = archive_format.dockerfile_context("FROM busybox\nCMD echo é\n")
    assert archive_format.detect_format(data) == archive_format.ArchiveFormat.GZIP
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as tar:
        members = tar.getmembers()
        assert [m.name for m in members] == ["Dockerfile"] and members[0].mode == 0o644
        assert tar.extractfile(members[0]).read() == "FROM busybox\nCMD echo é\n".encode()
    assert archive_format.dockerfile_context("FROM x") == archive_format.dockerfile_context("FROM x")  # deterministic


def test_parses_parts_with_binary_content_intact():
    binary = bytes(range(256)) * 4 + b"\r\n--not-the-boundary\r\n"
    body, content_type = encode_multipart_formdata(
        [("Json", ("j.json", b'{"a": 1}', "application/json")), ("TarFile", ("c.tar.gz", binary, "application/x-gzip"))]
    )
    parts = multipart.parse(body, content_type)
    assert [(p.name, p.filename, p.content_type) for p in parts] == [
        ("Json", "j.json", "application/json"),
        ("TarFile", "c.tar.gz", "application/x-gzip"),
    ]
    assert bytes(parts[1].data) == binary and bytes(parts[0].data) == b'{"a": 1}'


def test_hand_written_body_with_preamble_quoted_boundary_and_epilogue():
    body = (
        b"preamble\r\n--b0und\r\n"
        b'Content-Disposition: form-data; name="Json"\r\n\r\n{}\r\n'
        b"--b0und\r\n"
        b"Content-Disposition: form-data; name=TarFile; filename*=UTF-8''caf%C3%A9.tar\r\n\r\nDATA\r\n"
        b"--b0und--\r\nepilogue"
    )
    parts = multipart.parse(body, 'multipart/form-data; boundary="b0und"')
    assert [(p.name, p.filename, bytes(p.data)) for p in parts] == [
        ("Json", None, b"{}"),
        ("TarFile", "café.tar", b"DATA"),
    ]


@pytest.mark.parametrize(
    "body, content_type, why",
    [
        (b"--b\r\n\r\n", "multipart/form-data", "boundary"),
        (b"no boundary here", "multipart/form-data; boundary=b", "boundary"),
        (b"--b\r\nContent-Disposition: form-data; name=x\r\n\r\ndata", "multipart/form-data; boundary=b", "closing"),
        (
            b"--b\r\nContent-Type: text/plain\r\n\r\ndata\r\n--b--",
            "multipart/form-data; boundary=b",
            "Content-Disposition",
        ),
        (
            b"--b\r\nContent-Disposition: attachment; name=x\r\n\r\nd\r\n--b--",
            "multipart/form-data; boundary=b",
            "form-data",
        ),
        (
            b"--b\r\nContent-Disposition: form-data; name=x\r\nd\r\n--b--",
            "multipart/form-data; boundary=b",
            "blank line",
        ),
        (b"--bjunk\r\n", "multipart/form-data; boundary=b", "malformed"),
    ],
)
def test_malformed_bodies(body, content_type, why):
    with pytest.raises(InvalidRequest, match=why):
        multipart.parse(body, content_type)
