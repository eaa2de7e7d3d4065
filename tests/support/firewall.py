"""Taking worker/firewall.py's build firewall away again (the product only ever installs it)."""

from __future__ import annotations

from worker.firewall import CHAIN, HOST_CHAIN, Command


def remove_rules(bridge: str) -> list[Command]:
    """The commands that take the build firewall for ``bridge`` away (run them with ``firewall.apply``).

    The chains themselves go too when no other bridge still jumps to them.
    """
    commands = [
        ["iptables", "-D", "DOCKER-USER", "-i", bridge, "-j", CHAIN, "--wait"],
        ["iptables", "-D", "INPUT", "-i", bridge, "-j", HOST_CHAIN, "--wait"],
        ["ip6tables", "-D", "FORWARD", "-i", bridge, "-j", CHAIN, "--wait"],
        ["ip6tables", "-D", "INPUT", "-i", bridge, "-j", CHAIN, "--wait"],
    ]
    for tool, chain in (("iptables", CHAIN), ("iptables", HOST_CHAIN), ("ip6tables", CHAIN)):
        commands.append(
            [
                "sh",
                "-c",
                f"{tool} -n -L {chain} --wait 2>/dev/null | head -1 | grep -q '(0 references)' "
                f"&& {tool} -F {chain} --wait && {tool} -X {chain} --wait || true",
            ]
        )
    return commands
