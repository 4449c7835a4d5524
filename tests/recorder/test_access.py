"""Access to recordings by role: policy, token file, streaming decryption and the HTTP API.

The API runs on a real aiohttp server over a migrated SQLite and PostgreSQL database, with
encrypted objects in local storage; every request's audit entry is checked.
"""

from __future__ import annotations

import asyncio
import io
import os
import subprocess
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from databases import migrated_engine
from sqlalchemy.exc import OperationalError
from stored_recordings import duration_of, make_tone, store_encrypted
from yamlfiles import assert_refused_at_line

from hotline.access import access_middleware
from hotline.audit import AuditLog, AuditRecord
from hotline.auth import Actor, Role, TokenBook, new_token
from hotline.store.db import create_engine
from hotline.store.migrate import upgrade
from hotline.yamldoc import YamlFileError
from recorder import keys
from recorder.http import RangeNotSatisfiable, add_routes, build_app, install, parse_range
from recorder.models import RecordedCall, RecordingStore, State
from recorder.permissions import PERMISSIONS, Action, is_allowed
from recorder.pipeline import CallInfo, Recorder
from recorder.playback import RecordingAccess, decrypt_chunks
from recorder.retention import Purger, RetentionPolicy
from recorder.settings import AccessSettings, RecorderSettings
from recorder.spool import spool_path
from recorder.storage import LocalStorage, Storage

TOKENS = {
    "tok-auditor": Actor("ivanova", "quality_auditor"),
    "tok-supervisor": Actor("petrov", "supervisor"),
    "tok-security": Actor("sidorova", "security_officer"),
    "tok-operator": Actor("op-7", "operator"),
}
STARTED = datetime(2026, 11, 20, 10, 0, tzinfo=UTC)


def make_wav(path: Path, seconds: float) -> None:
    """An 8 kHz mono 16-bit WAV as MixMonitor writes it."""
    subprocess.run(
        ["ffmpeg", "-hide_banner", "-loglevel", "error", "-f", "lavfi", "-i",
         f"sine=frequency=300:duration={seconds}:sample_rate=8000", "-ac", "1",
         "-c:a", "pcm_s16le", str(path)],
        check=True,
    )  # fmt: skip


def duration_of_audio(data: bytes, tmp_path: Path) -> float:
    path = tmp_path / "probe.ogg"
    path.write_bytes(data)
    return duration_of(path)


async def store_recording(
    store: RecordingStore,
    storage: Storage,
    key_ring: keys.KeyRing,
    call_id: str,
    audio: bytes,
    *,
    operator: str | None = "op-1",
    started_at: datetime = STARTED,
    state: State = State.VERIFIED,
    chunk_size: int = 4096,
    duration: float | None = 6.0,
) -> RecordedCall:
    """What the pipeline leaves behind: an encrypted object and a verified row."""
    await store.register(
        call_id, format="opus", started_at=started_at, operator=operator, dialled_number="122"
    )
    return await store_encrypted(
        store,
        storage,
        key_ring,
        call_id,
        audio,
        chunk_size=chunk_size,
        object_key=f"recordings/{call_id}.ogg.enc",
        state=state.value,
        duration_seconds=duration,
        ended_at=started_at + timedelta(seconds=duration or 0),
    )


@pytest.fixture(scope="session")
def tone(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    return make_tone(tmp_path_factory.mktemp("audio") / "tone.ogg", 6)


@dataclass
class Api:
    client: TestClient
    access: RecordingAccess
    storage: LocalStorage
    audio: bytes

    async def get(self, path: str, token: str | None = "tok-auditor", **headers: str):  # type: ignore[no-untyped-def]
        if token is not None:
            headers["Authorization"] = f"Bearer {token}"
        return await self.client.get(path, headers=headers)

    async def last_audit(self) -> AuditRecord:
        return (await self.access.audit.entries())[-1]


@pytest.fixture
async def api(
    recording_store: RecordingStore, key_ring: keys.KeyRing, tmp_path: Path, tone: bytes
) -> AsyncIterator[Api]:
    storage = LocalStorage(tmp_path / "store" / "objects")
    async with storage:
        access = RecordingAccess(
            recording_store, storage, key_ring, AuditLog(recording_store.engine)
        )
        await store_recording(recording_store, storage, key_ring, "1732701600.1", tone)
        async with TestClient(TestServer(build_app(access, TokenBook.of(TOKENS)))) as client:
            yield Api(client, access, storage, tone)


# --- policy -------------------------------------------------------------------------------


@pytest.mark.parametrize("role", ["quality_auditor", "supervisor", "security_officer"])
@pytest.mark.parametrize("action", [Action.PLAY, Action.DOWNLOAD, Action.CLIP, Action.LIST])
def test_listening_roles_may_play_download_clip_and_list(role: str, action: Action) -> None:
    assert is_allowed(role, action)


@pytest.mark.parametrize("role", ["operator", "", None, "admin", "QUALITY_AUDITOR", "system "])
def test_operators_and_unknown_or_absent_roles_may_do_nothing(role: str | None) -> None:
    assert not any(is_allowed(role, action) for action in Action)


def test_holds_are_for_security_officers_and_samples_for_quality_roles() -> None:
    holders = {role for role, allowed in PERMISSIONS.items() if Action.HOLD in allowed}
    samplers = {role for role, allowed in PERMISSIONS.items() if Action.SAMPLE in allowed}
    assert holders == {Role.SECURITY_OFFICER, Role.SYSTEM}
    assert samplers == {Role.QUALITY_AUDITOR, Role.SUPERVISOR, Role.SYSTEM}


# --- token file ---------------------------------------------------------------------------


def test_token_file_maps_tokens_to_users_and_roles(tmp_path: Path) -> None:
    token, digest = new_token()
    other, other_digest = new_token()
    path = tmp_path / "tokens.yaml"
    path.write_text(
        "users:\n"
        f"  - {{user: ivanova, role: quality_auditor, token_sha256: {digest}}}\n"
        f"  - user: op-7\n    role: operator\n    token_sha256: {other_digest.upper()}\n",
        encoding="utf-8",
    )

    book = TokenBook.load(path)

    assert book.lookup(token) == Actor("ivanova", "quality_auditor")
    assert book.lookup(other) == Actor("op-7", "operator")
    assert book.lookup(token + "x") is None and book.lookup("") is None
    assert token not in path.read_text()  # the file never holds a usable secret


@pytest.mark.parametrize(
    ("text", "where", "says"),
    [
        ("users:\n  - user: a\n    role: root\n    token_sha256: " + "a" * 64, 3, "role `root`"),
        ("users:\n  - user: a\n    role: supervisor\n    token_sha256: s3cret", 4, "64 hex"),
        ("users:\n  - user: a\n    role: supervisor\n", 2, "lacks `token_sha256`"),
        ("users:\n  - user: a\n    rol: supervisor\n", 3, "unknown key `rol`"),
        ("users: [\n  {user: a\n", 3, "not valid YAML"),
        ("users: {a: 1}\n", 1, "must be a list"),
        ("- user: a\n", 1, "must be a mapping"),
        ("users:\n  - user: a\n    user: b\n", 3, "duplicate key 'user'"),
        (
            f"users:\n  - {{user: a, role: supervisor, token_sha256: {'b' * 64}}}\n"
            f"  - {{user: b, role: operator, token_sha256: {'b' * 64}}}\n",
            3,
            "already given on line 2",
        ),
    ],
)
def test_token_file_mistakes_point_at_file_and_line(
    tmp_path: Path, text: str, where: int, says: str
) -> None:
    assert_refused_at_line(TokenBook.load, tmp_path / "tokens.yaml", text, where, says)


def test_missing_token_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(YamlFileError, match="does not exist"):
        TokenBook.load(tmp_path / "absent.yaml")


def test_a_token_file_with_no_entries_yet_lets_nobody_in(tmp_path: Path) -> None:
    path = tmp_path / "tokens.yaml"
    path.write_text("# users: added with `hotline recordings token`\n\n", encoding="utf-8")
    assert TokenBook.load(path).grants == ()


# --- streaming decryption -----------------------------------------------------------------


async def _pieces(data: bytes, size: int) -> AsyncIterator[bytes]:
    for start in range(0, len(data), size):
        yield data[start : start + size]
        await asyncio.sleep(0)


def _encrypt(plain: bytes, chunk_size: int) -> tuple[bytes, bytes]:
    key = os.urandom(32)
    sink = io.BytesIO()
    keys.encrypt_stream(key, io.BytesIO(plain), sink, chunk_size)
    return key, sink.getvalue()


@pytest.mark.parametrize("plain_size", [0, 1, 999, 1000, 1001, 20_000])
@pytest.mark.parametrize("piece", [1, 7, 1016, 65536])
async def test_decrypt_chunks_streams_any_object_in_any_pieces(plain_size: int, piece: int) -> None:
    plain = os.urandom(plain_size)
    key, cipher = _encrypt(plain, 1000)

    out = [chunk async for chunk in decrypt_chunks(key, _pieces(cipher, piece))]

    assert b"".join(out) == plain
    assert max(map(len, out), default=0) <= 1000  # one frame at a time, never the whole file


@pytest.mark.parametrize("damage", ["flip", "truncate", "wrong key", "not ours"])
async def test_decrypt_chunks_refuses_damaged_objects(damage: str) -> None:
    key, cipher = _encrypt(os.urandom(5000), 1000)
    if damage == "flip":
        cipher = cipher[:3000] + bytes([cipher[3000] ^ 1]) + cipher[3001:]
    elif damage == "truncate":
        cipher = cipher[: keys.HEADER_SIZE + 2 * 1016]
    elif damage == "wrong key":
        key = os.urandom(32)
    else:
        cipher = b"OggS" + os.urandom(100)

    with pytest.raises(keys.IntegrityError):
        async for _ in decrypt_chunks(key, _pieces(cipher, 333)):
            pass


# --- ranges -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (None, None),
        ("bytes=0-99", (0, 99)),
        ("bytes=100-", (100, 999)),
        ("bytes=-10", (990, 999)),
        ("bytes=-5000", (0, 999)),
        ("bytes=990-5000", (990, 999)),
        ("bytes=5-1", None),
        ("bytes=0-1,5-6", None),
        ("items=0-1", None),
        ("bytes=abc", None),
    ],
)
def test_parse_range(header: str | None, expected: tuple[int, int] | None) -> None:
    assert parse_range(header, 1000) == expected


@pytest.mark.parametrize("header", ["bytes=1000-", "bytes=-0"])
def test_unsatisfiable_ranges(header: str) -> None:
    with pytest.raises(RangeNotSatisfiable):
        parse_range(header, 1000)


# --- the API ------------------------------------------------------------------------------


async def test_auditor_plays_the_decrypted_recording_and_it_is_audited(api: Api) -> None:
    response = await api.get("/recordings/1732701600.1/audio")

    assert response.status == 200
    assert response.headers["Content-Type"] == "audio/ogg"
    assert response.headers["Accept-Ranges"] == "bytes"
    assert response.headers["Content-Disposition"].startswith("inline")
    assert await response.read() == api.audio
    entry = await api.last_audit()
    assert (entry.user_id, entry.role, entry.action, entry.recording_id, entry.outcome) == (
        "ivanova",
        "quality_auditor",
        "play",
        "1732701600.1",
        "ok",
    )
    assert entry.source == "127.0.0.1"


async def test_behind_the_access_middleware_the_recorder_judges_the_actor_it_established(
    api: Api,
) -> None:
    """In the controller the middleware says who is asking (a session cookie, say: no bearer
    header at all); the recorder judges and audits that actor, not its own token file."""
    session = {"sess-auditor": Actor("kozlova", Role.QUALITY_AUDITOR, csrf_token="c"),
               "sess-operator": Actor("op-9", Role.OPERATOR, csrf_token="c")}  # fmt: skip

    async def by_cookie(request: web.Request) -> Actor | None:
        return session.get(request.cookies.get("session", ""))

    app = web.Application(middlewares=[access_middleware(by_cookie)])
    add_routes(app, api.access, TokenBook.of(TOKENS))
    async with TestClient(TestServer(app)) as client:
        url = "/recordings/1732701600.1/audio"
        reply = await client.get(url, cookies={"session": "sess-auditor"})
        assert reply.status == 200 and await reply.read() == api.audio
        played = await api.last_audit()
        assert (played.user_id, played.action, played.outcome) == ("kozlova", "play", "ok")
        reply = await client.get(url, cookies={"session": "sess-operator"})
        assert reply.status == 403 and "Операторам" in (await reply.json())["error"]
        refused = await api.last_audit()
        assert (refused.user_id, refused.action, refused.outcome) == ("op-9", "play", "refused")
        # nobody: refused at the door (a security event), no audit row
        assert (await client.get(url)).status == 401
        assert (await api.last_audit()).seq == refused.seq


@pytest.mark.parametrize("header", ["bytes=0-99", "bytes=4090-8200", "bytes=5000-", "bytes=-77"])
async def test_range_requests_get_exactly_that_slice(api: Api, header: str) -> None:
    size = len(api.audio)
    first, last = parse_range(header, size) or (0, size - 1)

    response = await api.get("/recordings/1732701600.1/audio", Range=header)

    assert response.status == 206
    assert response.headers["Content-Range"] == f"bytes {first}-{last}/{size}"
    assert await response.read() == api.audio[first : last + 1]
    assert (await api.last_audit()).detail_data == {"range": header}


async def test_range_past_the_end_is_416(api: Api) -> None:
    response = await api.get("/recordings/1732701600.1/audio", Range="bytes=99999999-")
    assert response.status == 416
    assert response.headers["Content-Range"] == f"bytes */{len(api.audio)}"


async def test_supervisor_and_security_officer_download(api: Api) -> None:
    for token in ("tok-supervisor", "tok-security"):
        response = await api.get("/recordings/1732701600.1/download", token)
        assert response.status == 200
        assert response.headers["Content-Disposition"] == (
            'attachment; filename="1732701600.1.ogg"'
        )
        assert await response.read() == api.audio
    assert (await api.last_audit()).action == "download"


@pytest.mark.parametrize("path", ["/audio", "/download", "/clip?from=0&to=1", "", "S"])
async def test_operator_is_refused_everything_in_russian_and_audited(api: Api, path: str) -> None:
    url = "/recordings" + ("?operator=op-7" if path == "S" else f"/1732701600.1{path}")

    response = await api.get(url, "tok-operator")

    assert response.status == 403
    assert (await response.json()) == {"error": "Операторам доступ к записям разговоров запрещён."}
    entry = await api.last_audit()
    assert (entry.user_id, entry.role, entry.outcome) == ("op-7", "operator", "refused")


async def test_missing_and_unknown_tokens_are_refused_and_audited(api: Api) -> None:
    response = await api.get("/recordings/1732701600.1/audio", token=None)
    assert response.status == 401 and "Bearer" in response.headers["WWW-Authenticate"]
    assert (await response.json())["error"].startswith("Требуется вход")
    entry = await api.last_audit()
    assert (entry.user_id, entry.role, entry.action, entry.outcome) == (
        "",
        "",
        "play",
        "unauthenticated",
    )

    response = await api.get("/recordings/1732701600.1/download", token="guess-123")
    assert response.status == 401
    assert (await response.json()) == {"error": "Токен доступа не распознан."}
    entry = await api.last_audit()
    assert entry.outcome == "unauthenticated" and "guess-123" not in entry.detail
    assert (
        entry.detail_data["token_sha256_prefix"]
        == keys.hashlib.sha256(b"guess-123").hexdigest()[:12]
    )


async def test_unknown_recording_is_404_and_audited(api: Api) -> None:
    response = await api.get("/recordings/no-such-call/audio")
    assert response.status == 404
    assert (await response.json()) == {"error": "Запись no-such-call не найдена."}
    entry = await api.last_audit()
    assert (entry.recording_id, entry.outcome) == ("no-such-call", "not_found")


async def test_recording_still_in_the_pipeline_is_409(api: Api, key_ring: keys.KeyRing) -> None:
    await store_recording(
        api.access.recordings, api.storage, key_ring, "busy.1", b"x" * 10, state=State.STORED
    )
    response = await api.get("/recordings/busy.1/audio")
    assert response.status == 409 and "обрабатывается" in (await response.json())["error"]
    assert (await api.last_audit()).outcome == "not_ready"
    await api.access.recordings.register("spooled.1", format="opus", started_at=STARTED)
    response = await api.get("/recordings/spooled.1/audio")  # no key yet: still not "purged"
    assert response.status == 409


async def test_lost_object_is_500_with_a_message_and_audited(api: Api) -> None:
    (api.storage.root / "recordings" / "1732701600.1.ogg.enc").unlink()

    response = await api.get("/recordings/1732701600.1/audio")

    assert response.status == 500
    assert "Сообщите администратору" in (await response.json())["error"]
    entries = await api.access.audit.entries()
    assert [e.outcome for e in entries[-2:]] == ["ok", "error"]


async def test_metadata_shows_no_key_material(api: Api) -> None:
    response = await api.get("/recordings/1732701600.1", "tok-security")
    body = await response.json()
    assert response.status == 200
    assert body["id"] == "1732701600.1" and body["playable"] is True
    assert body["size"] == len(api.audio) and body["operator"] == "op-1"
    assert not {"wrapped_key", "key_id", "storage_key"} & set(body)
    assert (await api.last_audit()).action == "metadata"


async def test_list_filters_by_operator_and_time(api: Api, key_ring: keys.KeyRing) -> None:
    store = api.access.recordings
    for index, operator in enumerate(["op-2", "op-2", "op-3"]):
        await store_recording(
            store,
            api.storage,
            key_ring,
            f"call.{index}",
            b"a",
            operator=operator,
            started_at=STARTED + timedelta(days=index + 1),
        )

    response = await api.get("/recordings?operator=op-2&since=2026-11-21T12:00:00%2B03:00&limit=10")

    assert response.status == 200
    assert [r["id"] for r in (await response.json())["recordings"]] == ["call.1", "call.0"]
    entry = await api.last_audit()
    assert (entry.action, entry.recording_id) == ("list", None)
    assert entry.detail_data["operator"] == "op-2"


@pytest.mark.parametrize("query", ["since=yesterday", "limit=0", "limit=100000", "offset=-1"])
async def test_list_with_bad_filters_is_400_in_russian(api: Api, query: str) -> None:
    response = await api.get(f"/recordings?{query}")
    assert response.status == 400
    assert "Параметр" in (await response.json())["error"]
    assert (await api.last_audit()).outcome == "bad_request"


async def test_clip_export_cuts_the_asked_seconds(api: Api, tmp_path: Path) -> None:
    response = await api.get("/recordings/1732701600.1/clip?from=2&to=4.5")

    assert response.status == 200
    assert response.headers["Content-Disposition"] == (
        'attachment; filename="1732701600.1_2-4.5.ogg"'
    )
    clip = await response.read()
    assert clip.startswith(b"OggS")
    assert duration_of_audio(clip, tmp_path) == pytest.approx(2.5, abs=0.1)
    entry = await api.last_audit()
    assert (entry.action, entry.outcome, entry.detail_data) == (
        "clip",
        "ok",
        {"from": 2.0, "to": 4.5},
    )


@pytest.mark.parametrize("query", ["", "from=3&to=2", "from=a&to=2", "from=7&to=9", "from=-1&to=1"])
async def test_clip_with_bad_bounds_is_400(api: Api, query: str) -> None:
    response = await api.get(f"/recordings/1732701600.1/clip?{query}")
    assert response.status == 400
    assert (await api.last_audit()).outcome == "bad_request"


async def test_every_request_leaves_a_verifiable_chain(api: Api) -> None:
    await api.get("/recordings/1732701600.1/audio")
    await api.get("/recordings/1732701600.1/audio", "tok-operator")
    await api.get("/recordings/1732701600.1/audio", None)
    await asyncio.gather(*(api.get("/recordings/1732701600.1/audio") for _ in range(10)))

    report = await api.access.audit.verify()

    assert report.ok and report.entries == 13


# --- the whole way: a recorded call through the pipeline, the API and the purge ----------


async def test_recorded_call_is_played_by_an_auditor_refused_to_an_operator_then_shredded(
    tmp_path: Path, recording_store: RecordingStore, key_ring: keys.KeyRing
) -> None:
    settings = RecorderSettings(
        spool_dir=tmp_path / "spool", work_dir=tmp_path / "work", keys_dir=tmp_path / "keys",
        local_dir=tmp_path / "store", settle_seconds=0.01, spool_alarm_free_bytes=0,
        spool_alarm_free_percent=0,
    )  # fmt: skip
    call_id, ended = "1795563226.9", STARTED + timedelta(seconds=5)
    async with LocalStorage(settings.local_dir) as storage:
        recorder = Recorder(settings, recording_store, storage, key_ring)
        recorder.prepare_directories()
        make_wav(spool_path(settings.spool_dir, call_id), 5)
        await recorder.finished(call_id, CallInfo("88001234567", "op-5", STARTED, ended))
        await recorder.run_until_idle()
        row = await recording_store.get(call_id)
        assert row is not None and row.state == State.VERIFIED and row.storage_key
        object_path = settings.local_dir / row.storage_key
        stolen_copy = object_path.read_bytes()  # say, a backup of the object store
        assert b"OggS" not in stolen_copy  # the storage only ever saw ciphertext
        data_key = key_ring.unwrap(call_id, keys.wrapped_key_of(row))
        plain = io.BytesIO()
        keys.decrypt_stream(data_key, io.BytesIO(stolen_copy), plain)
        assert plain.getvalue().startswith(b"OggS")  # ...decryptable while the key lives
        del data_key

        audit = AuditLog(recording_store.engine)
        access = RecordingAccess(recording_store, storage, key_ring, audit)
        async with TestClient(TestServer(build_app(access, TokenBook.of(TOKENS)))) as client:
            api = Api(client, access, storage, b"")
            played = await api.get(f"/recordings/{call_id}/audio")
            audio = await played.read()
            assert played.status == 200 and audio.startswith(b"OggS")
            assert duration_of_audio(audio, tmp_path) == pytest.approx(5.0, abs=0.1)
            assert (await api.get(f"/recordings/{call_id}/audio", "tok-operator")).status == 403

            policy = RetentionPolicy.load(tmp_path / "no-file.yaml", settings)
            report = await Purger(recording_store.engine, storage, audit, policy).run(
                ended + timedelta(days=366)
            )
            assert report.purged == [call_id]

            gone = await api.get(f"/recordings/{call_id}/audio")
            assert gone.status == 410

    row = await recording_store.get(call_id)
    assert row is not None and row.wrapped_key is None
    with pytest.raises(keys.KeyError_):
        key_ring.unwrap(call_id, keys.wrapped_key_of(row))
    assert not object_path.exists()
    # The copy survives elsewhere, but its data key no longer exists anywhere: it is noise.
    trail = [(e.user_id, e.action, e.outcome) for e in await audit.entries(recording_id=call_id)]
    assert trail == [
        ("ivanova", "play", "ok"),
        ("op-7", "play", "refused"),
        ("retention", "purge", "ok"),
        ("ivanova", "play", "purged"),
    ]
    assert (await audit.verify()).ok


async def test_playback_with_ranges_streams_from_s3(
    seaweed: Any, sqlite_url: str, key_ring: keys.KeyRing, tone: bytes
) -> None:
    """The same API over the S3 backend (a real SeaweedFS): objects are read as a stream."""
    async with migrated_engine(sqlite_url) as engine:
        store = RecordingStore(engine)
        async with seaweed.bucket() as s3:
            await store_recording(store, s3, key_ring, "s3.1", tone, chunk_size=1024)
            access = RecordingAccess(store, s3, key_ring, AuditLog(engine))
            app = build_app(access, TokenBook.of(TOKENS))
            async with TestClient(TestServer(app)) as client:
                api = Api(client, access, s3, tone)  # type: ignore[arg-type]
                whole = await api.get("/recordings/s3.1/download", "tok-supervisor")
                assert whole.status == 200 and await whole.read() == tone
                part = await api.get("/recordings/s3.1/audio", Range="bytes=3000-7000")
                assert part.status == 206 and await part.read() == tone[3000:7001]
        assert (await access.audit.verify()).entries == 2


async def test_install_serves_the_api_from_the_settings(
    tmp_path: Path, sqlite_url: str, tone: bytes
) -> None:
    """What the controller calls: token file and storage come from the settings."""
    await upgrade(sqlite_url)
    engine = create_engine(sqlite_url)
    token, digest = new_token()
    tokens_file = tmp_path / "tokens.yaml"
    tokens_file.write_text(
        f"users:\n  - {{user: ivanova, role: quality_auditor, token_sha256: {digest}}}\n"
    )
    recorder = RecorderSettings(keys_dir=tmp_path / "keys", local_dir=tmp_path / "store")
    ring = keys.KeyRing(keys.MasterKeyStore(recorder.keys_dir), "recorder")
    ring.store.generate("recorder")
    try:
        async with LocalStorage(recorder.local_dir) as local:
            await store_recording(RecordingStore(engine), local, ring, "inst.1", tone)
        app = web.Application()
        install(app, engine, recorder, AccessSettings(tokens_file=tokens_file))
        async with TestClient(TestServer(app)) as client:
            response = await client.get(
                "/recordings/inst.1/audio", headers={"Authorization": f"Bearer {token}"}
            )
            assert response.status == 200 and await response.read() == tone
        broken = tmp_path / "broken.yaml"
        broken.write_text("users:\n  - user: x\n")
        with pytest.raises(YamlFileError, match=r"broken.yaml:2:"):
            install(web.Application(), engine, recorder, AccessSettings(tokens_file=broken))
    finally:
        await engine.dispose()


async def test_security_officer_places_and_lifts_a_legal_hold(api: Api) -> None:
    url = "/recordings/1732701600.1/hold"
    security = {"Authorization": "Bearer tok-security"}

    placed = await api.client.put(url, json={"reason": "дело 2-77/2026"}, headers=security)
    assert placed.status == 200 and "установлен" in (await placed.json())["result"]
    row = await api.access.recordings.get("1732701600.1")
    assert row is not None and row.legal_hold

    auditor = await api.client.delete(
        url, json={"reason": "x"}, headers={"Authorization": "Bearer tok-auditor"}
    )
    assert auditor.status == 403
    assert "снятие запрета удаления" in (await auditor.json())["error"]
    no_reason = await api.client.delete(url, json={}, headers=security)
    assert no_reason.status == 400
    deep = b'{"reason": ' + b"[" * 10_000 + b"]" * 10_000 + b"}"  # was a 500
    nested = await api.client.delete(url, data=deep, headers=security)
    assert nested.status == 400 and "вложенность" in (await nested.json())["error"]
    unknown = await api.client.put("/recordings/nope/hold", json={"reason": "r"}, headers=security)
    assert unknown.status == 404

    lifted = await api.client.delete(url, json={"reason": "дело закрыто"}, headers=security)
    assert lifted.status == 200
    row = await api.access.recordings.get("1732701600.1")
    assert row is not None and not row.legal_hold
    trail = [(e.user_id, e.action, e.outcome) for e in await api.access.audit.entries()]
    assert trail == [
        ("sidorova", "hold", "ok"),
        ("ivanova", "release", "refused"),
        ("sidorova", "release", "bad_request"),
        ("sidorova", "release", "bad_request"),
        ("sidorova", "hold", "not_found"),
        ("sidorova", "release", "ok"),
    ]


async def test_no_audit_no_access(api: Api, monkeypatch: pytest.MonkeyPatch) -> None:
    async def audit_down(*args: object, **kwargs: object) -> None:
        raise OperationalError("INSERT INTO recording_audit", {}, Exception("disk I/O error"))

    monkeypatch.setattr(api.access.audit, "record", audit_down)

    response = await api.get("/recordings/1732701600.1/audio")

    assert response.status == 503
    assert (await response.json())["error"].startswith("Журнал доступа недоступен")
