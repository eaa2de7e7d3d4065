"""The build firewall on this machine: a build on a private dockerd's bridge reaches a listener on a host
address until worker/firewall.py's rules are applied for that bridge, and is refused after (issue 17 §3)."""

from __future__ import annotations

import http.server
import io
import subprocess
import threading
import uuid

import pytest

from chalicelib.domain.settings import load_settings
from devstack.services import STATE_DIR
from tests.support import faults
from tests.support.archives import make_tar
from tests.support.firewall import remove_rules
from worker import firewall
from worker.build.builder import Builder
from worker.job.control import JobControl

pytestmark = [pytest.mark.slow, pytest.mark.docker]


class SandboxDockerd(faults.PrivateDockerd):
    """A private dockerd on a bridge of its own, apart from the one the other fault tests use."""

    BRIDGE = "bysbx0"
    BRIDGE_CIDR = "10.213.79.1/24"


class _Hello(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # http.server's name
        self.send_response(200)
        self.end_headers()
        self.wfile.write(b"host-listener-answered\n")

    def log_message(self, *_: object) -> None:
        pass


def _host_addresses() -> list[str]:
    """This machine's global IPv4 addresses other than the test bridge's (e.g. eth0's)."""
    out = subprocess.run(["ip", "-4", "-o", "addr", "show", "scope", "global"], capture_output=True, text=True).stdout
    found = [line.split()[3].split("/")[0] for line in out.splitlines() if line.split()[1] != SandboxDockerd.BRIDGE]
    return [a for a in found if not a.startswith("10.213.")]


@pytest.fixture
def sandbox_dockerd(base_image, docker_host):
    why = faults.PrivateDockerd.available()
    if why:
        pytest.skip(why)
    daemon = SandboxDockerd(STATE_DIR / "sandbox-dockerd").start()
    try:
        daemon.load_image(base_image, docker_host)
        yield daemon
    finally:
        daemon.stop()


@pytest.fixture
def listener():
    server = http.server.ThreadingHTTPServer(("0.0.0.0", 0), _Hello)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server.server_address[1]
    server.shutdown()
    server.server_close()


def _probe(daemon: SandboxDockerd, base_image: str, registry, urls: list[str]) -> str:
    """Build, on the private daemon's bridge, a step that fetches each URL; its output."""
    lines = "".join(
        f"RUN if wget -q -T 5 -O - {url}; then echo REACHED {url}; else echo BLOCKED {url}; fi\n" for url in urls
    )
    context = io.BytesIO(make_tar({"Dockerfile": f"FROM {base_image}\n{lines}"}, gz=False))
    builder = Builder(load_settings({"DOCKER_HOST": daemon.host, "BOATYARD_BUILD_NETWORK": ""}))
    out: list[str] = []
    image = f"firewall-probe:{uuid.uuid4().hex[:8]}"
    auths = {registry.host: {**registry.auth_config, "serveraddress": registry.host}}  # builds pull FROM fresh
    builder.build(context, image, out.append, JobControl(), registry_auths=auths)
    builder.remove_image(image)
    return "".join(out)


def test_a_build_reaches_host_addresses_only_without_the_firewall(sandbox_dockerd, registry, base_image, listener):
    gateway = SandboxDockerd.BRIDGE_CIDR.split("/")[0]
    urls = [f"http://{address}:{listener}/" for address in [gateway, *_host_addresses()]]
    before = _probe(sandbox_dockerd, base_image, registry, urls)
    for url in urls:  # the control: without the rules the step gets through, so the check below can fail
        assert f"REACHED {url}" in before, before
    firewall.apply(firewall.render_rules(SandboxDockerd.BRIDGE, []))
    try:
        after = _probe(sandbox_dockerd, base_image, registry, urls)
    finally:
        firewall.apply(remove_rules(SandboxDockerd.BRIDGE))
    for url in urls:
        assert f"BLOCKED {url}" in after and "host-listener-answered" not in after, after
    hooks = subprocess.run(["iptables", "-S", "INPUT"], capture_output=True, text=True).stdout
    assert SandboxDockerd.BRIDGE not in hooks, "the rules are taken away again"
