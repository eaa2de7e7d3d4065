"""One guarded HTTP POST to a subscriber: resolve once, refuse non-public addresses, pin the address.

The same policy as the worker's SSRF guard for ``tar_url`` (``worker/netguard.py``),
written on the standard library so the sender Lambda needs no extra package:

* the host is resolved once; if *any* address it resolves to is loopback, private,
  link-local (cloud metadata), CGNAT, multicast, unspecified or reserved, nothing is
  sent (:class:`Refused`, a final outcome);
* the connection goes to exactly the address that was checked (no second lookup, so no
  DNS rebinding), with TLS verified against the URL's host name (SNI);
* redirects are not followed (a 3xx is the answer), nothing is read beyond the status
  line and headers, and the whole exchange has a deadline: connect within
  ``connect_timeout``, the answer within ``read_timeout`` (a socket shut down by a
  timer, so a receiver trickling bytes cannot hold the sender either).

``allow_loopback`` (test and local stacks only) lets ``http://`` and loopback addresses
through; every other private or special address stays refused.
"""

from __future__ import annotations

import dataclasses
import http.client
import ipaddress
import socket
import ssl
import threading
import time
import urllib.parse

from chalicelib.domain.registry_hosts import address_refusal

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


class Refused(Exception):
    """The URL must not be called (scheme, or an address that is not public); never retried."""


@dataclasses.dataclass(frozen=True)
class Answer:
    """What one attempt got: an HTTP status, or an error (``timeout`` or a connection error)."""

    status: int | None
    error: str | None
    duration_ms: int
    timed_out: bool = False


def _refusal(ip: IPAddress, allow_loopback: bool) -> str | None:
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    if allow_loopback and ip.is_loopback:
        return None
    return address_refusal(ip)


def resolve(host: str, port: int, allow_loopback: bool) -> str:
    """The one address to connect to; :class:`Refused` when any address of ``host`` is not public."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise ConnectionError(f"cannot resolve {host}") from exc
    chosen = ""
    for info in infos:
        ip = ipaddress.ip_address(str(info[4][0]).split("%", 1)[0])
        reason = _refusal(ip, allow_loopback)
        if reason:
            raise Refused(f"{host} resolves to {ip}, {reason}; notifications go only to public internet addresses")
        chosen = chosen or str(ip)
    if not chosen:
        raise ConnectionError(f"cannot resolve {host}")
    return chosen


def check_scheme(url: str, allow_loopback: bool) -> urllib.parse.SplitResult:
    """https (or, with ``allow_loopback``, http) and a host; :class:`Refused` otherwise."""
    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in ("https", "http") or not parts.hostname:
        raise Refused("only https URLs with a host are called")
    if parts.scheme == "http" and not allow_loopback:
        raise Refused("only https URLs are called")
    return parts


def post(
    url: str,
    body: bytes,
    headers: dict[str, str],
    connect_timeout: float,
    read_timeout: float,
    allow_loopback: bool = False,
) -> Answer:
    """POST ``body`` to ``url`` through the guard; :class:`Refused` for a URL that must not be called."""
    parts = check_scheme(url, allow_loopback)
    host = parts.hostname or ""
    port = parts.port or (443 if parts.scheme == "https" else 80)
    if parts.scheme == "http":  # allow_loopback only: a plain-HTTP receiver must be this machine
        ip = resolve(host, port, allow_loopback=True)
        if not ipaddress.ip_address(ip).is_loopback:
            raise Refused("plain http is allowed only to loopback receivers")
    started = time.monotonic()
    try:
        ip = resolve(host, port, allow_loopback)
        sock = socket.create_connection((ip, port), timeout=connect_timeout)
    except Refused:
        raise
    except TimeoutError:
        return Answer(None, f"no connection within {connect_timeout:g} s", _ms(started), timed_out=True)
    except OSError as exc:
        return Answer(None, f"connection failed ({_os_error(exc)})", _ms(started))
    return _exchange(sock, parts, body, headers, read_timeout, started)


def _exchange(
    sock: socket.socket,
    parts: urllib.parse.SplitResult,
    body: bytes,
    headers: dict[str, str],
    read_timeout: float,
    started: float,
) -> Answer:
    """TLS (for https), the request and the status line on a connected, pinned socket, within ``read_timeout``."""
    host = parts.hostname or ""
    port = parts.port or (443 if parts.scheme == "https" else 80)
    timer = threading.Timer(read_timeout, _cut, args=(sock,))
    timer.daemon = True
    timer.start()
    try:
        sock.settimeout(read_timeout)
        if parts.scheme == "https":
            sock = ssl.create_default_context().wrap_socket(sock, server_hostname=host)
        cls = http.client.HTTPSConnection if parts.scheme == "https" else http.client.HTTPConnection
        conn = cls(host, port, timeout=read_timeout)  # the socket is ours (pinned): it never connects itself
        conn.sock = sock
        path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        conn.request(
            "POST", path, body=body, headers={**headers, "Content-Length": str(len(body)), "Connection": "close"}
        )
        response = conn.getresponse()
        status = int(response.status)
        response.close()
        return Answer(status, None, _ms(started))
    except TimeoutError:
        return Answer(None, f"no answer within {read_timeout:g} s", _ms(started), timed_out=True)
    except ssl.SSLError as exc:
        return Answer(None, f"TLS failed ({exc.reason or type(exc).__name__})", _ms(started))
    except (OSError, http.client.HTTPException) as exc:
        if time.monotonic() - started >= read_timeout:
            return Answer(None, f"no answer within {read_timeout:g} s", _ms(started), timed_out=True)
        return Answer(None, f"connection failed ({_os_error(exc)})", _ms(started))
    finally:
        timer.cancel()
        try:
            sock.close()
        except OSError:
            pass


def _cut(sock: socket.socket) -> None:
    """The deadline: shut the socket so a blocked read returns now."""
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass


def _ms(started: float) -> int:
    return int((time.monotonic() - started) * 1000)


def _os_error(exc: BaseException) -> str:
    name = type(exc).__name__
    if isinstance(exc, OSError) and exc.strerror:
        return f"{name}: {exc.strerror}"
    return name
