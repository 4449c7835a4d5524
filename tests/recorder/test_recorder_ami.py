"""`watch_ami`: the AMI events of a real Asterisk 22 queue call tell the recorder which spool
files are finished (the transcript's MixMonitor wrote <uniqueid>.wav for two callers)."""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path

from transcripts import load, stream

from hotline.ami.protocol import AmiMessage, AmiParser
from hotline.clock import SystemClock
from hotline.settings import AmiSettings
from hotline.store.db import create_engine
from pbxsim.ami_accounts import ManagerUser
from pbxsim.ami_server import AmiServer
from recorder.cli import run_worker, watch_ami
from recorder.keys import KeyRing, MasterKeyStore
from recorder.models import RecordingStore, State
from recorder.pipeline import Recorder
from recorder.settings import RecorderSettings
from recorder.storage import LocalStorage

Handler = Callable[[AmiMessage], Awaitable[None]]


class EventSource:
    """The part of AmiClient that `watch_ami` uses: `on(name, callback)`; events are fed
    from the transcript's bytes through the real AMI parser."""

    def __init__(self) -> None:
        self.handlers: dict[str, list[Handler]] = {}

    def on(self, name: str, callback: Handler) -> None:
        self.handlers.setdefault(name.lower(), []).append(callback)

    async def replay(self, transcript: str) -> None:
        parser = AmiParser(expect_greeting=True)
        for message in parser.feed(stream(load(transcript), "asterisk->client")):
            if isinstance(message, AmiMessage) and (event := message.get("Event")):
                for handler in self.handlers.get(event.lower(), []):
                    await handler(message)


@asynccontextmanager
async def recorder_waiting_for_hangups(
    tmp_path: Path, recording_store: RecordingStore, key_ring: KeyRing
) -> AsyncIterator[Recorder]:
    """A recorder storing locally under `tmp_path` that takes a recording as finished only
    when told of its hang-up (the idle fallback an hour away), with no spool-space alarm."""
    settings = RecorderSettings(
        spool_dir=tmp_path / "spool", work_dir=tmp_path / "work", settle_seconds=0.01,
        idle_seconds=3600, spool_alarm_free_bytes=0, spool_alarm_free_percent=0,
    )  # fmt: skip
    async with LocalStorage(tmp_path / "store") as storage:
        recorder = Recorder(settings, recording_store, storage, key_ring)
        recorder.prepare_directories()
        yield recorder


async def test_hangups_from_asterisk_finish_exactly_the_recorded_calls(
    tmp_path: Path, recording_store: RecordingStore, key_ring: KeyRing, sample_wav: Path
) -> None:
    async with recorder_waiting_for_hangups(tmp_path, recording_store, key_ring) as recorder:
        spool = recorder.settings.spool_dir
        for call_id in ("1795563226.1", "1795563247.5"):  # MixMonitor's AppData in the capture
            shutil.copy(sample_wav, spool / f"{call_id}.wav")
        shutil.copy(sample_wav, spool / "1795569999.9.wav")  # still in progress
        source = EventSource()
        watch_ami(recorder, source)

        await source.replay("ami-queue-call.txt")
        await recorder.run_until_idle()

        finished = await recording_store.in_states(list(State))
        assert sorted(row.call_id for row in finished) == ["1795563226.1", "1795563247.5"]
        assert all(row.state == State.VERIFIED for row in finished)
        # who took each call, from the queue's AgentConnect in the same capture
        operators = {row.call_id: row.operator for row in finished}
        assert operators == {"1795563226.1": "Agent Two", "1795563247.5": "Agent One"}
        assert [p.name for p in spool.iterdir()] == ["1795569999.9.wav"]


async def test_worker_learns_finished_recordings_over_its_own_ami_link(
    tmp_path: Path, sqlite_url: str, sample_wav: Path
) -> None:
    asterisk = AmiServer(
        clock=SystemClock(), users={"hotline": ManagerUser("hotline", "s3cret")}, port=0
    )
    await asterisk.start()
    MasterKeyStore(tmp_path / "keys").generate("recorder")
    settings = RecorderSettings(
        spool_dir=tmp_path / "spool", work_dir=tmp_path / "work", keys_dir=tmp_path / "keys",
        local_dir=tmp_path / "store", settle_seconds=0.01, idle_seconds=3600,
        scan_interval=0.05, spool_alarm_free_bytes=0, spool_alarm_free_percent=0,
    )  # fmt: skip
    settings.spool_dir.mkdir()
    shutil.copy(sample_wav, settings.spool_dir / "1795563226.1.wav")
    ami = AmiSettings(enabled=True, port=asterisk.port, secret="s3cret", reconnect_min=0.05)
    stop = asyncio.Event()
    worker = asyncio.create_task(run_worker(settings, sqlite_url, stop=stop, ami=ami))
    try:
        await _until(lambda: asterisk.session_count > 0, "the worker's AMI login")
        await asyncio.sleep(0.2)  # past the login handshake
        asterisk.emit("Hangup", [("Channel", "Local/agent2@agents-00000001;2"),
                                 ("Uniqueid", "1795563227.3")])  # fmt: skip
        asterisk.emit("MixMonitorStop", [("Channel", "Local/s@queue-entry-00000000;2"),
                                         ("Uniqueid", "1795563226.1")])  # fmt: skip
        await _until(lambda: not any(settings.spool_dir.iterdir()), "the spool file to go")
    finally:
        stop.set()
        assert await asyncio.wait_for(worker, 10) == 0
        await asterisk.close()
    engine = create_engine(sqlite_url)
    try:
        rows = await RecordingStore(engine).in_states(list(State))
        assert [(row.call_id, row.state) for row in rows] == [("1795563226.1", "verified")]
    finally:
        await engine.dispose()


async def _until(check: Callable[[], bool], what: str) -> None:
    for _ in range(200):
        if check():
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


async def test_a_name_the_acd_reported_reaches_the_recording(
    tmp_path: Path, recording_store: RecordingStore, key_ring: KeyRing, sample_wav: Path
) -> None:
    """Calls the ACD connects by Dial raise no AgentConnect: the ACD tells the recorder."""
    async with recorder_waiting_for_hangups(tmp_path, recording_store, key_ring) as recorder:
        shutil.copy(sample_wav, recorder.settings.spool_dir / "1795563226.1.wav")
        source, told = EventSource(), {"1795563226.1": "Борис"}
        watch_ami(recorder, source, told)
        hangup = AmiMessage.of(("Event", "Hangup"), ("Uniqueid", "1795563226.1"))
        for handler in source.handlers["hangup"]:
            await handler(hangup)
        await recorder.run_until_idle()
        row = await recording_store.get("1795563226.1")
        assert row is not None and row.operator == "Борис"
        assert told == {}  # forgotten once the recording is handed over
