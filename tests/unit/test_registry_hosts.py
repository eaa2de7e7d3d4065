"""image_name may not push to this host's loopback, private, link-local or CGNAT addresses (issue 17 §3)."""

from __future__ import annotations

import pytest

from chalicelib.api.validation import validate_build
from chalicelib.domain.errors import InvalidRequest
from chalicelib.domain.registry_hosts import registry_refusal
from chalicelib.domain.settings import load_settings

STRICT = load_settings({})
LOCAL = load_settings({"BOATYARD_ALLOW_PRIVATE_REGISTRIES": "true"})

REFUSED = [
    ("127.0.0.1:5000/x", "loopback"),
    ("localhost:2375/x", "loopback name"),
    ("localhost/x", "loopback name"),
    ("registry.localhost:443/x", "loopback name"),
    ("10.0.0.5:443/x", "private"),
    ("172.16.3.4/x", "private"),
    ("192.168.1.10:5000/team/app:1", "private"),
    ("[::1]:5000/x", "loopback"),
    ("[fd00::5]:5000/x", "private"),
    ("[fe80::1]/x", "link-local"),
    ("[::ffff:a00:1]:5000/x", "private"),
    ("169.254.169.254/x", "link-local"),
    ("169.254.170.2:80/x", "link-local"),
    ("100.64.0.1/x", "carrier-grade NAT"),
    ("100.127.255.254:5000/x", "carrier-grade NAT"),
    ("0.0.0.0:5000/x", "unspecified"),
    ("127.1:5000/x", "loopback"),  # legacy forms the resolver still accepts
    ("2130706433:5000/x", "loopback"),
    ("0x7f.0.0.1:5000/x", "loopback"),
    ("0xa.0.0.1:5000/x", "private"),
]
ALLOWED = [
    "user/image:1",
    "image",
    "quay.io/team/app:1",
    "registry.example.com:5000/a",
    "8.8.8.8:5000/x",
    "[2606:4700::1111]:443/x",
    "localhostregistry.example/x",
]


@pytest.mark.parametrize(("image", "why"), REFUSED)
def test_private_registry_hosts_are_refused_naming_the_field(image, why):
    with pytest.raises(InvalidRequest) as caught:
        validate_build({"image_name": image, "dockerfile": "FROM x\n"}, STRICT)
    assert caught.value.field == "image_name"
    assert why in caught.value.message and "public" in caught.value.message


@pytest.mark.parametrize("image", ALLOWED)
def test_public_registries_and_docker_hub_are_accepted(image):
    assert validate_build({"image_name": image, "dockerfile": "FROM x\n"}, STRICT).image_name == image


@pytest.mark.parametrize(("image", "_why"), REFUSED[:6])
def test_the_local_stack_setting_allows_private_registries(image, _why):
    assert validate_build({"image_name": image, "dockerfile": "FROM x\n"}, LOCAL).image_name == image


def test_docker_hub_is_never_refused():
    assert registry_refusal(None) is None
