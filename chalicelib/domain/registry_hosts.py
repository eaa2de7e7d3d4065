"""Which registry hosts a build may push to: not the host's own network neighbourhood.

The daemon pushes (and pulls ``FROM`` images) from the build host's network, so an
``image_name`` naming ``127.0.0.1:2375``, ``10.0.0.5`` or ``169.254.169.254`` would
make the host talk to its loopback, its VPC or the metadata service.  Such hosts
are refused unless ``BOATYARD_ALLOW_PRIVATE_REGISTRIES`` is set (the local stack
and the tests, whose registry is on 127.0.0.1).

Refused: loopback, RFC 1918 / unique-local private, link-local, CGNAT
(100.64.0.0/10), unspecified, multicast and reserved addresses, written as plain
or IPv6 literals or in the legacy numeric forms a resolver still accepts
(``127.1``, ``2130706433``, ``0x7f.0.0.1``), and the ``localhost`` names.
Registry *names* that resolve to such addresses are not caught here (DNS can
change between this check and the push); the network rules of the build host
are the wall for those (see docs/security.md).
"""

from __future__ import annotations

import ipaddress
import re
import socket

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
_CGNAT = ipaddress.ip_network("100.64.0.0/10")
_LOCAL_NAMES = {"localhost", "localhost.localdomain", "ip6-localhost", "ip6-loopback"}
_LEGACY_NUMERIC = re.compile(r"(?:0x[0-9a-f]+|[0-9]+)(?:\.(?:0x[0-9a-f]+|[0-9]+)){0,3}", re.IGNORECASE)


def address_refusal(ip: IPAddress) -> str | None:
    """Why a registry at ``ip`` is refused (None when it is a public address)."""
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return address_refusal(ip.ipv4_mapped)
    checks = (
        (ip.is_unspecified, "an unspecified address"),
        (ip.is_loopback, "a loopback address"),
        (ip.is_link_local, "a link-local address (cloud metadata lives there)"),
        (ip in _CGNAT, "a carrier-grade NAT address (100.64.0.0/10)"),
        (ip.is_multicast, "a multicast address"),
        (ip.is_private, "a private address"),
        (ip.is_reserved or not ip.is_global, "an address that is not publicly routable"),
    )
    for hit, reason in checks:
        if hit:
            return reason
    return None


def _literal(host: str) -> IPAddress | None:
    """``host`` as an IP address when it is written as one (including legacy IPv4 forms)."""
    try:
        return ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        pass
    if _LEGACY_NUMERIC.fullmatch(host):
        try:
            return ipaddress.IPv4Address(socket.inet_aton(host))
        except OSError:
            return None
    return None


def split_host(domain: str) -> str:
    """The host part of an image reference's ``host[:port]`` domain (brackets kept off IPv6)."""
    if domain.startswith("["):
        return domain[1 : domain.index("]")] if "]" in domain else domain
    return domain.rsplit(":", 1)[0] if ":" in domain else domain


def registry_refusal(domain: str | None) -> str | None:
    """Why pushing to the registry ``domain`` (``host[:port]``; None = Docker Hub) is refused, else None."""
    if not domain:
        return None
    host = split_host(domain).rstrip(".").lower()
    if host in _LOCAL_NAMES or host.endswith(".localhost"):
        return f"registry host {host} is this machine (a loopback name)"
    ip = _literal(host)
    if ip is None:
        return None
    reason = address_refusal(ip)
    return f"registry host {host} is {reason}" if reason else None
