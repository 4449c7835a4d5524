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
import hashlib
import json
import os
import re
import ssl
import subprocess
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass, field, replace
from pathlib import Path

import aiohttp
import pytest
from certificates import TlsFiles, make_certificates, tls_files
from controllers import WITHOUT_RECORDER, controller_settings, started

from controller.cli import main
from controller.parts import WebPart
from controller.settings import load_settings
from hotline.ami.client import AmiClient
from hotline.ami.errors import AmiAuthError, AmiConnectionError
from hotline.ami.protocol import AmiMessage, AmiParser, encode_greeting, encode_message
from hotline.clock import SteppedClock
from hotline.settings import AmiSettings, ConfigError, HttpSettings
from hotline.tls import server_context
from hotline.web import build_app
from pbxsim.ami_accounts import ManagerUser, parse_manager_conf
from pbxsim.ami_server import AmiServer

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
        "HOTLINE_REPORTING_JOURNAL_DIR": str(tmp_path / "facts-journal"),
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


# --- AMI --------------------------------------------------------------------------------------

AMI_USER, AMI_SECRET = "hotline", "Zq8-not-in-any-byte-3vX"


@dataclass
class Relay:
    """A TCP relay between the AMI client and the server that keeps what the client sent and
    what it received: what anyone on the path sees."""

    target_port: int
    sent: bytearray = field(default_factory=bytearray)
    received: bytearray = field(default_factory=bytearray)
    server: asyncio.Server | None = None
    tasks: set[asyncio.Task[None]] = field(default_factory=set)

    @property
    def port(self) -> int:
        assert self.server is not None
        return int(self.server.sockets[0].getsockname()[1])

    async def __aenter__(self) -> Relay:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self.server is not None
        self.server.close()
        for task in self.tasks:
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.target_port)
        for source, sink, kept in (
            (reader, up_writer, self.sent),
            (up_reader, writer, self.received),
        ):
            task = asyncio.create_task(self._pipe(source, sink, kept))
            self.tasks.add(task)

    async def _pipe(
        self, source: asyncio.StreamReader, sink: asyncio.StreamWriter, kept: bytearray
    ) -> None:
        try:
            while data := await source.read(65536):
                kept += data
                sink.write(data)
                await sink.drain()
        except OSError:
            pass
        finally:
            sink.close()


@pytest.fixture
async def asterisk() -> AsyncIterator[AmiServer]:
    """The simulated Asterisk's manager interface with the controller's AMI user."""
    clock = SteppedClock("1795563319", boot="1795563209")
    users = {AMI_USER: ManagerUser(AMI_USER, AMI_SECRET)}
    async with AmiServer(clock=clock, users=users, port=0, refusal_delay=0.0) as server:
        yield server


async def test_the_ami_secret_never_crosses_the_wire(asterisk: AmiServer) -> None:
    async with Relay(asterisk.port) as relay:
        client = AmiClient("127.0.0.1", relay.port, AMI_USER, AMI_SECRET, ping_interval=60)
        async with client:
            assert (await client.action("Ping"))["Ping"] == "Pong"
    sent = bytes(relay.sent)
    assert AMI_SECRET.encode() not in sent
    assert b"Secret:" not in sent
    challenge = re.search(rb"Challenge: (\d+)\r\n", bytes(relay.received))
    assert challenge is not None
    key = hashlib.md5(challenge.group(1) + AMI_SECRET.encode()).hexdigest()
    assert f"AuthType: MD5\r\nUsername: {AMI_USER}\r\nKey: {key}\r\n".encode() in sent


async def test_a_wrong_ami_secret_is_a_clear_refusal(asterisk: AmiServer) -> None:
    client = AmiClient("127.0.0.1", asterisk.port, AMI_USER, "guessed", ping_interval=60)
    with pytest.raises(AmiAuthError) as refused:
        await client.connect()
    assert str(refused.value) == (
        f"AMI login refused for user {AMI_USER} at 127.0.0.1:{asterisk.port}: "
        "wrong username or secret (Asterisk: Authentication failed)"
    )
    assert not client.connected
    await client.close()


async def downgrading_server(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, heard: bytearray
) -> None:
    """A man in the middle posing as Asterisk: refuses the challenge, hoping the client will
    then send its secret in clear, and keeps whatever comes."""
    writer.write(encode_greeting())
    parser = AmiParser(expect_greeting=False)
    try:
        while data := await reader.read(65536):
            heard += data
            for message in parser.feed(data):
                if isinstance(message, AmiMessage) and message.name == "Challenge":
                    reply = [("Response", "Error"), ("ActionID", message.action_id or "")]
                    writer.write(encode_message([*reply, ("Message", "Permission denied")]))
    finally:
        writer.close()


async def test_a_refused_challenge_does_not_make_the_client_send_its_secret() -> None:
    heard = bytearray()
    server = await asyncio.start_server(
        lambda r, w: downgrading_server(r, w, heard), "127.0.0.1", 0
    )
    port = int(server.sockets[0].getsockname()[1])
    try:
        client = AmiClient("127.0.0.1", port, AMI_USER, AMI_SECRET, ping_interval=60)
        with pytest.raises(AmiAuthError, match="refused the challenge login") as refused:
            await client.connect()
        assert 'login = "plain"' in str(refused.value)
        await client.close()
    finally:
        server.close()
    assert b"Action: Challenge" in heard
    assert AMI_SECRET.encode() not in bytes(heard)
    assert b"Action: Login" not in bytes(heard)


async def test_the_plain_login_only_when_the_settings_say_so(asterisk: AmiServer) -> None:
    assert load_settings(None, {}).ami.login == "challenge"
    plain = load_settings(None, {"HOTLINE_AMI_LOGIN": "plain"}).ami
    assert plain.login == "plain"
    settings = replace(
        plain, host="127.0.0.1", port=asterisk.port, username=AMI_USER, secret=AMI_SECRET
    )
    async with Relay(asterisk.port) as relay:
        async with AmiClient.from_settings(replace(settings, port=relay.port)) as client:
            assert client.connected
    assert f"Secret: {AMI_SECRET}".encode() in bytes(relay.sent)


@pytest.fixture
async def asterisk_tls(tls_files: TlsFiles) -> AsyncIterator[AmiServer]:
    """The simulated Asterisk's manager TLS port (tlsenable=yes) with the test certificate."""
    clock = SteppedClock("1795563319", boot="1795563209")
    users = {AMI_USER: ManagerUser(AMI_USER, AMI_SECRET)}
    context = server_context(tls_files.cert_file, tls_files.key_file)
    async with AmiServer(
        clock=clock, users=users, port=0, refusal_delay=0.0, ssl_context=context
    ) as server:
        yield server


def ami_tls_settings(port: int, tls_files: TlsFiles, **changes: object) -> AmiSettings:
    settings = AmiSettings(
        enabled=True,
        host="127.0.0.1",
        port=port,
        username=AMI_USER,
        secret=AMI_SECRET,
        ping_interval=60.0,
        tls=True,
        tls_ca_file=str(tls_files.ca_file),
    )
    return replace(settings, **changes)


async def test_ami_over_tls_shows_an_eavesdropper_nothing(
    asterisk_tls: AmiServer, tls_files: TlsFiles
) -> None:
    async with Relay(asterisk_tls.port) as relay:
        settings = ami_tls_settings(relay.port, tls_files)
        async with AmiClient.from_settings(settings) as client:
            assert (await client.action("Ping"))["Ping"] == "Pong"
            await client.action("Events", EventMask="on")
    for wire in (bytes(relay.sent), bytes(relay.received)):
        assert b"Action:" not in wire and b"Response:" not in wire
        assert b"Asterisk Call Manager" not in wire
        assert AMI_USER.encode() not in wire


async def test_ami_tls_refuses_a_certificate_it_does_not_trust(
    asterisk_tls: AmiServer, tls_files: TlsFiles, tmp_path: Path
) -> None:
    stranger = make_certificates(tmp_path / "stranger")  # another CA: a man in the middle's
    settings = ami_tls_settings(asterisk_tls.port, tls_files, tls_ca_file=str(stranger.ca_file))
    client = AmiClient.from_settings(settings)
    with pytest.raises(AmiConnectionError, match="CERTIFICATE_VERIFY_FAILED") as refused:
        await client.connect()
    assert not isinstance(refused.value, AmiAuthError)
    await client.close()


async def test_ami_tls_checks_the_server_name(asterisk_tls: AmiServer, tls_files: TlsFiles) -> None:
    wrong_name = ami_tls_settings(asterisk_tls.port, tls_files, tls_server_name="pbx.example.org")
    client = AmiClient.from_settings(wrong_name)
    with pytest.raises(AmiConnectionError, match=r"Hostname mismatch|doesn.t match"):
        await client.connect()
    await client.close()
    # The operator who dials by an address the certificate does not name may turn it off.
    unchecked = replace(wrong_name, tls_check_hostname=False)
    async with AmiClient.from_settings(unchecked) as client:
        assert client.connected


async def test_plain_ami_to_the_tls_port_gets_no_greeting(asterisk_tls: AmiServer) -> None:
    client = AmiClient("127.0.0.1", asterisk_tls.port, AMI_USER, AMI_SECRET, action_timeout=2)
    with pytest.raises(AmiConnectionError, match="greeting"):
        await client.connect()
    await client.close()


def test_an_unreadable_ca_file_is_a_clear_error(tmp_path: Path) -> None:
    settings = AmiSettings(tls=True, tls_ca_file=str(tmp_path / "missing-ca.pem"))
    with pytest.raises(ConfigError, match=r"TLS CA file .*missing-ca.pem cannot be used"):
        AmiClient.from_settings(settings)


# --- asterisk-conf ----------------------------------------------------------------------------

CONF = Path(__file__).resolve().parents[2] / "asterisk-conf"


def conf_sections(text: str) -> dict[str, dict[str, str]]:
    """``[name](options)`` -> its ``key = value`` lines, as Asterisk's config reader sees
    them (comments after ``;`` dropped); the options are kept in the section's name."""
    found: dict[str, dict[str, str]] = {}
    current: dict[str, str] = {}
    for raw in text.splitlines():
        line = raw.split(";", 1)[0].strip()
        if line.startswith("["):
            current = found.setdefault(line, {})
        elif "=" in line:
            key, _, value = line.partition("=")
            current[key.strip()] = value.strip()
    return found


def uncommented(text: str, first_line: str) -> str:
    """The commented-out block that starts with `first_line`, as the admin uncomments it."""
    lines = text.splitlines()
    start = lines.index(first_line)
    block = []
    for line in lines[start:]:
        if not line.startswith(";") or line.startswith("; "):
            break
        block.append(line[1:])
    return "\n".join(block)


def test_tls_seats_use_the_tls_and_srtp_template(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HOTLINE_ROUTING_SEATS_TRANSPORT", "tls")
    assert main(["acd", "asterisk-files", "--out", str(tmp_path)]) == 0
    seats = conf_sections((tmp_path / "hotline-seats.conf").read_text("utf-8"))
    endpoints = [name for name in seats if name.endswith("(operator-endpoint-tls)")]
    assert "[1001](operator-endpoint-tls)" in endpoints
    assert not [name for name in seats if name.endswith("(operator-endpoint)")]
    pjsip_text = (CONF / "pjsip.conf").read_text("utf-8")
    pjsip = conf_sections(pjsip_text)
    template = pjsip["[operator-endpoint-tls](!,operator-endpoint)"]
    assert template == {
        "transport": "transport-tls",
        "media_encryption": "sdes",
        "media_encryption_optimistic": "no",
    }
    assert pjsip["[operator-endpoint](!)"]["type"] == "endpoint"
    # The transport, once the admin has put the certificate in place and uncommented it.
    transport = conf_sections(uncommented(pjsip_text, ";[transport-tls]"))["[transport-tls]"]
    assert transport["type"] == "transport" and transport["protocol"] == "tls"
    assert transport["cert_file"].startswith("/etc/asterisk/keys/")
    assert transport["priv_key_file"].startswith("/etc/asterisk/keys/")


def test_udp_seats_stay_the_default(tmp_path: Path) -> None:
    assert main(["acd", "asterisk-files", "--out", str(tmp_path)]) == 0
    seats = conf_sections((tmp_path / "hotline-seats.conf").read_text("utf-8"))
    assert "[1001](operator-endpoint)" in seats


def test_a_seat_transport_asterisk_has_no_template_for_is_refused() -> None:
    with pytest.raises(ConfigError, match="SEATS_TRANSPORT must be one of 'udp', 'tls', got 'wss'"):
        load_settings(None, {"HOTLINE_ROUTING_SEATS_TRANSPORT": "wss"})


def test_manager_conf_offers_the_tls_port_and_keeps_the_controller_user_narrow() -> None:
    text = (CONF / "manager.conf").read_text("utf-8")
    tls = conf_sections("[general]\n" + uncommented(text, ";tlsenable = yes"))["[general]"]
    assert tls["tlsenable"] == "yes"
    assert tls["tlsbindaddr"].endswith(":5039")
    assert tls["tlscertfile"].startswith("/etc/asterisk/keys/")
    assert tls["tlsprivatekey"].startswith("/etc/asterisk/keys/")
    users = parse_manager_conf(text)
    assert set(users) == {"hotline"}
    assert users["hotline"].write == frozenset({"call", "originate"})
    assert conf_sections(text)["[general]"]["bindaddr"] == "127.0.0.1"


async def test_the_running_controller_writes_tls_seats(tmp_path: Path) -> None:
    out = tmp_path / "asterisk"
    settings = controller_settings(
        tmp_path,
        {
            **WITHOUT_RECORDER,
            "HOTLINE_ROUTING_ASTERISK_FILES_DIR": str(out),
            "HOTLINE_ROUTING_SEATS_TRANSPORT": "tls",
        },
    )
    async with started(settings):
        seats = conf_sections((out / "hotline-seats.conf").read_text("utf-8"))
    assert "[1001](operator-endpoint-tls)" in seats
    assert not [name for name in seats if name.endswith("(operator-endpoint)")]
