"""Reading recordings: authorised, audited, decrypted as a stream.

* `RecordingAccess`: checks the policy (`recorder.permissions`), loads the recording, writes
  the audit entry (before any byte is served: no audit, no access) and decrypts the stored
  object as a stream. Shared by the HTTP API (`recorder.http`) and the CLI.
* `decrypt_chunks`: the streaming decryption of one object in `recorder.keys`' format.
"""

from __future__ import annotations

import struct
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from typing import Any

from hotline.audit import AuditLog
from hotline.auth import Actor
from recorder import keys
from recorder.models import RecordedCall, RecordingStore, State
from recorder.permissions import (
    READABLE_ACTIONS,
    AccessDenied,
    Action,
    is_allowed,
    refusal_for_role,
)
from recorder.storage import Storage, StorageError

__all__ = ["RecordingAccess", "decrypt_chunks"]


class _FeedBuffer:
    """A file-like `read()` over bytes fed in from an async source, for `keys.iter_decrypt`."""

    def __init__(self) -> None:
        self._data = bytearray()
        self._position = 0

    @property
    def available(self) -> int:
        return len(self._data) - self._position

    def feed(self, chunk: bytes) -> None:
        if self._position > 1 << 20:  # drop what was read, now and then, not on every chunk
            del self._data[: self._position]
            self._position = 0
        self._data.extend(chunk)

    def peek(self, size: int) -> bytes:
        with memoryview(self._data) as view:
            return bytes(view[self._position : self._position + size])

    def read(self, size: int = -1) -> bytes:
        end = len(self._data) if size < 0 else min(len(self._data), self._position + size)
        with memoryview(self._data) as view:  # one copy, not a slice and then a copy
            piece = bytes(view[self._position : end])
        self._position = end
        return piece


async def decrypt_chunks(data_key: bytes, ciphertext: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
    """Authenticated plaintext chunks of an object in `keys`' streaming format, read lazily.

    `keys.iter_decrypt` reads synchronously and looks one frame ahead; before each step we
    make sure two frames are buffered (or the object has ended), so it never sees a false end.
    Memory stays at a few frames whatever the recording's length.
    """
    buffer = _FeedBuffer()
    exhausted = False

    async def fill(minimum: int) -> None:
        nonlocal exhausted
        while not exhausted and buffer.available < minimum:
            try:
                buffer.feed(await anext(ciphertext))
            except StopAsyncIteration:
                exhausted = True

    await fill(keys.HEADER_SIZE)
    header = buffer.peek(keys.HEADER_SIZE)
    # The header's u32 after the magic is the plaintext chunk size; a bad header is left for
    # iter_decrypt to refuse, so this only sizes the read-ahead.
    chunk_size = struct.unpack_from(">I", header, len(keys.MAGIC))[0] if len(header) >= 12 else 1
    frame = min(max(chunk_size, 1), keys.MAX_CHUNK_SIZE) + keys.TAG_BYTES
    await fill(keys.HEADER_SIZE + 2 * frame)
    plaintext = keys.iter_decrypt(data_key, buffer)  # type: ignore[arg-type]  # read() suffices
    while True:
        try:
            piece = next(plaintext)
        except StopIteration:
            return
        yield piece
        await fill(2 * frame)


@dataclass
class RecordingAccess:
    """Authorises, audits and serves recordings; shared by the HTTP routes and the CLI."""

    recordings: RecordingStore
    storage: Storage
    key_ring: keys.KeyRing
    audit: AuditLog

    async def authorize(
        self,
        actor: Actor | None,
        action: Action,
        *,
        recording_id: str | None,
        source: str,
        detail: Mapping[str, Any] | None = None,
    ) -> RecordedCall | None:
        """Check role and recording state; audit the outcome either way.

        Returns the recording (None for actions without one, like `list`); raises
        `AccessDenied` after auditing the refusal. The success is audited here too, so a
        caller that got a recording back has already left its trace.
        """
        who = actor or Actor("", "")
        extra = dict(detail or {})
        if not is_allowed(who.role, action):
            denial = refusal_for_role(who.role, action)
            await self._audit(who, action, recording_id, source, denial.outcome, extra)
            raise denial
        recording = None
        if recording_id is not None:
            recording = await self.recordings.get(recording_id)
            denial_or_none = _state_refusal(recording_id, recording, action)
            if denial_or_none is not None:
                await self._audit(who, action, recording_id, source, denial_or_none.outcome, extra)
                raise denial_or_none
        await self._audit(who, action, recording_id, source, "ok", extra)
        return recording

    async def audit_failure(
        self,
        actor: Actor | None,
        action: Action,
        *,
        recording_id: str | None,
        source: str,
        outcome: str,
        detail: Mapping[str, Any] | None = None,
    ) -> None:
        """Record a request that failed for a reason other than authorisation.

        An unauthenticated one goes through the refusal windows (`AuditLog.refused`): anyone
        can send those, so a flood of them must add a bounded number of rows.
        """
        if actor is None:
            await self.audit.refused(
                None,
                action.value,
                recording_id=recording_id,
                source=source,
                outcome=outcome,
                detail=detail,
            )
            return
        await self._audit(actor, action, recording_id, source, outcome, detail)

    async def _audit(
        self,
        actor: Actor,
        action: Action,
        recording_id: str | None,
        source: str,
        outcome: str,
        detail: Mapping[str, Any] | None,
    ) -> None:
        await self.audit.record(
            actor,
            action.value,
            recording_id=recording_id,
            source=source,
            outcome=outcome,
            detail=detail,
        )

    async def plaintext(self, recording: RecordedCall) -> AsyncIterator[bytes]:
        """The decrypted audio, chunk by chunk (`keys.IntegrityError` if the object was altered,
        `StorageError` if it cannot be read, `keys.KeyError_` if its key is gone)."""
        data_key = self.key_ring.unwrap(recording.call_id, keys.wrapped_key_of(recording))
        if not recording.storage_key:
            raise StorageError(f"recording {recording.call_id} has no stored object")
        async for chunk in decrypt_chunks(data_key, self.storage.read(recording.storage_key)):
            yield chunk


def _state_refusal(
    recording_id: str, recording: RecordedCall | None, action: Action
) -> AccessDenied | None:
    if recording is None:
        return AccessDenied(404, f"Запись {recording_id} не найдена.", "not_found")
    if action not in READABLE_ACTIONS:
        return None
    purged = AccessDenied(
        410, f"Запись {recording_id} удалена по истечении срока хранения.", "purged"
    )
    if recording.state == State.PURGED:
        return purged
    if recording.state != State.VERIFIED:  # before the pipeline wrapped a key, too
        return AccessDenied(
            409, f"Запись {recording_id} ещё обрабатывается, попробуйте позже.", "not_ready"
        )
    return purged if keys.is_destroyed(recording) else None  # a purge under way
