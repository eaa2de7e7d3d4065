"""The build host's firewall: what a RUN step on the Docker bridge may reach (the internet only).

Rendered as ``iptables`` commands by :func:`render_rules` and applied at boot by
``python -m worker.firewall --apply`` (the ``boatyard-build-firewall`` unit, see
infra/).  Two chains of our own, flushed and refilled on every run (idempotent):

* ``BOATYARD-BUILD``, jumped to from Docker's ``DOCKER-USER`` chain (FORWARD) for
  traffic coming in from the build bridge: replies pass, DNS to the host's
  resolvers passes, then RFC 1918, CGNAT, link-local (instance metadata),
  loopback, "this network", multicast and reserved destinations are rejected.
  Everything else (the internet) returns to Docker's own rules.
* ``BOATYARD-BUILD-HOST``, jumped to from ``INPUT`` for traffic from the bridge
  to the host's own addresses (172.17.0.1, the VPC address, published ports):
  only replies pass.

IPv6 from the bridge is refused outright (``ip6tables``): Docker gives the
default bridge no IPv6 here, so nothing legitimate uses it.

Daemon-side traffic (``FROM`` pulls and pushes, made by dockerd in the host's
network namespace) does not cross the bridge; image names on private
addresses are refused by the API and the worker instead (chalicelib/domain/registry_hosts.py).
"""

from __future__ import annotations

import argparse
import ipaddress
import re
import shlex
import subprocess
import sys
from pathlib import Path

CHAIN = "BOATYARD-BUILD"
HOST_CHAIN = "BOATYARD-BUILD-HOST"
BLOCKED_V4 = (
    "0.0.0.0/8",  # "this network"
    "10.0.0.0/8",  # RFC 1918
    "100.64.0.0/10",  # carrier-grade NAT
    "127.0.0.0/8",  # loopback
    "169.254.0.0/16",  # link-local: instance metadata, ECS credentials, VPC DNS alias
    "172.16.0.0/12",  # RFC 1918 (includes the docker bridges)
    "192.0.0.0/24",  # IETF protocol assignments
    "192.168.0.0/16",  # RFC 1918
    "198.18.0.0/15",  # benchmarking
    "224.0.0.0/4",  # multicast
    "240.0.0.0/4",  # reserved and broadcast
)
REJECT = ["-j", "REJECT", "--reject-with", "icmp-admin-prohibited"]
REJECT_V6 = ["-j", "REJECT", "--reject-with", "icmp6-adm-prohibited"]
Command = list[str]
_BRIDGE_NAME = re.compile(r"[A-Za-z0-9_.-]{1,15}")
# Docker gives containers the upstream resolvers, not systemd-resolved's 127.0.0.53 stub
RESOLV_CONFS = ("/run/systemd/resolve/resolv.conf", "/etc/resolv.conf")


def resolvers_from(resolv_conf: str) -> list[str]:
    """The IPv4 nameservers of a resolv.conf text (the build containers inherit them)."""
    found = []
    for line in resolv_conf.splitlines():
        parts = line.split()
        if len(parts) >= 2 and parts[0] == "nameserver":
            try:
                address = ipaddress.ip_address(parts[1])
                if isinstance(address, ipaddress.IPv4Address) and not address.is_loopback:  # a stub: unreachable
                    found.append(parts[1])
            except ValueError:
                continue
    return found


def render_rules(bridge: str = "docker0", resolvers: list[str] | None = None) -> list[Command]:
    """The commands that install the build firewall for ``bridge``, in order (idempotent when run again)."""
    if not _BRIDGE_NAME.fullmatch(bridge):
        raise ValueError(f"not a network interface name: {bridge!r}")
    rules: list[Command] = []
    for chain in (CHAIN, HOST_CHAIN):
        rules.append(["iptables", "-N", chain, "--wait"])  # fails harmlessly when it exists
        rules.append(["iptables", "-F", chain, "--wait"])
    rules.append(["iptables", "-A", CHAIN, "-m", "conntrack", "--ctstate", "ESTABLISHED,RELATED", "-j", "RETURN"])
    for resolver in resolvers or []:
        ipaddress.IPv4Address(resolver)  # only literal addresses reach the command line
        for proto in ("udp", "tcp"):
            rules.append(
                ["iptables", "-A", CHAIN, "-d", f"{resolver}/32", "-p", proto, "--dport", "53", "-j", "RETURN"]
            )
    for net in BLOCKED_V4:
        rules.append(["iptables", "-A", CHAIN, "-d", net, *REJECT])
    rules.append(["iptables", "-A", CHAIN, "-j", "RETURN"])
    rules.append(["iptables", "-A", HOST_CHAIN, "-m", "conntrack", "--ctstate", "ESTABLISHED,RELATED", "-j", "ACCEPT"])
    rules.append(["iptables", "-A", HOST_CHAIN, *REJECT])
    rules.append(["iptables", "-N", "DOCKER-USER", "--wait"])  # Docker makes it too; ours must exist first at boot
    rules.append(_hook("iptables", "DOCKER-USER", bridge, CHAIN))
    rules.append(_hook("iptables", "INPUT", bridge, HOST_CHAIN))
    rules.append(["ip6tables", "-N", CHAIN, "--wait"])
    rules.append(["ip6tables", "-F", CHAIN, "--wait"])
    rules.append(["ip6tables", "-A", CHAIN, "-m", "conntrack", "--ctstate", "ESTABLISHED,RELATED", "-j", "RETURN"])
    rules.append(["ip6tables", "-A", CHAIN, *REJECT_V6])
    rules.append(_hook("ip6tables", "FORWARD", bridge, CHAIN))
    rules.append(_hook("ip6tables", "INPUT", bridge, CHAIN))
    return rules


def _hook(tool: str, parent: str, bridge: str, chain: str) -> Command:
    """Insert ``-i bridge -j chain`` at the top of ``parent`` unless it is there (``--check`` first)."""
    return [
        "sh",
        "-c",
        f"{tool} -C {parent} -i {bridge} -j {chain} --wait 2>/dev/null || "
        f"{tool} -I {parent} 1 -i {bridge} -j {chain} --wait",
    ]


def apply(commands: list[Command]) -> None:
    """Run the commands; ``-N`` (create chain) and ``-D`` (delete) may fail when already done."""
    for argv in commands:
        done = subprocess.run(argv, capture_output=True, text=True)
        if done.returncode != 0 and argv[1] not in ("-N", "-D"):
            raise RuntimeError(f"{' '.join(argv)} failed: {done.stderr.strip()}")


def main(argv: list[str] | None = None) -> int:
    """Print (default) or apply the build firewall."""
    parser = argparse.ArgumentParser(prog="python -m worker.firewall", description=__doc__.split("\n")[0])
    parser.add_argument("--bridge", default="docker0")
    default_conf = next((p for p in RESOLV_CONFS if Path(p).exists()), RESOLV_CONFS[-1])
    parser.add_argument("--resolv-conf", default=default_conf, help="nameservers builds may query")
    parser.add_argument("--apply", action="store_true", help="run the commands (root) instead of printing them")
    args = parser.parse_args(argv)
    path = Path(args.resolv_conf)
    rules = render_rules(args.bridge, resolvers_from(path.read_text() if path.exists() else ""))
    if args.apply:
        apply(rules)
    else:
        sys.stdout.write("".join(shlex.join(argv) + "\n" for argv in rules))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
