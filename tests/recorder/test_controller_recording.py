"""The recorder's wiring around the call: the simulator's MixMonitor, the answer hook, the
controller's token file and master key handling."""

from __future__ import annotations

import wave
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import aiohttp
import pytest
from controllers import controller_settings, recorder_environment, started, with_tokens_file
from prometheus_client import REGISTRY

from controller.node import Controller
from controller.settings import Settings
from hotline.agi.router import Router
from hotline.agi.server import FastAgiServer
from hotline.agi.session import AgiSession
from hotline.auth import new_token
from hotline.yamldoc import YamlFileError
from pbxsim.runner import run_scenario
from pbxsim.scenario import parse_scenario
from recorder import keys
from recorder.agi import StartRecording
from recorder.part import ensure_master_key
from recorder.settings import RecorderSettings

# --- the simulator's MixMonitor, driven through the runner as a real call -----------------


class Events:
    """An event sink that also notes whether each recording file existed at each event."""

    def __init__(self, watched: Path) -> None:
        self.watched = watched
        self.seen: list[tuple[str, bool]] = []

    def emit(self, event: str, headers: list[tuple[str, str]]) -> None:
        self.seen.append((event, self.watched.exists()))

    def names(self) -> list[str]:
        return [name for name, _ in self.seen]


async def call_with(
    handler: Callable[[AgiSession], Awaitable[None]], wav: Path, hangup_after: float | None = None
) -> Events:
    async def tagged(session: AgiSession) -> None:
        # The controller's entry tags the call first thing and says when it is done; without
        # HOTLINE_DONE the shipped dialplan would hand the caller back to the controller.
        await session.set_variable("HOTLINE_DID", "88001000001")
        await handler(session)
        await session.set_variable("HOTLINE_DONE", "1")

    router = Router()
    router.add("hotline", tagged)
    server = FastAgiServer(router, host="127.0.0.1", port=0)
    await server.start()
    events = Events(wav)
    patience = f", hangup_after: {hangup_after}" if hangup_after else ""
    scenario = parse_scenario(f"calls: [{{number: '88001000001'{patience}}}]\n")
    try:
        report = await run_scenario(scenario, "127.0.0.1", server.port, sink=events)
    finally:
        await server.drain(1)
    assert report.calls[0].error is None
    return events


def frames(path: Path) -> int:
    with wave.open(str(path), "rb") as audio:
        assert (audio.getnchannels(), audio.getsampwidth(), audio.getframerate()) == (1, 2, 8000)
        return audio.getnframes()


async def test_the_recording_is_written_before_the_hangup_is_reported(tmp_path: Path) -> None:
    wav = tmp_path / "spool" / "call.wav"

    async def record_four_seconds(session: AgiSession) -> None:
        await session.answer()
        await session.exec("MixMonitor", str(wav))
        await session.exec("Wait", "4")

    events = await call_with(record_four_seconds, wav)
    assert frames(wav) == 4 * 8000
    # As in Asterisk 22's capture: a hang-up ends MixMonitor without a MixMonitorStop, and the
    # file is complete by the time anyone hears of the Hangup.
    assert "MixMonitorStart" in events.names() and "MixMonitorStop" not in events.names()
    assert ("Hangup", True) in events.seen
    assert not any(exists for name, exists in events.seen if name == "MixMonitorStart")


async def test_stop_mixmonitor_writes_the_file_and_reports_the_stop(tmp_path: Path) -> None:
    wav = tmp_path / "call.wav"

    async def record_two_of_five_seconds(session: AgiSession) -> None:
        await session.answer()
        await session.exec("MixMonitor", str(wav))
        await session.exec("Wait", "2")
        await session.exec("StopMixMonitor")
        await session.exec("Wait", "3")

    events = await call_with(record_two_of_five_seconds, wav)
    assert frames(wav) == 2 * 8000
    assert ("MixMonitorStop", True) in events.seen


async def test_a_caller_hanging_up_cuts_the_recording_at_that_moment(tmp_path: Path) -> None:
    wav = tmp_path / "call.wav"

    async def long_wait(session: AgiSession) -> None:
        await session.answer()
        await session.exec("MixMonitor", str(wav))
        await session.exec("Wait", "60")

    await call_with(long_wait, wav, hangup_after=10)
    # from the answer (the line rings a moment first) to the hang-up 10 s after arrival,
    # not the 60 s the controller meant to wait
    assert 9 * 8000 <= frames(wav) < 10 * 8000


async def test_an_unwritable_recording_path_does_not_break_the_call(tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("")
    wav = blocker / "call.wav"

    results: list[int] = []  # asserted below: an assert in the handler would be swallowed

    async def record(session: AgiSession) -> None:
        await session.answer()
        results.append(await session.exec("MixMonitor", str(wav)))
        await session.exec("Wait", "1")

    events = await call_with(record, wav)
    assert results == [0]  # MixMonitor starts (its file fails later), as on Asterisk
    assert "Hangup" in events.names() and not wav.exists()


# --- the answer hook ------------------------------------------------------------------------


class ScriptedSession:
    """Just enough of AgiSession for the hook: a call id and EXEC's result."""

    def __init__(self, call_id: str, result: int) -> None:
        self.call_id = call_id
        self.result = result
        self.executed: list[tuple[str, ...]] = []

    async def exec(self, application: str, *options: str) -> int:
        self.executed.append((application, *options))
        return self.result


def starts(outcome: str) -> float:
    value = REGISTRY.get_sample_value("hotline_recorder_starts_total", {"outcome": outcome})
    return value or 0.0


@pytest.mark.parametrize(
    ("call_id", "result", "outcome"),
    [
        ("1795563091.1", 0, "started"),
        ("1795563091.1", -2, "no_application"),
        ("1795563091.1", -1, "failed"),
        ("../../etc/passwd", 0, "bad_call_id"),
    ],
)
async def test_the_hook_never_costs_the_call(
    tmp_path: Path, call_id: str, result: int, outcome: str
) -> None:
    session = ScriptedSession(call_id, result)
    before = starts(outcome)
    await StartRecording(tmp_path / "spool")(session)  # type: ignore[arg-type]
    assert starts(outcome) == before + 1
    if outcome == "bad_call_id":
        assert session.executed == []  # nothing outside the spool is ever named
    else:
        expected = str((tmp_path / "spool").resolve() / f"{call_id}.wav")
        assert session.executed == [("MixMonitor", expected)]


def test_a_spool_path_asterisk_would_misread_is_refused_at_start(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="spool_dir"):
        StartRecording(tmp_path / "calls,b")


# --- the master key ---------------------------------------------------------------------


def test_first_start_generates_the_master_key_once(tmp_path: Path) -> None:
    settings = RecorderSettings(keys_dir=tmp_path / "keys")
    ensure_master_key(settings)
    store = keys.MasterKeyStore(settings.keys_dir)
    first = store.current("recorder")
    ensure_master_key(settings)
    assert store.versions("recorder") == [1] and store.current("recorder") == first
    assert (store.path("recorder", 1).stat().st_mode & 0o777) == 0o600


def test_an_unusable_master_key_is_not_replaced(tmp_path: Path) -> None:
    settings = RecorderSettings(keys_dir=tmp_path / "keys")
    settings.keys_dir.mkdir()
    (settings.keys_dir / "recorder.v1.key").write_text("not hex\n")
    (settings.keys_dir / "recorder.v1.key").chmod(0o600)
    with pytest.raises(keys.KeyError_, match="not hex"):
        ensure_master_key(settings)
    assert keys.MasterKeyStore(settings.keys_dir).versions("recorder") == [1]


# --- the controller's token file ----------------------------------------------------------


def node_settings(tmp_path: Path) -> Settings:
    settings = controller_settings(tmp_path, recorder_environment(tmp_path))
    return with_tokens_file(settings, tmp_path / "tokens.yaml")


@pytest.fixture
async def node(tmp_path: Path) -> AsyncIterator[Controller]:
    async with started(node_settings(tmp_path)) as controller:
        yield controller


async def list_status(controller: Controller, token: str) -> int:
    url = f"http://127.0.0.1:{controller.http_port}/recordings"
    async with aiohttp.ClientSession() as http:
        async with http.get(url, headers={"Authorization": f"Bearer {token}"}) as response:
            return response.status


async def test_without_a_token_file_everything_is_refused_until_one_is_created(
    node: Controller, tmp_path: Path
) -> None:
    assert node.agi is not None and node.agi.is_serving()  # calls still flow
    token, digest = new_token()
    assert await list_status(node, token) == 401
    (tmp_path / "tokens.yaml").write_text(
        f"users:\n  - {{user: ivanova, role: quality_auditor, token_sha256: {digest}}}\n"
    )
    assert await list_status(node, token) == 200  # no restart needed
    # A later edit that breaks the file closes the door rather than keeping old grants.
    (tmp_path / "tokens.yaml").write_text("users:\n  - user: ivanova\n")
    assert await list_status(node, token) == 401


async def test_a_broken_token_file_stops_start_up_with_its_line(tmp_path: Path) -> None:
    (tmp_path / "tokens.yaml").write_text("users:\n  - {user: x, role: pilot}\n")
    controller = Controller(node_settings(tmp_path))
    try:
        with pytest.raises(YamlFileError, match=r"tokens.yaml:2:"):
            await controller.start()
        assert controller.agi is None  # no call was taken under a broken configuration
    finally:
        await controller.stop()
