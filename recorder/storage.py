"""Where encrypted recordings are kept: one interface, a local directory and S3 behind it.

Only ciphertext ever reaches a backend (the pipeline encrypts before `put`). Writing the same
key twice replaces the object, so a retried upload never makes a second copy. `verify` is what
the pipeline trusts before deleting the spool file: size and SHA-256 of what the backend hands
back, read back in full, must equal what was sent.

Failures of the backend itself (connection refused, timeouts, 5xx) raise `StorageUnavailable`,
which the pipeline retries with back-off; anything else is a bug or a bad key and propagates.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Protocol, Self, Unpack

from hotline.private import open_private, private_dir
from hotline.s3 import S3Bucket, S3Place
from recorder.settings import RecorderSettings

__all__ = [
    "LocalStorage",
    "ObjectInfo",
    "S3Storage",
    "Storage",
    "StorageError",
    "StorageUnavailable",
    "VerificationFailed",
    "check_object_key",
    "open_storage",
    "verify",
]

READ_CHUNK = 256 * 1024
_SAFE_KEY = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._/-]{0,500}$")


class StorageError(Exception):
    """A storage operation failed for a reason retrying will not fix."""


class StorageUnavailable(StorageError):
    """The backend cannot be reached or answered with a server error: retry later."""


class VerificationFailed(StorageError):
    """The stored object differs from what was uploaded (size or checksum)."""


@dataclass(frozen=True)
class ObjectInfo:
    key: str
    size: int
    sha256: str | None  # as recorded at upload, when the backend keeps metadata


def check_object_key(key: str) -> str:
    """Refuse keys that could escape the local directory or confuse S3 (`..`, `//`, `\\`)."""
    if not _SAFE_KEY.match(key) or ".." in key or "//" in key or key.endswith("/"):
        raise StorageError(f"unsafe object key {key!r}")
    return key


class Storage(Protocol):
    """What the pipeline, access and retention code need of a backend."""

    name: str

    async def put(self, key: str, path: Path, sha256: str) -> None:
        """Store the file at `path` under `key`, replacing any object already there."""

    async def stat(self, key: str) -> ObjectInfo | None:
        """Size (and uploaded checksum) of the object, None if there is none."""

    def read(self, key: str) -> AsyncIterator[bytes]:
        """The object's bytes in chunks (StorageError if it does not exist)."""

    async def delete(self, key: str) -> None:
        """Remove the object; removing a missing object is not an error."""

    async def list_keys(self, prefix: str = "") -> list[str]:
        """Keys of the stored objects starting with `prefix`, sorted."""

    async def __aenter__(self) -> Self: ...

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None: ...


async def verify(storage: Storage, key: str, size: int, sha256: str) -> None:
    """Check the stored object by size, by its recorded checksum and by reading it back."""
    info = await storage.stat(key)
    if info is None:
        raise VerificationFailed(f"object {key} is missing after upload")
    if info.size != size:
        raise VerificationFailed(f"object {key} has {info.size} bytes, uploaded {size}")
    if info.sha256 is not None and info.sha256 != sha256:
        raise VerificationFailed(f"object {key} carries checksum {info.sha256}, not {sha256}")
    digest = hashlib.sha256()
    read = 0
    async for chunk in storage.read(key):
        digest.update(chunk)
        read += len(chunk)
    if read != size or digest.hexdigest() != sha256:
        raise VerificationFailed(f"object {key} reads back differently from what was uploaded")


class LocalStorage:
    """A directory on a local (or mounted) filesystem; the embedded default.

    Writes go to a temporary name, are fsynced, then renamed over the key: a crash leaves
    either the old object or the new one, never half of one.
    """

    name = "local"

    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    async def __aenter__(self) -> Self:
        private_dir(self.root)
        return self

    async def __aexit__(self, *exc: object) -> None:
        return None

    def _path(self, key: str) -> Path:
        return self.root / check_object_key(key)

    async def put(self, key: str, path: Path, sha256: str) -> None:
        # in a thread: the two fsyncs can take tens of milliseconds on a busy disk, and the event
        # loop they would hold is the one answering calls
        await asyncio.to_thread(self._put_file, self._path(key), path)

    def _put_file(self, target: Path, path: Path) -> None:
        try:
            target.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            temporary = target.with_name(f".{target.name}.partial")
            with path.open("rb") as source, open_private(temporary) as sink:
                while chunk := source.read(READ_CHUNK):
                    sink.write(chunk)
                sink.flush()
                os.fsync(sink.fileno())
            os.replace(temporary, target)
            _fsync_dir(target.parent)
        except OSError as error:
            raise StorageUnavailable(f"local storage {self.root}: {error}") from error

    async def stat(self, key: str) -> ObjectInfo | None:
        try:
            return ObjectInfo(key, self._path(key).stat().st_size, None)
        except FileNotFoundError:
            return None
        except OSError as error:
            raise StorageUnavailable(f"local storage {self.root}: {error}") from error

    async def read(self, key: str) -> AsyncIterator[bytes]:
        try:
            handle = self._path(key).open("rb")
        except FileNotFoundError:
            raise StorageError(f"object {key} does not exist") from None
        except OSError as error:
            raise StorageUnavailable(f"local storage {self.root}: {error}") from error
        with handle:
            while chunk := handle.read(READ_CHUNK):
                yield chunk

    async def delete(self, key: str) -> None:
        try:
            self._path(key).unlink(missing_ok=True)
        except OSError as error:
            raise StorageUnavailable(f"local storage {self.root}: {error}") from error

    async def list_keys(self, prefix: str = "") -> list[str]:
        found = []
        for path in self.root.rglob("*"):
            key = path.relative_to(self.root).as_posix()
            if path.is_file() and not path.name.startswith(".") and key.startswith(prefix):
                found.append(key)
        return sorted(found)


def _fsync_dir(directory: Path) -> None:
    """Make a rename durable: the directory entry must reach the disk too."""
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class S3Storage(S3Bucket):
    """An S3-compatible bucket (AWS, SeaweedFS, MinIO, Ceph RGW) through aioboto3.

    botocore's own retries are turned off: the pipeline retries with its own back-off and
    raises the alarm, which it could not do if each call silently retried for minutes.
    """

    name = "s3"

    def __init__(self, *, timeout: float = 30.0, **place: Unpack[S3Place]) -> None:
        super().__init__(timeout=timeout, attempts=1, **place)

    async def ensure_bucket(self) -> None:
        """Create the bucket if it is missing (first start of a fresh installation)."""
        async with self._errors("head bucket"):
            try:
                await self._client.head_bucket(Bucket=self.bucket)
                return
            except Exception as error:
                if _status(error) != 404:
                    raise
            await self._client.create_bucket(Bucket=self.bucket)

    async def put(self, key: str, path: Path, sha256: str) -> None:
        check_object_key(key)
        async with self._errors(f"put {key}"):
            with path.open("rb") as body:
                await self._client.put_object(
                    Bucket=self.bucket,
                    Key=key,
                    Body=body,
                    ContentLength=os.stat(path).st_size,
                    ContentType="application/octet-stream",
                    Metadata={"sha256": sha256},
                )

    async def stat(self, key: str) -> ObjectInfo | None:
        check_object_key(key)
        async with self._errors(f"head {key}"):
            try:
                head = await self._client.head_object(Bucket=self.bucket, Key=key)
            except Exception as error:
                if _status(error) == 404:
                    return None
                raise
        return ObjectInfo(key, int(head["ContentLength"]), head.get("Metadata", {}).get("sha256"))

    async def read(self, key: str) -> AsyncIterator[bytes]:
        check_object_key(key)
        async with self._errors(f"get {key}"):
            try:
                response = await self._client.get_object(Bucket=self.bucket, Key=key)
            except Exception as error:
                if _status(error) == 404:
                    raise StorageError(f"object {key} does not exist") from None
                raise
            body = response["Body"]
            try:
                async for chunk in body.iter_chunks(READ_CHUNK):
                    yield chunk
            finally:
                body.close()

    async def delete(self, key: str) -> None:
        check_object_key(key)
        async with self._errors(f"delete {key}"):
            await self._client.delete_object(Bucket=self.bucket, Key=key)

    async def list_keys(self, prefix: str = "") -> list[str]:
        found: list[str] = []
        async with self._errors(f"list {prefix}"):
            paginator = self._client.get_paginator("list_objects_v2")
            async for page in paginator.paginate(Bucket=self.bucket, Prefix=prefix):
                found.extend(item["Key"] for item in page.get("Contents", []))
        return sorted(found)

    def _errors(self, what: str) -> _S3Errors:
        return _S3Errors(f"s3 {self._endpoint or 'aws'}/{self.bucket}: {what}")


class _S3Errors:
    """Translate botocore/aiohttp failures into StorageUnavailable / StorageError."""

    def __init__(self, what: str) -> None:
        self.what = what

    async def __aenter__(self) -> None:
        return None

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: object
    ) -> bool:
        if exc is None or isinstance(exc, StorageError) or not isinstance(exc, Exception):
            return False
        status = _status(exc)
        if status is not None and status < 500 and status not in (408, 429):
            raise StorageError(f"{self.what}: HTTP {status}: {exc}") from exc
        raise StorageUnavailable(f"{self.what}: {type(exc).__name__}: {exc}") from exc


def _status(error: BaseException) -> int | None:
    response = getattr(error, "response", None)
    if not isinstance(response, dict):
        return None
    status = response.get("ResponseMetadata", {}).get("HTTPStatusCode")
    if isinstance(status, int):
        return status
    code = response.get("Error", {}).get("Code")
    return 404 if code in ("404", "NoSuchKey", "NoSuchBucket", "NotFound") else None


def open_storage(settings: RecorderSettings) -> LocalStorage | S3Storage:
    """The backend the settings choose (not yet entered: use `async with`)."""
    if settings.storage == "local":
        return LocalStorage(settings.local_dir)
    credentials = settings.s3_credentials()
    return S3Storage(
        bucket=settings.s3_bucket,
        endpoint=settings.s3_endpoint or None,
        access_key=credentials.access_key,
        secret_key=credentials.secret_key,
        region=settings.s3_region,
    )
