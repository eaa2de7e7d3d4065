"""The build host's firewall, rendered and checked: what a RUN step on the bridge may reach (issue 17 §3)."""

from __future__ import annotations

import ipaddress

import pytest

from worker import firewall
from worker.firewall import CHAIN, HOST_CHAIN, render_rules, resolvers_from

RESOLV_CONF = "# generated\nnameserver 10.0.0.2\nnameserver 127.0.0.53\nnameserver fd00::53\noptions edns0\n"


def _chain(rules: list[list[str]], tool: str, chain: str) -> list[list[str]]:
    return [argv[3:] for argv in rules if argv[0] == tool and argv[1] == "-A" and argv[2] == chain]


def _verdict(rules: list[list[str]], dest: str, proto: str = "tcp", port: int = 443, state: str = "NEW") -> str:
    """Walk BOATYARD-BUILD like the kernel would for one packet from the bridge; the first matching target wins."""
    for spec in _chain(rules, "iptables", CHAIN):
        opts = dict(zip(spec[::2], spec[1::2], strict=False))
        if "--ctstate" in opts and state not in opts["--ctstate"].split(","):
            continue
        if "-d" in opts and ipaddress.ip_address(dest) not in ipaddress.ip_network(opts["-d"]):
            continue
        if "-p" in opts and opts["-p"] != proto:
            continue
        if "--dport" in opts and int(opts["--dport"]) != port:
            continue
        return opts["-j"]
    raise AssertionError("the chain must end in a verdict")


@pytest.fixture(scope="module")
def rules() -> list[list[str]]:
    return render_rules("docker0", resolvers_from(RESOLV_CONF))


@pytest.mark.parametrize(
    "dest",
    [
        "10.1.2.3",
        "172.16.0.1",
        "172.17.0.1",
        "172.31.255.254",
        "192.168.1.1",
        "100.64.0.1",
        "100.127.255.255",
        "169.254.169.254",
        "169.254.170.2",
        "169.254.169.253",
        "127.0.0.1",
        "0.0.0.0",
        "224.0.0.251",
        "255.255.255.255",
    ],
)
def test_new_connections_to_private_cgnat_link_local_and_host_ranges_are_rejected(rules, dest):
    assert _verdict(rules, dest) == "REJECT"
    assert _verdict(rules, dest, "udp", 53) == "REJECT" or dest == "10.0.0.2"


@pytest.mark.parametrize("dest", ["1.1.1.1", "8.8.8.8", "140.82.112.3", "52.94.0.1"])
def test_the_internet_is_left_to_dockers_own_rules(rules, dest):
    assert _verdict(rules, dest) == "RETURN"


def test_dns_to_the_hosts_resolver_passes_but_nothing_else_to_it(rules):
    assert resolvers_from(RESOLV_CONF) == ["10.0.0.2"]  # not the loopback stub, not IPv6
    assert _verdict(rules, "10.0.0.2", "udp", 53) == "RETURN"
    assert _verdict(rules, "10.0.0.2", "tcp", 53) == "RETURN"
    assert _verdict(rules, "10.0.0.2", "tcp", 80) == "REJECT"
    assert _verdict(rules, "10.0.0.3", "udp", 53) == "REJECT"


def test_replies_pass(rules):
    assert _verdict(rules, "10.1.2.3", state="ESTABLISHED") == "RETURN"


def test_the_host_itself_only_answers(rules):
    host = _chain(rules, "iptables", HOST_CHAIN)
    assert host[0] == ["-m", "conntrack", "--ctstate", "ESTABLISHED,RELATED", "-j", "ACCEPT"]
    assert host[-1][:2] == ["-j", "REJECT"] and len(host) == 2


def test_chains_are_hooked_from_docker_user_and_input_for_the_bridge_only(rules):
    hooks = [argv[2] for argv in rules if argv[0] == "sh"]
    assert "iptables -I DOCKER-USER 1 -i docker0 -j BOATYARD-BUILD --wait" in hooks[0]
    assert "iptables -I INPUT 1 -i docker0 -j BOATYARD-BUILD-HOST --wait" in hooks[1]
    assert all("-C " in hook for hook in hooks), "hooks are checked first: running twice adds nothing"
    flushes = [argv for argv in rules if argv[1] == "-F"]
    assert len(flushes) == 3, "our chains are flushed before they are filled (idempotent)"


def test_ipv6_from_the_bridge_is_refused(rules):
    v6 = _chain(rules, "ip6tables", CHAIN)
    assert v6[-1][:2] == ["-j", "REJECT"] and len(v6) == 2
    assert any("ip6tables -I FORWARD 1 -i docker0" in argv[-1] for argv in rules if argv[0] == "sh")


@pytest.mark.parametrize("bridge", ["docker0; reboot", "a" * 16, "", "br 0"])
def test_bridge_names_cannot_inject_shell(bridge):
    with pytest.raises(ValueError):
        render_rules(bridge)


def test_the_command_line_prints_the_rules(capsys, tmp_path):
    conf = tmp_path / "resolv.conf"
    conf.write_text(RESOLV_CONF)
    assert firewall.main(["--bridge", "br-builds", "--resolv-conf", str(conf)]) == 0
    out = capsys.readouterr().out
    assert "iptables -A BOATYARD-BUILD -d 169.254.0.0/16 -j REJECT" in out
    assert "-i br-builds" in out and "10.0.0.2/32" in out
