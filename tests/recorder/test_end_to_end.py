"""The recorder's done-criterion, end to end through `hotline serve`'s controller.

A simulated call (the PBX simulator's FastAGI and AMI halves) reaches the controller, which
starts MixMonitor on answer; the simulator writes the WAV when the channel hangs up and reports
the hang-up over AMI; the controller's embedded worker transcodes, encrypts and stores it. Then:
the stored object holds no plaintext, a quality auditor plays it over HTTP and an operator
cannot, every access is in the audit log that `hotline audit verify` accepts, and the purge
leaves nothing that can be decrypted.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import sys
import wave
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import aiohttp
import pytest
from controllers import controller_environment, started, with_tokens_file
from prometheus_client import REGISTRY

from controller.node import Controller
from controller.settings import load_settings
from hotline.audit import AuditLog
from hotline.auth import new_token
from hotline.store.db import utc_now
from pbxsim.ami_accounts import ManagerUser
from pbxsim.main import simulated_pbx
from pbxsim.mixmonitor import write_recording
from pbxsim.runner import run_scenario
from pbxsim.scenario import parse_scenario
from recorder import keys
from recorder.models import RecordedCall, RecordingStore, State
from recorder.retention import Purger, RetentionPolicy
from recorder.storage import LocalStorage

# The emergency line: greeting, then the on-duty queue, where an operator answers and talks
# for 6 s, then hangs up: the menu part and the conversation are both in the recording.
SCENARIO = """
name: recorded-call
seed: 1
calls:
  - number: "88005000005"
    caller_id: "79161234567"
    hangup_after: 300
agents:
  - {name: petrova, interface: Local/petrova@agents/n, queues: [hotline-emergency],
     ring_delay: 1, talk_time: 6}
"""
AMI_USER = ManagerUser("hotline", "s3cret")
# Scaled time (50x faster than life): in virtual time the queue half's talk time would not
# advance the caller's clock, and the conversation is what the recording is for.
TIME_SCALE = 0.02


@dataclass
class Node:
    controller: Controller
    http: str
    tokens: dict[str, str]
    settings_env: dict[str, str]
    store_dir: Path
    spool_dir: Path
    call_id: str


def node_environment(tmp_path: Path, ami_port: int) -> dict[str, str]:
    return {
        **controller_environment(tmp_path),
        "HOTLINE_NODE_NAME": "rec-node",
        # This call is answered through Asterisk's Queue(): the recording is named after the
        # operator from the queue's AgentConnect, which is what is tested here.
        "HOTLINE_ROUTING_ENABLED": "false",
        "HOTLINE_AMI_ENABLED": "true",
        "HOTLINE_AMI_PORT": str(ami_port),
        "HOTLINE_AMI_SECRET": AMI_USER.secret,
        "HOTLINE_RECORDER_SPOOL_DIR": str(tmp_path / "spool"),
        "HOTLINE_RECORDER_WORK_DIR": str(tmp_path / "work"),
        "HOTLINE_RECORDER_KEYS_DIR": str(tmp_path / "keys"),
        "HOTLINE_RECORDER_LOCAL_DIR": str(tmp_path / "store"),
        "HOTLINE_RECORDER_SETTLE_SECONDS": "0.05",
        "HOTLINE_RECORDER_SCAN_INTERVAL": "0.2",
        # no spool-space alarm noise from a nearly full CI disk
        "HOTLINE_RECORDER_SPOOL_ALARM_FREE_BYTES": "0",
        "HOTLINE_RECORDER_SPOOL_ALARM_FREE_PERCENT": "0",
    }


def write_tokens(path: Path) -> dict[str, str]:
    """Token file with one quality auditor and one operator; returns role -> bearer token."""
    tokens: dict[str, str] = {}
    lines = ["users:"]
    for user, role in (("ivanova", "quality_auditor"), ("sidorov", "operator")):
        token, digest = new_token()
        tokens[role] = token
        lines.append(f"  - {{user: {user}, role: {role}, token_sha256: {digest}}}")
    path.write_text("\n".join(lines) + "\n")
    return tokens


def denied_requests() -> float:
    """hotline_security_events_total{category="access_denied"} as /metrics shows it."""
    labels = {"category": "access_denied"}
    return REGISTRY.get_sample_value("hotline_security_events_total", labels) or 0.0


async def wait_for_state(store: RecordingStore, call_id: str, state: State) -> RecordedCall:
    for _ in range(600):
        row = await store.get(call_id)
        if row is not None and row.state == state.value:
            return row
        await asyncio.sleep(0.05)
    raise AssertionError(f"recording {call_id} never reached {state.value}: {row and row.state}")


async def audio(node: Node, role: str | None) -> tuple[int, bytes]:
    headers = {"Authorization": f"Bearer {node.tokens[role]}"} if role else {}
    async with aiohttp.ClientSession() as http:
        url = f"{node.http}/recordings/{node.call_id}/audio"
        async with http.get(url, headers=headers) as response:
            return response.status, await response.read()


async def run_command(*argv: str, env: dict[str, str], stdin: bytes = b"") -> tuple[int, bytes]:
    """Run a program as an admin would; (exit code, stdout + stderr)."""
    process = await asyncio.create_subprocess_exec(
        *argv,
        env={**os.environ, **env},
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    output, _ = await asyncio.wait_for(process.communicate(stdin), 60)
    assert process.returncode is not None
    return process.returncode, output


async def audit_verify(env: dict[str, str]) -> tuple[int, str]:
    """`hotline audit verify`, as an admin runs it."""
    code, output = await run_command(
        sys.executable, "-m", "controller.cli", "audit", "verify", env=env
    )
    return code, output.decode()


@pytest.fixture
async def recorded(tmp_path: Path) -> AsyncIterator[tuple[Node, RecordedCall]]:
    scenario = parse_scenario(SCENARIO, "recorded-call.yaml")
    async with simulated_pbx(scenario, time_scale=TIME_SCALE, ami_user=AMI_USER, ami_port=0) as pbx:
        assert pbx.ami is not None
        tokens = write_tokens(tmp_path / "tokens.yaml")
        env = node_environment(tmp_path, pbx.ami.port)
        settings = with_tokens_file(load_settings(None, env), tmp_path / "tokens.yaml")
        keys.MasterKeyStore(tmp_path / "keys").generate("recorder")
        async with started(settings) as controller:
            assert controller.ami is not None and controller.agi is not None
            await asyncio.wait_for(controller.ami.wait_connected(), 10)
            report = await run_scenario(
                scenario,
                "127.0.0.1",
                controller.agi.port,
                sink=pbx.ami,
                queues=pbx.queues,
                ids=pbx.clock,
                time_scale=TIME_SCALE,
            )
            (call,) = report.calls
            assert call.agi_status == "SUCCESS" and call.duration > 9, call  # ring + talk
            assert controller.engine is not None
            # Within seconds: Asterisk's Hangup over AMI, not the 30 s idle fallback, said the
            # recording was complete.
            row = await wait_for_state(
                RecordingStore(controller.engine), call.uniqueid, State.VERIFIED
            )
            node = Node(
                controller,
                f"http://127.0.0.1:{controller.http_port}",
                tokens,
                env,
                tmp_path / "store",
                tmp_path / "spool",
                call.uniqueid,
            )
            yield node, row


async def test_a_simulated_call_is_recorded_encrypted_played_audited_and_shredded(
    recorded: tuple[Node, RecordedCall],
) -> None:
    node, row = recorded
    call_id = node.call_id
    engine = node.controller.engine
    assert engine is not None

    # Metadata from the controller's own call log; the spool file is gone once verified.
    assert row.dialled_number == "88005000005"
    assert row.duration_seconds is not None and row.duration_seconds > 6  # menu + talk
    assert not (node.spool_dir / f"{call_id}.wav").exists()

    # The stored object: ciphertext only.
    assert row.storage_key is not None
    stored = (node.store_dir / row.storage_key).read_bytes()
    assert len(stored) == row.cipher_size
    assert b"RIFF" not in stored[:64] and b"OggS" not in stored

    # A quality auditor plays it: the decrypted Ogg/Opus, never the bytes in storage.
    status, played = await audio(node, "quality_auditor")
    assert status == 200
    assert played[:4] == b"OggS" and b"OpusHead" in played[:128]
    assert played != stored and played[:256] not in stored
    assert len(played) == row.plain_size
    code, pcm = await run_command(
        "ffmpeg", "-v", "error", "-i", "-", "-f", "s16le", "-ac", "1", "-ar", "8000", "-",
        env={}, stdin=played,
    )  # fmt: skip
    assert code == 0 and abs(len(pcm) / 16000 - row.duration_seconds) < 0.1  # the whole call

    # An operator may not; nor may someone without a token: the access middleware refuses
    # them at the door, as a security event (counted and logged), not an audit row.
    refusals = denied_requests()
    assert (await audio(node, "operator"))[0] == 403
    assert (await audio(node, None))[0] == 401
    assert denied_requests() == refusals + 1

    # Every access, allowed or refused, is in the audit log, and the chain verifies.
    entries = await AuditLog(engine).entries(recording_id=call_id)
    seen = [(e.user_id, e.role, e.action, e.outcome) for e in entries]
    assert ("ivanova", "quality_auditor", "play", "ok") in seen
    assert ("sidorov", "operator", "play", "ok") not in seen
    assert any(e[:3] == ("sidorov", "operator", "play") for e in seen)
    assert not any(e[0] == "" for e in seen)  # no anonymous rows to grow the chain
    code, verdict = await audit_verify(node.settings_env)
    assert code == 0, verdict
    assert f"intact: {len(await AuditLog(engine).entries())} entries" in verdict

    # Keep a copy of the ciphertext, as a backup or a thief would, then purge past the term.
    copy = node.store_dir.parent / "stolen.enc"
    shutil.copyfile(node.store_dir / row.storage_key, copy)
    async with LocalStorage(node.store_dir) as storage:
        purger = Purger(engine, storage, AuditLog(engine), RetentionPolicy())
        report = await purger.run(now=utc_now() + timedelta(days=366))  # past the term
    assert report.purged == [call_id]
    purged = await RecordingStore(engine).get(call_id)
    assert purged is not None and purged.state == State.PURGED.value
    assert purged.wrapped_key is None
    assert not (node.store_dir / row.storage_key).exists()
    # Crypto-shredding: the data key is gone from every place the system keeps it, including
    # the database file's free pages, so the copy cannot be opened with anything left.
    assert row.wrapped_key is not None
    database_files = list(node.store_dir.parent.glob("calls.sqlite3*"))  # with -wal, -journal
    assert database_files
    assert all(row.wrapped_key not in path.read_bytes() for path in database_files)
    with pytest.raises(keys.KeyError_):
        keys.wrapped_key_of(purged)
    with copy.open("rb") as sealed, pytest.raises(keys.IntegrityError):
        b"".join(keys.iter_decrypt(os.urandom(32), sealed))
    status, _ = await audio(node, "quality_auditor")
    assert status in (404, 410)
    code, verdict = await audit_verify(node.settings_env)
    assert code == 0, verdict
    purge_entries = await AuditLog(engine).entries(recording_id=call_id)
    assert any(e.action == "purge" and e.user_id == "retention" for e in purge_entries)


def test_the_simulator_writes_the_mixmonitor_file_as_asterisk_would(tmp_path: Path) -> None:
    path = tmp_path / "deep" / "1795570000.9.wav"
    write_recording(path, 2.51)
    with wave.open(str(path), "rb") as recording:
        assert (recording.getnchannels(), recording.getsampwidth(), recording.getframerate()) == (
            1,
            2,
            8000,
        )
        assert recording.getnframes() == 20000  # whole 20 ms frames: 2.50 s
        assert recording.readframes(8000) != bytes(16000)  # not silence
    assert path.read_bytes()[:4] == b"RIFF"
