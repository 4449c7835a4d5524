"""The audit chain's format and its checker, apart from the table (`hotline.audit`).

Two link schemes, one chain:

* `sha256` (every entry written before the switch to a key, migration 0004_audit):
  `hash = sha256(prev_hash + canonical JSON of the entry)`. Anyone who can write the table can
  recompute these, so alone they prove only that nobody edited the rows *by hand*.
* `hmac-sha256` (from the first entry written with an audit key, migration 0009_audit_keyed):
  `hash = HMAC-SHA-256(key, prev_hash + canonical JSON of the entry + scheme + key id/version)`.
  The key lives in a file outside the database (`hotline.keyfiles`, `<keys_dir>/audit.vN.key`),
  so a writer of the database alone cannot produce a valid link. Each entry names the key
  version that signed it, so a rotated key continues the chain and old entries verify with
  their old key. The scheme and key are inside what is signed: a keyed entry cannot be
  relabelled as a plain one, and a plain entry after a keyed one is a break (`downgraded`).

`ChainChecker` walks entries in order and tells the kinds of break apart (edited, deleted,
reordered, inserted, downgraded, key missing).
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

from hotline.keyfiles import KeyError_, MasterKey, MasterKeyStore
from hotline.store.db import require_utc

__all__ = [
    "GENESIS_HASH",
    "KEYED_SCHEME",
    "PLAIN_SCHEME",
    "AuditRecord",
    "ChainBreak",
    "ChainChecker",
    "ChainKeys",
    "VerifyReport",
    "canonical_json",
    "entry_hash",
    "hashed_fields",
    "keyed_entry_hash",
    "parse_anchor",
]

GENESIS_HASH: Final = "0" * 64
PLAIN_SCHEME: Final = "sha256"
KEYED_SCHEME: Final = "hmac-sha256"


def canonical_json(value: Any) -> str:
    """One spelling per value: sorted keys, no spaces, UTF-8 kept as is."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def hashed_fields(
    at: datetime,
    user_id: str,
    role: str,
    action: str,
    recording_id: str | None,
    source: str,
    outcome: str,
    detail: str,
) -> dict[str, Any]:
    # `seq` is left out on purpose: order is proven by the links, so a renumbered row shows up
    # as reordered/inserted/deleted rather than as an edit.
    return {
        "at": require_utc(at, "at").isoformat(timespec="microseconds"),
        "user_id": user_id,
        "role": role,
        "action": action,
        "recording_id": recording_id,
        "source": source,
        "outcome": outcome,
        "detail": detail,
    }


def entry_hash(prev_hash: str, fields: Mapping[str, Any]) -> str:
    """sha256(prev_hash + canonical JSON of the entry), hex: the `sha256` scheme."""
    return hashlib.sha256((prev_hash + canonical_json(fields)).encode("utf-8")).hexdigest()


def keyed_entry_hash(prev_hash: str, fields: Mapping[str, Any], key: MasterKey) -> str:
    """HMAC-SHA-256 under `key` of prev_hash + canonical JSON of the entry with its scheme and
    key named inside, hex: the `hmac-sha256` scheme."""
    signed = {**fields, "scheme": KEYED_SCHEME, "key_id": key.key_id, "key_version": key.version}
    message = (prev_hash + canonical_json(signed)).encode("utf-8")
    return hmac.new(key.secret, message, hashlib.sha256).hexdigest()


@dataclass(frozen=True)
class AuditRecord:
    """One audit entry as read back or just written."""

    seq: int
    at: datetime
    user_id: str
    role: str
    action: str
    recording_id: str | None
    source: str
    outcome: str
    detail: str
    prev_hash: str
    hash: str
    scheme: str = PLAIN_SCHEME
    key_id: str | None = None
    key_version: int | None = None

    @property
    def detail_data(self) -> dict[str, Any]:
        loaded = json.loads(self.detail)
        return loaded if isinstance(loaded, dict) else {}

    def hashed_fields(self) -> dict[str, Any]:
        return hashed_fields(
            self.at,
            self.user_id,
            self.role,
            self.action,
            self.recording_id,
            self.source,
            self.outcome,
            self.detail,
        )


class ChainKeys:
    """The audit key's versions in a key directory, cached once read (verify reads many)."""

    def __init__(self, store: MasterKeyStore, key_id: str = "audit") -> None:
        self.store = store
        self.key_id = key_id
        self._cache: dict[tuple[str, int], MasterKey] = {}

    def exists(self) -> bool:
        return bool(self.store.versions(self.key_id))

    def current(self) -> MasterKey:
        key = self.store.current(self.key_id)
        self._cache[(key.key_id, key.version)] = key
        return key

    def get(self, key_id: str, version: int) -> MasterKey:
        cached = self._cache.get((key_id, version))
        if cached is None:
            cached = self._cache[(key_id, version)] = self.store.get(key_id, version)
        return cached

    def digest(self, record: AuditRecord) -> str:
        """What `record.hash` must be; `KeyError_` when its key is not here."""
        if record.scheme == PLAIN_SCHEME:
            return entry_hash(record.prev_hash, record.hashed_fields())
        if record.scheme != KEYED_SCHEME or record.key_id is None or record.key_version is None:
            return ""  # an unknown scheme matches no hash: reported as an edit
        key = self.get(record.key_id, record.key_version)
        return keyed_entry_hash(record.prev_hash, record.hashed_fields(), key)


def _plain_digest(record: AuditRecord) -> str:
    if record.scheme != PLAIN_SCHEME:
        raise KeyError_(
            f"entry #{record.seq} is signed with audit key {record.key_id} v{record.key_version} "
            "and no key directory was given"
        )
    return entry_hash(record.prev_hash, record.hashed_fields())


@dataclass(frozen=True)
class ChainBreak:
    """The first place where the chain does not hold: the entry and a sentence saying why."""

    seq: int
    kind: str  # edited | deleted | reordered | inserted | downgraded | key | unkeyed | anchor
    message: str


@dataclass(frozen=True)
class VerifyReport:
    """Outcome of a verification: the entries checked, the head, and the first break if any."""

    entries: int
    head_seq: int
    head_hash: str
    broken: ChainBreak | None
    anchors_checked: int = 0

    @property
    def ok(self) -> bool:
        return self.broken is None

    def describe(self) -> str:
        if self.broken is not None:
            return (
                f"audit log BROKEN at entry #{self.broken.seq} ({self.broken.kind}): "
                f"{self.broken.message}"
            )
        if not self.entries:
            return "audit log is empty"
        anchors = f"; {self.anchors_checked} exported anchors match" if self.anchors_checked else ""
        return (
            f"audit log intact: {self.entries} entries; head #{self.head_seq} {self.head_hash}"
            f"{anchors} (keep this line outside the database and check it later with --anchor)"
        )


def parse_anchor(value: str) -> tuple[int, str]:
    """`SEQ:HASH` (as printed by verify, `#` optional) -> (seq, hash); ValueError if malformed."""
    seq_text, sep, digest = value.strip().lstrip("#").partition(":")
    digest = digest.strip().lower()
    if not sep or not seq_text.strip().isdigit() or len(digest) != 64:
        raise ValueError(f"anchor {value!r} must look like SEQ:HASH (64 hex digits)")
    try:
        bytes.fromhex(digest)
    except ValueError:
        raise ValueError(f"anchor {value!r}: hash is not hexadecimal") from None
    return int(seq_text), digest


class ChainChecker:
    """Walks entries in seq order with one entry of look-ahead, to tell the kinds of break apart.

    An entry is judged when the one after it arrives (or at the end), because "this entry was
    inserted" is visible only in its successor linking past it.
    """

    def __init__(
        self,
        seq_of_hash: Callable[[str], Awaitable[int | None]],
        keys: ChainKeys | None = None,
    ) -> None:
        self._seq_of_hash = seq_of_hash
        self._digest = keys.digest if keys is not None else _plain_digest
        self._before_previous: AuditRecord | None = None
        self._previous: AuditRecord | None = None
        self._pending: AuditRecord | None = None
        self.count = 0
        self.head_seq = 0
        self.head_hash = GENESIS_HASH
        self.head_scheme = PLAIN_SCHEME
        self._keyed_seen = False

    def report(self, broken: ChainBreak | None, anchors_checked: int = 0) -> VerifyReport:
        return VerifyReport(self.count, self.head_seq, self.head_hash, broken, anchors_checked)

    async def feed(self, record: AuditRecord) -> ChainBreak | None:
        self.count += 1
        pending, self._pending = self._pending, record
        if pending is None:
            return None
        return await self._judge(pending, record)

    async def finish(self) -> ChainBreak | None:
        pending, self._pending = self._pending, None
        return None if pending is None else await self._judge(pending, None)

    async def _judge(self, entry: AuditRecord, following: AuditRecord | None) -> ChainBreak | None:
        previous = self._previous
        expected_prev = previous.hash if previous else GENESIS_HASH
        if entry.prev_hash != expected_prev:
            return await self._broken_link(entry, following, previous, expected_prev)
        content = self._content_break(entry)
        if content is not None:
            return content
        self._keyed_seen = self._keyed_seen or entry.scheme == KEYED_SCHEME
        self._before_previous, self._previous = previous, entry
        self.head_seq, self.head_hash, self.head_scheme = entry.seq, entry.hash, entry.scheme
        return None

    def _content_break(self, entry: AuditRecord) -> ChainBreak | None:
        if entry.scheme == PLAIN_SCHEME and self._keyed_seen:
            return ChainBreak(
                entry.seq,
                "downgraded",
                f"entry #{entry.seq} has a plain SHA-256 link after keyed entries: it was "
                "written or rewritten by someone without the audit key",
            )
        try:
            expected = self._digest(entry)
        except KeyError_ as error:
            return ChainBreak(entry.seq, "key", f"cannot check entry #{entry.seq}: {error}")
        if not hmac.compare_digest(expected, entry.hash):
            return ChainBreak(
                entry.seq,
                "edited",
                f"entry #{entry.seq} was edited: its content no longer matches its hash",
            )
        return None

    async def _broken_link(
        self,
        entry: AuditRecord,
        following: AuditRecord | None,
        previous: AuditRecord | None,
        expected_prev: str,
    ) -> ChainBreak:
        after = f"entry #{previous.seq}" if previous else "the start of the log"
        linked_seq = await self._seq_of_hash(entry.prev_hash)
        if linked_seq is not None and linked_seq > entry.seq:
            return ChainBreak(
                entry.seq,
                "reordered",
                f"entry #{entry.seq} is out of order: it continues entry #{linked_seq}, "
                f"which comes after it, instead of {after}",
            )
        if following is not None and following.prev_hash == expected_prev:
            return ChainBreak(
                entry.seq,
                "inserted",
                f"entry #{entry.seq} was inserted: it is not part of the chain, entry "
                f"#{following.seq} continues {after} directly",
            )
        grand = self._before_previous
        if previous is not None and entry.prev_hash == (grand.hash if grand else GENESIS_HASH):
            return ChainBreak(
                previous.seq,
                "inserted",
                f"entry #{previous.seq} was inserted: entry #{entry.seq} skips it and continues "
                + (f"entry #{grand.seq}" if grand else "the start of the log"),
            )
        return _deleted(entry, previous, after, linked_seq)


def _deleted(
    entry: AuditRecord, previous: AuditRecord | None, after: str, linked_seq: int | None
) -> ChainBreak:
    expected_seq = previous.seq + 1 if previous else 1
    if entry.seq > expected_seq:
        missing = (
            f"#{expected_seq}"
            if entry.seq == expected_seq + 1
            else f"#{expected_seq} to #{entry.seq - 1}"
        )
        return ChainBreak(
            expected_seq, "deleted", f"entry {missing} deleted: entry #{entry.seq} follows {after}"
        )
    if linked_seq is not None:
        return ChainBreak(
            entry.seq,
            "deleted",
            f"entries between #{linked_seq} and #{entry.seq} were deleted and the rest renumbered",
        )
    return ChainBreak(
        entry.seq,
        "deleted",
        f"entry #{entry.seq} does not continue {after}: the entry it continued was deleted, "
        f"or {after} was edited and its hash recomputed",
    )
