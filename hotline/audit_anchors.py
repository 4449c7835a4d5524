"""Anchors of the audit chain in an S3 bucket the database's writer cannot rewrite.

An anchor is the chain's head at a moment, `#seq hash`, with when it was taken and how the head
entry was linked. The controller exports one every `[audit] anchor_interval_minutes`
(`hotline.audit_watch`) as a new object `<prefix><seq>-<utc time>.json`, put with object lock
in **compliance mode** until `anchor_retention_days` from now: while it lasts, no credential
(the bucket owner's included) can delete that object version, overwrite it in place or shorten
its retention; S3 versioning (which object lock implies) keeps a locked version even when
someone writes a new object of the same name or a delete marker over it. `hotline audit verify`
lists every object version under the prefix, reads the newest `anchor_check_count` anchors and
checks that each still names an entry of the chain with the same hash.

Threat model: who can rewrite what, and what catches it.

* **The database's writer** (the application's DB role, a DBA, SQL injection, a stolen
  database backup restored elsewhere) can insert, edit and delete rows (after dropping the
  triggers) and recompute plain SHA-256 links; it cannot compute HMAC links, the key being a
  file on the application host, never in the database. Caught by `verify`: an edited keyed
  row (`edited`), a plain link after keyed ones (`downgraded`), a plain head while a key exists
  (`unkeyed`); a cut-off tail by the anchors (`deleted`).
* **Root on the application host** has the database credentials and the audit key: it can
  forge a chain with valid HMAC links from any point and drop the newest rows, but cannot
  change or delete anchors already exported (compliance lock). Caught by `verify` against the
  anchors: any entry at or before the newest anchor that changed or vanished. Entries written
  after the newest anchor (at most `anchor_interval_minutes` of them) are not protected.
* **The storage admin** (the S3 side) can read anchors and add objects and, with root on the
  storage servers themselves, delete files beneath S3; it cannot rewrite the database or
  compute HMAC links. Alone it does the chain no harm: deleted anchors only weaken the
  protection, which `hotline_audit_anchor_age_seconds` shows.
* **Application host root and storage admin together** can do everything: keep these two
  roles with different people (separation of duties).

The exporter's S3 credentials (`HOTLINE_ANCHOR_S3_ACCESS_KEY`/`..._SECRET_KEY`) should allow
`s3:PutObject` and `s3:PutObjectRetention` and reading, never `s3:BypassGovernanceRetention`
(irrelevant in compliance mode anyway) or bucket deletion. An attacker with them can add a
bogus anchor: it makes `verify` fail (an alarm), it cannot make a rewritten chain pass.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Final, Unpack

from hotline.s3 import S3Bucket, S3Place
from hotline.settings import AuditSettings

__all__ = ["Anchor", "AnchorBucket", "AnchorError", "anchor_bucket_for"]

_FORMAT: Final = "hotline-audit-anchor/1"


class AnchorError(Exception):
    """The anchor bucket cannot be used (unreachable, no object lock, refused)."""


@dataclass(frozen=True)
class Anchor:
    """The chain's head at `taken_at`."""

    seq: int
    hash: str
    scheme: str
    taken_at: datetime

    def to_json(self) -> bytes:
        return json.dumps(
            {
                "format": _FORMAT,
                "seq": self.seq,
                "hash": self.hash,
                "scheme": self.scheme,
                "taken_at": self.taken_at.isoformat(timespec="microseconds"),
            },
            sort_keys=True,
        ).encode()

    @classmethod
    def from_json(cls, data: bytes) -> Anchor:
        """Parse one anchor object; ValueError if it is not one."""
        try:
            loaded = json.loads(data)
            if loaded.get("format") != _FORMAT:
                raise ValueError(f"not an audit anchor (format {loaded.get('format')!r})")
            digest = str(loaded["hash"])
            if len(digest) != 64:
                raise ValueError("hash is not 64 hex digits")
            bytes.fromhex(digest)
            return cls(
                int(loaded["seq"]),
                digest,
                str(loaded["scheme"]),
                datetime.fromisoformat(loaded["taken_at"]).astimezone(UTC),
            )
        except (KeyError, TypeError, AttributeError, json.JSONDecodeError) as error:
            raise ValueError(f"not an audit anchor: {error}") from None

    @property
    def object_key(self) -> str:
        return f"{self.seq:020d}-{self.taken_at.strftime('%Y%m%dT%H%M%SZ')}.json"


class AnchorBucket(S3Bucket):
    """Puts and reads anchors in an S3 bucket with object lock (SeaweedFS, MinIO, AWS)."""

    def __init__(
        self,
        *,
        prefix: str = "audit-anchors/",
        retention: timedelta = timedelta(days=1830),
        timeout: float = 10.0,
        **place: Unpack[S3Place],
    ) -> None:
        super().__init__(timeout=timeout, attempts=2, **place)
        self.prefix = prefix
        self.retention = retention

    async def create(self) -> None:
        """Create the bucket with object lock enabled (only possible at creation on S3)."""
        try:
            await self._client.create_bucket(Bucket=self.bucket, ObjectLockEnabledForBucket=True)
        except Exception as error:
            if _code(error) not in ("BucketAlreadyOwnedByYou", "BucketAlreadyExists"):
                raise AnchorError(f"cannot create anchor bucket {self.bucket}: {error}") from None
        await self.check_lock()

    async def check_lock(self) -> None:
        """AnchorError unless the bucket has object lock enabled."""
        try:
            answer = await self._client.get_object_lock_configuration(Bucket=self.bucket)
        except Exception as error:
            raise AnchorError(
                f"anchor bucket {self.bucket} has no object lock ({error}); anchors there could "
                "be rewritten: create it with `hotline audit anchor --create-bucket`"
            ) from None
        if answer.get("ObjectLockConfiguration", {}).get("ObjectLockEnabled") != "Enabled":
            raise AnchorError(f"anchor bucket {self.bucket} has object lock disabled")

    async def put(self, anchor: Anchor) -> str:
        """Store `anchor` locked in compliance mode; returns the object version id."""
        until = anchor.taken_at + self.retention
        try:
            answer = await self._client.put_object(
                Bucket=self.bucket,
                Key=self.prefix + anchor.object_key,
                Body=anchor.to_json(),
                ContentType="application/json",
                ObjectLockMode="COMPLIANCE",
                ObjectLockRetainUntilDate=until,
            )
        except Exception as error:
            raise AnchorError(f"cannot export the audit anchor: {error}") from None
        return str(answer.get("VersionId") or "")

    async def latest(self, count: int) -> list[Anchor]:
        """The `count` newest anchors (by seq, then time) among every stored object version.

        Versions, not only current objects: a delete marker or a newer object written over an
        anchor's name hides nothing from here.
        """
        versions: list[tuple[str, str]] = []
        try:
            paginator = self._client.get_paginator("list_object_versions")
            async for page in paginator.paginate(Bucket=self.bucket, Prefix=self.prefix):
                versions.extend(
                    (item["Key"], item["VersionId"]) for item in page.get("Versions", [])
                )
        except Exception as error:
            raise AnchorError(f"cannot list the audit anchors: {error}") from None
        # Object names start with the zero-padded seq: the newest are the last names.
        versions.sort(reverse=True)
        anchors = []
        for key, version in versions[: count * 2]:
            anchor = await self._read(key, version)
            if anchor is not None:
                anchors.append(anchor)
        anchors.sort(key=lambda anchor: (anchor.seq, anchor.taken_at), reverse=True)
        return anchors[:count]

    async def _read(self, key: str, version: str) -> Anchor | None:
        try:
            answer = await self._client.get_object(Bucket=self.bucket, Key=key, VersionId=version)
            async with answer["Body"] as body:
                data = await body.read()
        except Exception as error:
            raise AnchorError(f"cannot read audit anchor {key}: {error}") from None
        try:
            return Anchor.from_json(data)
        except ValueError:
            return None  # someone's stray object under the prefix: not an anchor


def _code(error: BaseException) -> str:
    response = getattr(error, "response", None)
    return str(response.get("Error", {}).get("Code", "")) if isinstance(response, dict) else ""


def anchor_bucket_for(settings: AuditSettings) -> AnchorBucket | None:
    """The settings' anchor bucket (not yet entered), None when export is off."""
    if not settings.anchor_bucket:
        return None
    return AnchorBucket(
        bucket=settings.anchor_bucket,
        endpoint=settings.anchor_endpoint or None,
        access_key=os.environ.get("HOTLINE_ANCHOR_S3_ACCESS_KEY", ""),
        secret_key=os.environ.get("HOTLINE_ANCHOR_S3_SECRET_KEY", ""),
        region=settings.anchor_region,
        prefix=settings.anchor_prefix,
        retention=timedelta(days=settings.anchor_retention_days),
    )
