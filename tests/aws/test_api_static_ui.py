"""GET / and GET /{asset}: the local stack's web UI, only when BOATYARD_SERVE_UI is on, never outside ui_dir."""

from __future__ import annotations

import json

import pytest
from chalice.test import Client

from chalicelib.domain.settings import load_settings
from tests.support.services import offline_app


@pytest.fixture
def ui_dir(tmp_path, monkeypatch):
    ui = tmp_path / "ui"
    ui.mkdir()
    (ui / "index.html").write_text("<!doctype html><title>boatyard</title>")
    (ui / "app.js").write_text("console.log('hi')")
    (ui / "style.css").write_text("body{}")
    (ui / "config.js").write_text("window.BOATYARD_API = '';")
    (ui / "logo.png").write_bytes(b"\x89PNG\r\n\x1a\n\x00\x01binary")
    (ui / ".env").write_text("SECRET=1")
    (ui / "notes.md").write_text("no type for this")
    (ui / "sub").mkdir()
    (ui / "sub" / "x.js").write_text("nested")
    (tmp_path / "outside.txt").write_text("outside the ui folder")
    monkeypatch.setenv("BOATYARD_UI_DIR", str(ui))
    monkeypatch.setenv("BOATYARD_SERVE_UI", "true")
    return ui


@pytest.fixture
def client(ui_dir):
    with Client(offline_app(), stage_name="local") as test_client:
        yield test_client


@pytest.mark.parametrize(
    "path, content_type, text",
    [
        ("/", "text/html", b"<title>boatyard</title>"),
        ("/index.html", "text/html", b"<title>boatyard</title>"),
        ("/app.js", "text/javascript", b"console.log"),
        ("/style.css", "text/css", b"body{}"),
        ("/config.js", "text/javascript", b"BOATYARD_API"),
    ],
)
def test_serves_ui_files(client, path, content_type, text):
    response = client.http.get(path)
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith(content_type)
    assert text in response.body


def test_serves_binary_files_intact(client):
    response = client.http.get("/logo.png", headers={"Accept": "image/png"})
    assert response.status_code == 200 and response.headers["Content-Type"] == "image/png"
    assert response.body == b"\x89PNG\r\n\x1a\n\x00\x01binary"


@pytest.mark.parametrize(
    "path",
    ["/missing.js", "/.env", "/..", "/notes.md", "/sub", "/%2e%2e%2foutside.txt", "/..%2Foutside.txt", "/sub%2Fx.js"],
)
def test_refuses_anything_else(client, path):
    response = client.http.get(path)
    assert response.status_code == 404
    body = json.loads(response.body)
    assert body["Code"] == "NotFound"
    assert b"outside the ui folder" not in response.body and b"SECRET" not in response.body


def test_off_by_default(ui_dir, monkeypatch):
    monkeypatch.delenv("BOATYARD_SERVE_UI")
    with Client(offline_app()) as client:
        for path in ("/", "/index.html", "/app.js"):
            response = client.http.get(path)
            assert response.status_code == 404 and json.loads(response.body)["Code"] == "NotFound"


def test_the_repository_ui_folder_is_the_default():
    import os

    import app as app_module
    from chalicelib.domain.settings import load_settings

    settings = load_settings({"BOATYARD_SERVE_UI": "true"})
    assert settings.serve_ui
    assert settings.ui_dir == os.path.join(os.path.dirname(os.path.abspath(app_module.__file__)), "ui")


@pytest.mark.parametrize("name", ["../outside.txt", "..", ".", "sub/x.js", "/etc/passwd", "index.html\x00", ""])
def test_load_asset_rejects_decoded_traversal(ui_dir, name):
    """API Gateway URL-decodes path parameters, so the loader itself must refuse these."""
    from chalicelib.api.static_ui import AssetNotFound, load_asset

    with pytest.raises(AssetNotFound):
        load_asset(name, load_settings())
