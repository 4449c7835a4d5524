"""One bucket of an S3-compatible store (AWS, SeaweedFS, MinIO, Ceph RGW) through aioboto3: the
client the audit anchors (`hotline.audit_anchors`) and the recorder's storage open alike."""

from __future__ import annotations

from typing import Any, NotRequired, Self, TypedDict, Unpack

__all__ = ["S3Bucket", "S3Place"]


class S3Place(TypedDict):
    """Where a bucket is and who opens it (the keywords every `S3Bucket` takes)."""

    bucket: str
    endpoint: str | None  # e.g. http://127.0.0.1:8333; None or empty: AWS
    access_key: str
    secret_key: str
    region: NotRequired[str]  # us-east-1 when not given


class S3Bucket:
    """A bucket whose client is open for the ``async with`` block: path-style addressing (what
    SeaweedFS and MinIO want), `timeout` seconds to read (at most 5 to connect), botocore's
    standard retries capped at `attempts` tries in all. Empty credentials fall back to
    botocore's own chain."""

    def __init__(self, *, timeout: float, attempts: int, **place: Unpack[S3Place]) -> None:
        unknown = place.keys() - S3Place.__annotations__.keys()
        missing = {"bucket", "endpoint", "access_key", "secret_key"} - place.keys()
        if unknown or missing:  # as a signature of named keywords would refuse them
            raise TypeError(f"S3 bucket: unknown {sorted(unknown)}, missing {sorted(missing)}")
        self.bucket = place["bucket"]
        self._endpoint = place["endpoint"] or None
        self._credentials = (place["access_key"], place["secret_key"])
        self._region = place.get("region", "us-east-1")
        self._timeout = timeout
        self._attempts = attempts
        self._client: Any = None
        self._client_context: Any = None

    async def __aenter__(self) -> Self:
        import aioboto3
        from botocore.config import Config

        session = aioboto3.Session(
            aws_access_key_id=self._credentials[0] or None,
            aws_secret_access_key=self._credentials[1] or None,
            region_name=self._region,
        )
        config = Config(
            connect_timeout=min(5.0, self._timeout),
            read_timeout=self._timeout,
            retries={"max_attempts": self._attempts, "mode": "standard"},
            s3={"addressing_style": "path"},
        )
        self._client_context = session.client("s3", endpoint_url=self._endpoint, config=config)
        self._client = await self._client_context.__aenter__()
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._client_context is not None:
            await self._client_context.__aexit__(None, None, None)
            self._client_context = self._client = None
