"""Transport attacks (issue 11, item 6): what a listener on the network sees and what a
careless configuration exposes.

* HTTPS: the controller serves TLS only when it has a certificate, every response carries
  HSTS and the secure headers, plain HTTP on the TLS port gets nothing, a private key other
  users can read stops start-up, and without a certificate the server will not listen beyond
  loopback unless told a TLS proxy is in front.
* AMI: the secret never crosses the wire (challenge login, checked on the bytes a relay saw),
  a wrong secret is a clear refusal, the plain login is used only when allowed, and the link
  can run over TLS with the server's certificate and name checked.

Certificates are made at test time (`certificates.make_certificates`); no key is committed.
"""

from __future__ import annotations

import asyncio
import json
import os
import ssl
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
from certificates import TlsFiles, make_certificates, tls_files
from controllers import WITHOUT_RECORDER, controller_settings, started

from controller.cli import main
from controller.parts import WebPart
from controller.settings import load_settings
from hotline.settings import ConfigError, HttpSettings
from hotline.web import build_app

__all__ = ["tls_files"]  # the fixture, imported for pytest


async def all_good() -> dict[str, str]:
    return {"agi": "listening"}


@pytest.fixture
async def https_server(tls_files: TlsFiles) -> AsyncIterator[int]:
    """The controller's HTTP server with the test certificate: its port."""
    settings = HttpSettings(
        port=0, tls_cert_file=str(tls_files.cert_file), tls_key_file=str(tls_files.key_file)
    )
    part = WebPart(build_app(all_good), settings)
    await part.start()
    try:
        yield part.port
    finally:
        await part.stop()


# --- HTTPS ------------------------------------------------------------------------------------


async def test_healthz_over_https_with_hsts_and_secure_headers(
    https_server: int, tls_files: TlsFiles
) -> None:
    connector = aiohttp.TCPConnector(ssl=tls_files.client_context())
    async with aiohttp.ClientSession(connector=connector) as http:
        async with http.get(f"https://localhost:{https_server}/healthz") as reply:
            assert reply.status == 200
            assert (await reply.json())["status"] == "ok"
            assert reply.headers["Strict-Transport-Security"] == "max-age=31536000"
            assert reply.headers["X-Content-Type-Options"] == "nosniff"
            assert reply.headers["X-Frame-Options"] == "DENY"
            assert reply.headers["Content-Security-Policy"] == "frame-ancestors 'none'"
            assert reply.headers["Referrer-Policy"] == "no-referrer"
        # An error page is a response too: a framed or sniffed 404 is still an attack surface.
        async with http.get(f"https://localhost:{https_server}/no-such-page") as missing:
            assert missing.status == 404
            assert missing.headers["Strict-Transport-Security"] == "max-age=31536000"
            assert missing.headers["X-Frame-Options"] == "DENY"


async def test_plain_http_on_the_tls_port_gets_nothing(https_server: int) -> None:
    async with aiohttp.ClientSession() as http:
        with pytest.raises(aiohttp.ClientError):
            async with http.get(f"http://127.0.0.1:{https_server}/healthz") as reply:
                await reply.read()


async def test_a_client_that_does_not_trust_the_certificate_is_stopped(https_server: int) -> None:
    """A man in the middle with a certificate of his own gets the same: the client, trusting
    only the system's CAs, refuses the self-made one."""
    async with aiohttp.ClientSession() as http:
        with pytest.raises(aiohttp.ClientConnectorCertificateError):
            await http.get(f"https://localhost:{https_server}/healthz")


@pytest.mark.filterwarnings("ignore:ssl.TLSVersion.TLSv1:DeprecationWarning")
async def test_tls_older_than_1_2_is_refused(https_server: int, tls_files: TlsFiles) -> None:
    old = tls_files.client_context()
    old.minimum_version = ssl.TLSVersion.TLSv1
    old.maximum_version = ssl.TLSVersion.TLSv1_1
    old.set_ciphers("DEFAULT:@SECLEVEL=0")  # let this client offer what the server must refuse
    with pytest.raises((ssl.SSLError, ConnectionResetError)):
        _, writer = await asyncio.open_connection(
            "127.0.0.1", https_server, ssl=old, server_hostname="localhost"
        )
        writer.close()


async def test_a_key_other_users_can_read_stops_start_up(tls_files: TlsFiles) -> None:
    tls_files.key_file.chmod(0o644)
    settings = HttpSettings(
        port=0, tls_cert_file=str(tls_files.cert_file), tls_key_file=str(tls_files.key_file)
    )
    part = WebPart(build_app(all_good), settings)
    with pytest.raises(ConfigError, match=r"open to other users \(mode 0644\).*chmod 600"):
        await part.start()
    assert part.runner is None  # nothing is listening


def test_hotline_serve_refuses_a_readable_key_with_a_clear_message(
    tls_files: TlsFiles, tmp_path: Path
) -> None:
    tls_files.key_file.chmod(0o640)
    environment = {
        **os.environ,
        **controller_settings_environment(tmp_path),
        "HOTLINE_HTTP_TLS_CERT_FILE": str(tls_files.cert_file),
        "HOTLINE_HTTP_TLS_KEY_FILE": str(tls_files.key_file),
    }
    # A separate process, bounded: a controller that started anyway would serve forever.
    serve = subprocess.run(
        [sys.executable, "-m", "controller.cli", "serve"],
        env=environment,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert serve.returncode == 2
    assert f"TLS key file {tls_files.key_file} is open to other users (mode 0640)" in serve.stderr
    assert "PRIVATE KEY" not in serve.stderr + serve.stdout


def controller_settings_environment(tmp_path: Path) -> dict[str, str]:
    return {
        "HOTLINE_AGI_PORT": "0",
        "HOTLINE_HTTP_PORT": "0",
        "HOTLINE_STORE_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path}/calls.sqlite3",
        "HOTLINE_IVR_VERSIONS_DIR": str(tmp_path / "menu-versions"),
        **WITHOUT_RECORDER,
    }


@pytest.mark.parametrize("host", ["0.0.0.0", "192.0.2.10", "", "hotline.example.org", "::"])
def test_plain_http_beyond_loopback_is_refused(host: str) -> None:
    with pytest.raises(ConfigError, match="no certificate is set") as refused:
        load_settings(None, {"HOTLINE_HTTP_HOST": host})
    assert "allow_plain_http" in str(refused.value)


@pytest.mark.parametrize("host", ["127.0.0.1", "127.0.0.2", "::1", "localhost"])
def test_plain_http_on_loopback_is_allowed(host: str) -> None:
    assert load_settings(None, {"HOTLINE_HTTP_HOST": host}).http.host == host


def test_plain_http_beyond_loopback_only_when_explicitly_allowed() -> None:
    settings = load_settings(
        None, {"HOTLINE_HTTP_HOST": "0.0.0.0", "HOTLINE_HTTP_ALLOW_PLAIN_HTTP": "true"}
    )
    assert settings.http.host == "0.0.0.0" and not settings.http.tls


def test_a_certificate_without_its_key_is_a_configuration_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="tls_cert_file and tls_key_file must be set together"):
        load_settings(None, {"HOTLINE_HTTP_TLS_CERT_FILE": str(tmp_path / "server.pem")})


async def test_plain_http_on_loopback_says_so(caplog: pytest.LogCaptureFixture) -> None:
    """What ./scripts/run does: no certificate, 127.0.0.1, and a log line saying so."""
    caplog.set_level("INFO", logger="controller.node")
    part = WebPart(build_app(all_good), HttpSettings(port=0))
    await part.start()
    try:
        async with aiohttp.ClientSession() as http:
            async with http.get(f"http://127.0.0.1:{part.port}/healthz") as reply:
                assert reply.status == 200
    finally:
        await part.stop()
    assert "HTTP server is plain HTTP, on loopback only" in caplog.text


async def test_the_whole_controller_serves_https(tls_files: TlsFiles, tmp_path: Path) -> None:
    settings = controller_settings(
        tmp_path,
        {
            **WITHOUT_RECORDER,
            "HOTLINE_HTTP_TLS_CERT_FILE": str(tls_files.cert_file),
            "HOTLINE_HTTP_TLS_KEY_FILE": str(tls_files.key_file),
        },
    )
    async with started(settings) as node:
        connector = aiohttp.TCPConnector(ssl=tls_files.client_context())
        async with aiohttp.ClientSession(connector=connector) as http:
            async with http.get(f"https://localhost:{node.http_port}/healthz") as reply:
                assert reply.status == 200
                assert reply.headers["Strict-Transport-Security"] == "max-age=31536000"


def test_config_show_prints_the_key_path_not_the_key(
    tls_files: TlsFiles, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("HOTLINE_HTTP_TLS_CERT_FILE", str(tls_files.cert_file))
    monkeypatch.setenv("HOTLINE_HTTP_TLS_KEY_FILE", str(tls_files.key_file))
    assert main(["config", "show"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["http"]["tls_key_file"] == str(tls_files.key_file)
    key_text = tls_files.key_file.read_text()
    assert "PRIVATE KEY" in key_text
    assert key_text.splitlines()[1] not in json.dumps(shown)


def test_test_certificates_are_made_fresh(tmp_path: Path) -> None:
    """Two runs never share a key: nothing in the repository could leak one."""
    first = make_certificates(tmp_path / "a")
    second = make_certificates(tmp_path / "b")
    assert first.key_file.read_bytes() != second.key_file.read_bytes()
    assert first.key_file.stat().st_mode & 0o777 == 0o600
