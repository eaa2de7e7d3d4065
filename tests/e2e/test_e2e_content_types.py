"""End to end over real HTTP: the seed's clients sent JSON under whatever Content-Type their tool chose.

Each client habit is replayed byte for byte with ``http.client`` (the headers curl 7/8 and
jQuery 3 send), so no HTTP library adds or fixes a header on the way; each job must build
and push on the real daemon.
"""

from __future__ import annotations

import http.client
import json
import urllib.parse

import pytest

from tests.support.http_jobs import credentials, unique_image, wait_terminal

pytestmark = [pytest.mark.e2e, pytest.mark.docker]

HABITS = {
    # curl -d '{...}' http://host/api/v1/build   (no -H): curl picks the form type
    "curl -d": {"User-Agent": "curl/8.5.0", "Accept": "*/*", "Content-Type": "application/x-www-form-urlencoded"},
    # $.ajax({url, type: "POST", data: JSON.stringify(fields)}): jQuery's default contentType
    "jquery $.ajax": {
        "Accept": "*/*",
        "Content-Type": "application/x-www-form-urlencoded; charset=UTF-8",
        "X-Requested-With": "XMLHttpRequest",
    },
    # a script that writes the body and forgets the header
    "no Content-Type": {"Accept": "*/*"},
}


def _post_raw(api_url: str, headers: dict[str, str], body: bytes) -> tuple[int, dict]:
    """POST exactly these headers (plus Host and Content-Length) and this body; the status and JSON answer."""
    parts = urllib.parse.urlsplit(api_url)
    assert parts.hostname, api_url
    connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
    try:
        connection.putrequest("POST", "/api/v1/build", skip_accept_encoding=True)
        for name, value in {**headers, "Content-Length": str(len(body))}.items():
            connection.putheader(name, value)
        connection.endheaders(body)
        response = connection.getresponse()
        return response.status, json.loads(response.read())
    finally:
        connection.close()


@pytest.mark.parametrize("habit", list(HABITS))
def test_json_sent_as_the_seeds_clients_did_builds(local_stack, habit):
    image = unique_image(local_stack.registry.host, "ctype")
    fields = {
        "image_name": image,
        "dockerfile": f"FROM {local_stack.base_image}\nCMD echo {habit!r}\n",
        **credentials(local_stack.registry),
    }
    status, answer = _post_raw(local_stack.api_url, HABITS[habit], json.dumps(fields).encode())
    assert status == 202, answer
    final = wait_terminal(local_stack.api_url, answer["JobIdentifier"])
    assert final["Status"] == "Finished", final
    assert final["ImageDigest"].startswith("sha256:")


def test_a_real_form_body_is_415_over_http(local_stack):
    """A form-encoded body (not JSON) is neither accepted format: 415, the JSON error shape."""
    body = urllib.parse.urlencode({"image_name": "user/image", "dockerfile": "FROM busybox"}).encode()
    status, answer = _post_raw(local_stack.api_url, HABITS["curl -d"], body)
    assert status == 415, answer
    assert answer["Code"] == "UnsupportedMediaType" and "JSON" in answer["Message"]
