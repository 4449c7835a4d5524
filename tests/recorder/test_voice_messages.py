"""Voice messages from the menus go through the recorder's pipeline and become a work item:
the message Asterisk wrote into the spool is encrypted, shipped and verified under the
``voice_message`` retention category, and a call back carrying the message's id is booked for
the group (`controller.voice_messages.MessageIntake`)."""

from __future__ import annotations

import shutil
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from controller.voice_messages import MESSAGE_CATEGORY, MessageIntake
from recorder.keys import KeyRing
from recorder.models import RecordingStore, State
from recorder.retention import RetentionPolicy
from recorder.storage import LocalStorage
from tests.recorder.test_recorder_pipeline import _decrypt, _recorder, storage  # noqa: F401

REPO_RETENTION = Path(__file__).resolve().parents[2] / "dialplans" / "retention.yaml"


@dataclass
class Booking:
    """The ACD's callbacks as the intake sees them: books unless told to refuse."""

    accept: bool = True
    requests: list[dict[str, object]] = field(default_factory=list)

    async def request(
        self, call_id: str, *, phone: str, group: str, number: str, data: Mapping[str, str]
    ) -> bool:
        self.requests.append({"call": call_id, "phone": phone, "group": group, "data": data})
        return self.accept


async def test_a_message_is_stored_encrypted_and_booked_as_a_callback(
    tmp_path: Path,
    recording_store: RecordingStore,
    storage: LocalStorage,  # noqa: F811
    key_ring: KeyRing,
    sample_wav: Path,
) -> None:
    recorder = _recorder(tmp_path, recording_store, storage, key_ring)
    recorder.retention = RetentionPolicy.load(REPO_RETENTION)
    message = recorder.spool_dir / "1795563091.8-message.wav"
    shutil.copy(sample_wav, message)  # what RECORD FILE wrote
    booking = Booking()
    intake = MessageIntake(recorder, booking)

    taken = await intake.received(
        "1795563091.8",
        path=str(message),
        group="emergency",
        phone="89161234567",
        number="79035550000",
        data={"topic": "авария"},
    )
    await recorder.run_until_idle()

    assert taken
    row = await recording_store.get("1795563091.8-message")
    assert row is not None and row.state == State.VERIFIED
    assert row.retention_category == MESSAGE_CATEGORY
    assert row.retention_until is not None and row.ended_at is None
    assert (row.retention_until - row.started_at).days == 90  # dialplans/retention.yaml
    stored = (tmp_path / "store" / str(row.storage_key)).read_bytes()
    assert b"OggS" not in stored  # no plaintext reached storage
    assert (await _decrypt(storage, key_ring, row)).startswith(b"OggS")
    assert not message.exists()  # the plain file left the spool once verified
    assert booking.requests == [
        {
            "call": "1795563091.8",
            "phone": "89161234567",
            "group": "emergency",
            "data": {"topic": "авария", "voice_message": "1795563091.8-message"},
        }
    ]


async def test_a_message_outside_the_spool_is_not_called_kept_without_a_callback(
    tmp_path: Path,
    recording_store: RecordingStore,
    storage: LocalStorage,  # noqa: F811
    key_ring: KeyRing,
) -> None:
    recorder = _recorder(tmp_path, recording_store, storage, key_ring)
    intake = MessageIntake(recorder, Booking(accept=False))
    taken = await intake.received(
        "1795563091.9",
        path=str(tmp_path / "elsewhere" / "1795563091.9-message.wav"),
        group="emergency",
        phone="79035550000",
        number="79035550000",
        data={},
    )
    assert not taken  # the caller hears it was not saved
    assert await recording_store.get("1795563091.9-message") is None
