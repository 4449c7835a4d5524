"""The controller's audit watch: anchors out, verification in, key ages, refusal summaries.

A part the composition root always starts. Three periodic jobs
(`hotline.periodic.Periodic`), each failing and retrying on its own:

* every minute: write the refusal summaries whose minute has ended (`AuditLog.refused`);
* every `anchor_interval_minutes`: export the chain's head to the object-locked bucket
  (`hotline.audit_anchors`), and set the keys' time to expiry
  (`hotline_key_expiry_seconds{kind}`: the newest version's age against `key_max_age_days`;
  a missing key counts as expired);
* every `verify_interval_minutes`: verify the whole chain against the newest anchors and set
  `hotline_audit_chain_ok` and `hotline_audit_anchor_age_seconds`; a break is also a security
  event (`audit_broken`), so the alert and the log line name it.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Final

from hotline.audit import AuditLog
from hotline.audit_anchors import Anchor, AnchorBucket, AnchorError
from hotline.audit_chain import KEYED_SCHEME, PLAIN_SCHEME, VerifyReport
from hotline.keyfiles import MasterKeyStore
from hotline.periodic import Periodic
from hotline.security import (
    AUDIT_ANCHOR_AGE,
    AUDIT_CHAIN_OK,
    KEY_EXPIRY,
    SecurityCategory,
    security_event,
)
from hotline.settings import AuditSettings
from hotline.store.db import utc_now

__all__ = ["AuditWatch", "WatchedKey", "key_expiry_seconds"]

log: Final = logging.getLogger(__name__)


@dataclass(frozen=True)
class WatchedKey:
    """A key whose age the watch reports: its kind (the metric's label), where, which id."""

    kind: str
    store: MasterKeyStore
    key_id: str


def key_expiry_seconds(key: WatchedKey, max_age: timedelta) -> float:
    """Seconds until the newest version of `key` is older than `max_age`; 0 if there is none."""
    files = [found for found in key.store.files() if found.key_id == key.key_id]
    if not files:
        return 0.0
    newest = max(files, key=lambda found: found.version)
    return (newest.created_at + max_age - utc_now()).total_seconds()


class AuditWatch:
    """Exports anchors and verifies the chain periodically (see the module docstring)."""

    def __init__(
        self,
        audit: AuditLog,
        settings: AuditSettings,
        bucket: AnchorBucket | None,
        keys: Sequence[WatchedKey] = (),
    ) -> None:
        self.audit = audit
        self.settings = settings
        self.bucket = bucket
        self.keys = tuple(keys)
        self.last_report: VerifyReport | None = None
        self._export = Periodic(
            self.export_once, settings.anchor_interval_minutes * 60, name="audit-anchor", log=log
        )
        self._refusals = Periodic(self.audit.flush_refusals, 60.0, name="audit-refusals", log=log)
        self._verify = Periodic(
            self.verify_once, settings.verify_interval_minutes * 60, name="audit-verify", log=log
        )

    async def start(self) -> None:
        if self.bucket is not None:
            await self.bucket.__aenter__()
            try:
                await self.bucket.check_lock()
            except AnchorError as error:
                # Calls go on: the exports fail and say why each time, and the anchors' age
                # (infinite while there are none) raises HotlineAuditAnchorStale.
                log.error("audit anchors: %s", error)
        self._refusals.start()
        self._export.start()
        self._verify.start()

    async def close(self) -> None:
        await self._refusals.close()
        await self._export.close()
        await self._verify.close()
        await self.audit.settle()
        await self.audit.flush_refusals(everything=True)
        if self.bucket is not None:
            await self.bucket.__aexit__(None, None, None)

    async def export_once(self) -> Anchor | None:
        """Key ages, then the head to the bucket (if one is configured)."""
        max_age = timedelta(days=self.settings.key_max_age_days)
        for key in self.keys:
            KEY_EXPIRY.labels(kind=key.kind).set(key_expiry_seconds(key, max_age))
        if self.bucket is None:
            return None
        seq, digest = await self.audit.head()
        if seq == 0:
            return None
        head = (await self.audit.entries(after_seq=seq - 1, limit=1))[0]
        scheme = KEYED_SCHEME if head.scheme == KEYED_SCHEME else PLAIN_SCHEME
        anchor = Anchor(seq, digest, scheme, utc_now())
        await self.bucket.put(anchor)
        return anchor

    async def verify_once(self) -> VerifyReport:
        """Verify the chain against the newest anchors; set the gauges; alert on a break."""
        anchors: list[Anchor] = []
        if self.bucket is not None:
            try:
                anchors = await self.bucket.latest(self.settings.anchor_check_count)
            except AnchorError as error:  # the chain is still checked, the age tells the rest
                log.error("audit verify: %s", error)
        report = await self.audit.verify(anchors=[(a.seq, a.hash) for a in anchors])
        self.last_report = report
        AUDIT_CHAIN_OK.set(1 if report.ok else 0)
        if anchors:
            newest = max(anchor.taken_at for anchor in anchors)
            AUDIT_ANCHOR_AGE.set((utc_now() - newest).total_seconds())
        elif self.bucket is not None:  # export configured, nothing exported: as old as can be
            AUDIT_ANCHOR_AGE.set(float("inf"))
        if not report.ok:
            security_event(SecurityCategory.AUDIT_BROKEN, report.describe(), level=logging.ERROR)
        return report
