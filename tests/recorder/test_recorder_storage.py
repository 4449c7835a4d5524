"""Both storage backends against the same expectations; S3 is a real SeaweedFS server."""

from __future__ import annotations

import hashlib
import os
from collections.abc import AsyncIterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from recorder.storage import (
    LocalStorage,
    S3Storage,
    Storage,
    StorageError,
    StorageUnavailable,
    VerificationFailed,
    verify,
)

if TYPE_CHECKING:
    from seaweed import Seaweed


@pytest.fixture(params=["local", "s3"])
async def storage(
    request: pytest.FixtureRequest, tmp_path: Path, seaweed: Seaweed
) -> AsyncIterator[Storage]:
    if request.param == "s3":
        async with seaweed.bucket() as s3:
            yield s3
        return
    async with LocalStorage(tmp_path / "store") as local:
        yield local


def _file(tmp_path: Path, name: str, data: bytes) -> tuple[Path, str]:
    path = tmp_path / name
    path.write_bytes(data)
    return path, hashlib.sha256(data).hexdigest()


async def _read(storage: Storage, key: str) -> bytes:
    return b"".join([chunk async for chunk in storage.read(key)])


async def test_put_read_verify_delete(storage: Storage, tmp_path: Path) -> None:
    data = os.urandom(700_000)  # several read chunks
    path, digest = _file(tmp_path, "a.enc", data)
    key = "2026/11/27/1795563226.1.ogg.enc"
    assert await storage.stat(key) is None
    await storage.put(key, path, digest)
    info = await storage.stat(key)
    assert info is not None and info.size == len(data)
    assert await _read(storage, key) == data
    await verify(storage, key, len(data), digest)
    assert await storage.list_keys("2026/") == [key]
    await storage.delete(key)
    await storage.delete(key)  # deleting twice is fine
    assert await storage.stat(key) is None and await storage.list_keys() == []
    with pytest.raises(StorageError, match="does not exist"):
        await _read(storage, key)


async def test_repeated_upload_leaves_one_object(storage: Storage, tmp_path: Path) -> None:
    first, first_digest = _file(tmp_path, "1", b"first version")
    second, second_digest = _file(tmp_path, "2", b"second, longer version")
    await storage.put("k/x.enc", first, first_digest)
    await storage.put("k/x.enc", second, second_digest)
    assert await storage.list_keys() == ["k/x.enc"]
    await verify(storage, "k/x.enc", second.stat().st_size, second_digest)
    with pytest.raises(VerificationFailed):
        await verify(storage, "k/x.enc", first.stat().st_size, first_digest)


async def test_verify_catches_same_size_corruption(storage: Storage, tmp_path: Path) -> None:
    good, digest = _file(tmp_path, "good", b"A" * 1000)
    bad, _ = _file(tmp_path, "bad", b"A" * 999 + b"B")
    await storage.put("k/y.enc", bad, digest)  # the backend got other bytes than we meant
    with pytest.raises(VerificationFailed, match="differently"):
        await verify(storage, "k/y.enc", 1000, digest)
    with pytest.raises(VerificationFailed, match="missing"):
        await verify(storage, "k/none.enc", 1000, digest)
    assert good.exists()


@pytest.mark.parametrize("key", ["../etc/passwd", "/abs", "a//b", "a\\b", "", "dir/", "a/../b"])
async def test_unsafe_keys_are_refused(storage: Storage, tmp_path: Path, key: str) -> None:
    path, digest = _file(tmp_path, "f", b"x")
    with pytest.raises(StorageError, match="unsafe"):
        await storage.put(key, path, digest)


async def test_unreachable_s3_is_unavailable_not_a_crash(tmp_path: Path) -> None:
    path, digest = _file(tmp_path, "f", b"x")
    storage = S3Storage(
        bucket="b", endpoint="http://127.0.0.1:9", access_key="a", secret_key="b", timeout=2
    )
    async with storage:
        with pytest.raises(StorageUnavailable):
            await storage.put("k/f.enc", path, digest)
        with pytest.raises(StorageUnavailable):
            await storage.stat("k/f.enc")


def test_a_misspelt_or_missing_s3_setting_is_refused_by_name() -> None:
    with pytest.raises(TypeError, match=r"unknown \['regoin'\]"):
        S3Storage(bucket="b", endpoint=None, access_key="a", secret_key="b", regoin="x")  # type: ignore[call-arg]
    with pytest.raises(TypeError, match=r"missing \['endpoint'\]"):
        S3Storage(bucket="b", access_key="a", secret_key="b")  # type: ignore[call-arg]


async def test_local_storage_on_a_file_instead_of_a_directory(tmp_path: Path) -> None:
    (tmp_path / "blocked").write_text("not a directory")
    path, digest = _file(tmp_path, "f", b"x")
    storage = LocalStorage(tmp_path / "blocked")
    with pytest.raises(StorageUnavailable):
        await storage.put("k/f.enc", path, digest)
