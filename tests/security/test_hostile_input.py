"""Issue 11's hostile-input findings, replayed: each must now fail safely.

JSON bodies nested 10,000 deep, sent slowly or too large; AGI replies with non-ASCII digits or
5,000-digit numbers; phone and passport numbers the log masking missed; files with citizens'
data readable by everyone; FastAGI sessions from strangers or in floods from one peer; HTTP
requests whose headers never end.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import aiohttp
import pytest
from agi_peer import PEER_TIMEOUT, AsteriskPeer, Outcomes, env_bytes, eventually, serving
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from controllers import WITHOUT_RECORDER, controller_settings, started
from sqlalchemy import text

from hotline.agi.protocol import AgiProtocolError, parse_reply_line
from hotline.agi.router import Router
from hotline.agi.server import FastAgiServer
from hotline.agi.session import AgiSession, Playback
from hotline.ami.actions import PendingActions
from hotline.ami.protocol import AmiMessage
from hotline.jsonbody import BadJsonBody, json_depth, read_json_object
from hotline.logs import mask_field, mask_personal
from hotline.private import open_private
from hotline.security import SECURITY_EVENTS
from hotline.store.db import create_engine
from hotline.versions import VersionStore
from hotline.web import ConnectionLimits, build_app, start_web
from recorder.keys import KeyRing, MasterKeyStore
from recorder.models import RecordingStore
from recorder.pipeline import Recorder
from recorder.settings import RecorderSettings
from recorder.storage import LocalStorage

# --- JSON bodies ---------------------------------------------------------------------------


def bad_input_count() -> float:
    return SECURITY_EVENTS.labels(category="bad_input")._value.get()


@pytest.fixture
async def echo() -> AsyncIterator[TestClient[web.Request, web.Application]]:
    """A route that echoes the JSON object it read with `read_json_object`."""

    async def handler(request: web.Request) -> web.Response:
        body = await read_json_object(request, timeout=0.5)
        return web.json_response({"got": body})

    app = web.Application()
    app.router.add_post("/echo", handler)
    async with TestClient(TestServer(app)) as client:
        yield client


def test_depth_ignores_brackets_inside_strings() -> None:
    assert json_depth('{"a": "[[[[{{{{", "b": [1, {"c": "]]]"}]}') == 3
    assert json_depth('"\\"[[[["') == 0
    assert json_depth("[" * 100_000) == 100_000  # linear: no recursion to measure it


async def test_a_deeply_nested_body_is_a_russian_400_counted_as_bad_input(
    echo: TestClient[web.Request, web.Application],
) -> None:
    before = bad_input_count()
    reply = await echo.post("/echo", data=b'{"a": ' + b"[" * 10_000 + b"]" * 10_000 + b"}")
    assert reply.status == 400
    assert (await reply.json())["error"].startswith("Некорректный запрос: вложенность JSON")
    assert bad_input_count() == before + 1
    ok = await echo.post("/echo", json={"a": [[["fine"]]], "b": "[[[[[[[[[[[[[[[[[[["})
    assert (await ok.json())["got"] == {"a": [[["fine"]]], "b": "[[[[[[[[[[[[[[[[[[["}


@pytest.mark.parametrize(
    ("body", "status"),
    [
        (b"\xff\xfe{}", 400),
        (b"[1, 2]", 400),
        (b'{"a": 1' + b"0" * 5000 + b"}", 400),  # Python refuses ints over 4,300 digits
        (b'{"a": "' + b"x" * (70 * 1024) + b'"}', 413),
        (b"", 400),
    ],
)
async def test_bodies_that_are_not_a_usable_object_are_refused_without_a_traceback(
    echo: TestClient[web.Request, web.Application],
    body: bytes,
    status: int,
    caplog: pytest.LogCaptureFixture,
) -> None:
    reply = await echo.post("/echo", data=body)
    assert reply.status == status
    assert (await reply.json())["error"]
    assert not [r for r in caplog.records if r.exc_info]


async def test_a_body_that_trickles_in_is_cut_with_408(
    echo: TestClient[web.Request, web.Application],
) -> None:
    async def trickle() -> AsyncIterator[bytes]:
        yield b'{"a": '
        await asyncio.sleep(3600)  # the rest never comes
        yield b"1}"

    reply = await echo.post("/echo", data=trickle())
    assert reply.status == 408 and "не получен целиком" in (await reply.json())["error"]


def test_the_refusal_is_an_http_error_carrying_its_russian_text() -> None:
    refused = BadJsonBody(400, "Некорректный запрос.", "not JSON")
    assert refused.status_code == 400 and refused.text == '{"error": "Некорректный запрос."}'


# --- AGI replies ---------------------------------------------------------------------------

# Each was taken as a number before (int() reads "٣" as 3 and "1_0" as 10) or raised a bare
# ValueError out of the protocol (int() refuses over 4,300 digits; "²".isdigit() is true).
HOSTILE_REPLIES = [
    "200 result=0 endpos=" + "9" * 5000,
    "200 result=0 endpos=٣",
    "200 result=٣",
    "200 result=1_0",
    "200 result=" + "4" * 5000,
    "²00 result=0",
    "٢٠٠ result=0",
]


@pytest.mark.parametrize("line", HOSTILE_REPLIES)
def test_hostile_numbers_in_a_reply_are_a_protocol_error(line: str) -> None:
    try:
        reply = parse_reply_line(line)
    except AgiProtocolError:
        return
    with pytest.raises(AgiProtocolError):
        reply.value  # noqa: B018  (the number is what a session reads)


@pytest.mark.parametrize("line", [*HOSTILE_REPLIES, "200 result=a", "200 result=0 (٣٣٣)x"])
async def test_a_hostile_reply_ends_that_session_cleanly_and_is_counted(
    line: str, agi_logs: pytest.LogCaptureFixture
) -> None:
    outcomes = Outcomes()
    bad_before = bad_input_count()
    results: list[object] = []

    async def play(session: AgiSession) -> None:
        results.append(await session.stream_file("hello", "0123456789"))

    async with serving({"hotline": play}) as server:
        peer = await AsteriskPeer.connect(server.port)
        assert (await peer.command()).startswith("STREAM FILE hello")
        await peer.reply(line)
        await peer.expect_closed()
        good = await AsteriskPeer.connect(server.port)  # the next call is served as usual
        assert (await good.command()).startswith("STREAM FILE hello")
        await good.reply("200 result=0 endpos=8000")
        await good.expect_eof()
    assert results == [Playback(None, 8000)]
    assert outcomes.changed() == {"protocol_error": 1, "completed": 1}
    assert bad_input_count() == bad_before + 1
    assert not [r for r in agi_logs.records if r.exc_info]  # no traceback anywhere


async def test_get_data_accepts_only_phone_keys() -> None:
    typed: list[str] = []

    async def collect(session: AgiSession) -> None:
        typed.append(await session.get_data("enter", 3000, 4))
        typed.append(await session.get_data("enter", 3000, 4))

    async with serving({"hotline": collect}) as server:
        peer = await AsteriskPeer.connect(server.port)
        await peer.command()
        await peer.reply("200 result=12*#")
        await peer.command()
        await peer.reply("200 result=١٢٣")  # Arabic-Indic digits: not a key on a phone
        await peer.expect_closed()
    assert typed == ["12*#"]


# --- FastAGI peers -------------------------------------------------------------------------


def peer_refused_count() -> float:
    return SECURITY_EVENTS.labels(category="peer_refused")._value.get()


async def open_session(port: int, source: str) -> AsteriskPeer:
    """A session from `source` (a loopback address) that has sent its environment."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port, local_addr=(source, 0))
    peer = AsteriskPeer(reader, writer)
    await peer.send(env_bytes())
    return peer


async def test_a_peer_not_on_the_allow_list_is_closed_at_once_and_counted(
    caplog: pytest.LogCaptureFixture,
) -> None:
    calls: list[str] = []

    async def note(session: AgiSession) -> None:
        calls.append(session.env["agi_uniqueid"])

    before = peer_refused_count()
    async with serving({"hotline": note}, allowed_peers="127.0.0.1") as server:
        for stranger_address in ("127.0.0.2", "127.0.0.3", "127.0.0.2"):
            stranger = await open_session(server.port, stranger_address)
            await stranger.expect_closed()
        pbx = await open_session(server.port, "127.0.0.1")
        await pbx.expect_eof()
    assert len(calls) == 1  # only the allowed PBX's call ran
    assert peer_refused_count() == before + 3  # every refusal counted...
    lines = [r for r in caplog.records if "refusing FastAGI connections" in r.getMessage()]
    assert len(lines) == 1  # ...but a flood is not a flood of log lines


async def test_one_peer_cannot_take_every_slot_and_healthz_says_when_calls_are_refused() -> None:
    async def hold(session: AgiSession) -> None:
        await session.noop()  # the idle "PBX" never answers: the session stays open

    async with serving({"hotline": hold}, max_sessions=4, max_sessions_per_peer=3) as server:
        hog = [await open_session(server.port, "127.0.0.1") for _ in range(3)]
        for peer in hog:
            assert await peer.command() == "NOOP"
        assert server.health() == "listening"
        over = await open_session(server.port, "127.0.0.1")  # the hog's fourth
        await over.expect_closed()
        real = await open_session(server.port, "127.0.0.2")  # the real PBX still gets through
        assert await real.command() == "NOOP"
        assert server.health() == "refusing: at max_sessions (4 calls)"
        late = await open_session(server.port, "127.0.0.3")
        await late.expect_closed()
        await real.reply("200 result=0")
        await real.expect_eof()
        await eventually(lambda: server.in_progress == 3)
        # one slot is free again, but a call was just refused: a probe must still see it
        assert server.health().startswith("refusing: calls refused at max_sessions")
        for peer in hog:
            await peer.close()
    assert server.health() == "down: shutting down"


async def test_fastagi_health_says_down_when_not_listening() -> None:
    server = FastAgiServer(Router(), port=0)
    assert server.health() == "down: not listening"
    await server.start()
    assert server.health() == "listening"
    await server.drain(0)
    assert server.health() == "down: shutting down"


@pytest.mark.parametrize("items", ["²", "٣", "9" * 5000, "1_0"])
async def test_an_ami_list_with_a_hostile_item_count_still_completes(items: str) -> None:
    pending = PendingActions()
    waiting = pending.open("a1", "QueueStatus")
    pending.take_response(
        AmiMessage.of(("Response", "Success"), ("ActionID", "a1"), ("EventList", "start"))
    )
    done = AmiMessage.of(
        ("Event", "QueueStatusComplete"),
        ("ActionID", "a1"),
        ("EventList", "Complete"),
        ("ListItems", items),
    )
    assert pending.take_event(done)
    assert (await waiting.future).complete == done


# --- log masking ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "masked"),
    [
        ("звонит 8.916.123.45.67", "звонит *.***.***.**.67"),
        ("звонит +7.916.123.45.67", "звонит +*.***.***.**.67"),
        ("номер 916.123.45.67", "номер ***.***.**.67"),
        ("номер 916  123  45  67", "номер ***  ***  **  67"),
        ("номер 8 916 123.45.67", "номер * *** ***.**.67"),
        ("паспорт 4510 123456", "паспорт **** ****56"),
        ("паспорт 4510123456", "паспорт ********56"),
        ("паспорт серия 4510 № 123456", "паспорт серия **** № ****56"),
        ("серия 45 10 номер 123456", "серия ** ** номер ****56"),
        ("паспорт 4510/123456", "паспорт ****/****56"),
    ],
)
def test_numbers_the_masking_missed_are_masked(text: str, masked: str) -> None:
    assert mask_personal(text) == masked


@pytest.mark.parametrize(
    "text",
    [
        "2026-12-05T03:21:00.123Z FastAGI server listening on 127.0.0.1:4573",
        "call 1714567890.42 ended after 12.5 s (3 commands, 1234 ms)",
        "AMI link to 10.20.0.11:5038 up; Asterisk 22.1.0, Python 3.11.2",
        "смена с 05.12.2026 09:00 до 05.12.2026 21:00, 35 звонков",
        "peer 192.168.100.200 refused, retry in 0.25 s",
    ],
)
def test_timestamps_addresses_ports_and_durations_are_left_alone(text: str) -> None:
    assert mask_personal(text) == text


def test_a_passport_in_an_extra_field_is_masked_by_its_name() -> None:
    assert mask_field("passport", 4510123456) == "********56"


# --- file modes ----------------------------------------------------------------------------


def mode_of(path: Path) -> int:
    return path.stat().st_mode & 0o777


async def test_the_sqlite_database_and_its_wal_are_for_the_service_only(tmp_path: Path) -> None:
    database = tmp_path / "var" / "db" / "hotline.sqlite3"
    engine = create_engine(f"sqlite+aiosqlite:///{database}")
    try:
        async with engine.begin() as conn:
            await conn.execute(text("CREATE TABLE calls (caller TEXT)"))
            await conn.execute(text("INSERT INTO calls VALUES ('79161234567')"))
        wal = database.with_name(database.name + "-wal")
        shm = database.with_name(database.name + "-shm")
        assert wal.exists() and shm.exists()  # open while the engine holds a connection
        assert [mode_of(p) for p in (database, wal, shm)] == [0o600, 0o600, 0o600]
        assert mode_of(database.parent) == mode_of(database.parent.parent) == 0o700
    finally:
        await engine.dispose()


async def test_a_database_left_world_readable_by_an_older_version_is_narrowed(
    tmp_path: Path,
) -> None:
    database = tmp_path / "hotline.sqlite3"
    database.touch(mode=0o644)
    os.chmod(database, 0o644)
    engine = create_engine(f"sqlite+aiosqlite:///{database}")
    await engine.dispose()
    assert mode_of(database) == 0o600


async def test_recorder_directories_keys_and_stored_objects_are_private(tmp_path: Path) -> None:
    settings = RecorderSettings(
        spool_dir=tmp_path / "rec" / "spool",
        work_dir=tmp_path / "rec" / "work",
        keys_dir=tmp_path / "rec" / "keys",
        local_dir=tmp_path / "rec" / "store",
    )
    settings.keys_dir.mkdir(parents=True, mode=0o755)
    os.chmod(settings.keys_dir, 0o755)  # as an older version left it
    store = MasterKeyStore(settings.keys_dir)
    store.generate("recorder")
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'rec.sqlite3'}")
    storage = LocalStorage(settings.local_dir)
    recorder = Recorder(settings, RecordingStore(engine), storage, KeyRing(store, "recorder"))
    recorder.prepare_directories()
    await engine.dispose()
    assert mode_of(settings.keys_dir) == 0o700
    assert [mode_of(p) for p in settings.keys_dir.iterdir()] == [0o600]
    assert mode_of(settings.work_dir) == 0o700
    assert mode_of(settings.spool_dir) == 0o770  # Asterisk's group writes; others nothing
    source = tmp_path / "call.enc"
    source.write_bytes(b"sealed audio")
    async with LocalStorage(settings.local_dir) as storage:
        await storage.put("2026/12/call.enc", source, hashlib.sha256(b"sealed audio").hexdigest())
    assert mode_of(settings.local_dir) == 0o700
    assert mode_of(settings.local_dir / "2026" / "12" / "call.enc") == 0o600


def test_versions_of_admin_files_are_private(tmp_path: Path) -> None:
    versions = VersionStore(tmp_path / "versions")
    version = versions.record("operators", b"anna: {name: Anna Petrova}\n", "admin")
    folder = tmp_path / "versions" / "operators"
    assert mode_of(tmp_path / "versions") == mode_of(folder) == 0o700
    assert mode_of(folder / version.file_name) == mode_of(folder / "index.json") == 0o600


def test_an_exported_clip_is_written_for_its_requester_only(tmp_path: Path) -> None:
    clip = tmp_path / "clip.ogg"
    clip.write_bytes(b"old")
    os.chmod(clip, 0o644)
    with open_private(clip) as out:
        out.write(b"OggS")
    assert mode_of(clip) == 0o600 and clip.read_bytes() == b"OggS"


# --- HTTP: slow headers and connection floods ----------------------------------------------


@contextlib.asynccontextmanager
async def web_server(limits: ConnectionLimits) -> AsyncIterator[int]:
    """The operations endpoint with `limits`, on 127.0.0.1 and a free port."""

    async def health() -> dict[str, str]:
        return {"agi": "listening"}

    runner = await start_web(build_app(health), "127.0.0.1", 0, limits)
    try:
        yield int(runner.addresses[0][1])
    finally:
        await runner.cleanup()


async def healthz(port: int, source: str = "127.0.0.1") -> bytes:
    """A complete GET /healthz on a fresh connection from `source`: the raw response."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port, local_addr=(source, 0))
    writer.write(b"GET /healthz HTTP/1.1\r\nHost: hotline\r\nConnection: close\r\n\r\n")
    async with asyncio.timeout(PEER_TIMEOUT):
        response = await reader.read()
    writer.close()
    return response


async def closed_by_server(reader: asyncio.StreamReader) -> bytes:
    """What the server sent before closing (waits, bounded, for the close)."""
    async with asyncio.timeout(PEER_TIMEOUT * 6):
        try:
            return await reader.read()
        except ConnectionResetError:
            return b""


async def test_a_request_head_that_never_ends_is_cut_while_others_are_served() -> None:
    async with web_server(ConnectionLimits(header_timeout=0.5)) as port:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"GET /healthz HTTP/1.1\r\nHost: hotline\r\nX-Slow: ")

        async def dribble() -> None:  # one byte of a header now and then, never its end
            for _ in range(100_000):
                await asyncio.sleep(0.05)
                writer.write(b"x")
                await writer.drain()

        dribbling = asyncio.create_task(dribble())
        try:
            assert (await healthz(port)).startswith(b"HTTP/1.1 200")
            assert await closed_by_server(reader) == b""  # closed, nothing answered
        finally:
            dribbling.cancel()
            with contextlib.suppress(asyncio.CancelledError, ConnectionError):
                await dribbling
            writer.close()


async def test_one_address_cannot_hold_every_connection() -> None:
    before = peer_refused_count()
    limits = ConnectionLimits(max_connections=5, max_connections_per_peer=3)
    async with web_server(limits) as port:
        idle = [await asyncio.open_connection("127.0.0.1", port) for _ in range(3)]
        refused = await healthz(port)  # a fourth from the same address
        assert refused.startswith(b"HTTP/1.1 503")
        assert "Сервер перегружен" in refused.decode()
        assert (await healthz(port, "127.0.0.2")).startswith(b"HTTP/1.1 200")
        idle += [await asyncio.open_connection("127.0.0.1", port, local_addr=("127.0.0.3", 0))]
        idle += [await asyncio.open_connection("127.0.0.1", port, local_addr=("127.0.0.4", 0))]
        await asyncio.sleep(0)  # let the server accept them
        assert (await healthz(port, "127.0.0.5")).startswith(b"HTTP/1.1 503")  # 5 in all
        assert peer_refused_count() == before + 2
        for _, writer in idle:
            writer.close()
        await eventually_async(lambda: healthz(port))  # closed connections free their slots


async def eventually_async(probe: Callable[[], Awaitable[bytes]]) -> None:
    """Retry `probe` until it answers 200 (the server notices closed connections later)."""
    async with asyncio.timeout(PEER_TIMEOUT):
        while not (await probe()).startswith(b"HTTP/1.1 200"):  # noqa: ASYNC110
            await asyncio.sleep(0.01)


# --- the controller, as the findings were made against `hotline serve` ---------------------


async def test_the_controller_says_when_fastagi_refuses_calls_and_keeps_its_database_private(
    tmp_path: Path,
) -> None:
    settings = controller_settings(tmp_path, {**WITHOUT_RECORDER, "HOTLINE_AGI_MAX_SESSIONS": "1"})
    async with started(settings) as node:
        assert node.agi is not None
        database = tmp_path / "calls.sqlite3"
        assert mode_of(database) == 0o600
        url = f"http://127.0.0.1:{node.http_port}/healthz"
        async with aiohttp.ClientSession() as client:
            async with client.get(url) as healthy:
                assert healthy.status == 200
            idle = await AsteriskPeer.connect(node.agi.port)  # takes the one slot, then idles
            assert await idle.command() == "ANSWER"
            refused = await AsteriskPeer.connect(node.agi.port)
            await refused.expect_closed()  # the next real call would fail...
            async with client.get(url) as probe:  # ...and /healthz now says so
                body = await probe.json()
                assert probe.status == 503
                assert body["components"]["agi"].startswith("refusing: at max_sessions")
            await idle.close()
