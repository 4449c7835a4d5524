"""Shared, short-lived call state: per-call fields, claims and counters.

One interface, two backends. `InMemoryCallState` serves a single controller node and the
tests; `RedisCallState` lets several nodes see the same calls and agree on who owns what.
Callers only ever see `StateUnavailable` when the backend is down, never a driver exception,
so they can decide in one place whether to degrade or to refuse the call.
"""

from __future__ import annotations

import math
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from redis import exceptions as redis_errors
from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialBackoff
from redis.typing import EncodableT

__all__ = [
    "CallState",
    "InMemoryCallState",
    "RedisCallState",
    "StateUnavailable",
    "open_call_state",
    "redis_client",
]


class StateUnavailable(RuntimeError):
    """The call-state backend cannot be reached; the operation did not happen (or is unknown)."""


@runtime_checkable
class CallState(Protocol):
    """What the controller needs from shared call state, whatever stores it."""

    async def put(
        self, call_id: str, fields: dict[str, str], ttl_seconds: float | None = None
    ) -> None:
        """Replace a call's fields; with a TTL the call disappears unless put again."""
        ...

    async def update(self, call_id: str, fields: dict[str, str]) -> bool:
        """Merge fields into a stored call, keeping its TTL; False if the call is not stored."""
        ...

    async def get(self, call_id: str) -> dict[str, str] | None:
        """A call's fields, or None if it is not stored (never put, deleted or expired)."""
        ...

    async def delete(self, call_id: str) -> bool:
        """Forget a call; False if it was not stored."""
        ...

    async def active(self) -> list[str]:
        """The ids of all calls currently stored, in no particular order."""
        ...

    async def claim(self, key: str, owner: str, ttl_seconds: float) -> bool:
        """Take `key` for `owner` until release or expiry; exactly one contender wins.

        Claiming again by the current owner succeeds and renews the TTL, so a retry after a
        lost reply cannot lock the owner out of its own claim.
        """
        ...

    async def release(self, key: str, owner: str) -> bool:
        """Give up `key` if `owner` holds it; False (and no change) for anyone else."""
        ...

    async def incr(self, counter: str, by: int = 1) -> int:
        """Add `by` to a named counter and return the new value."""
        ...

    async def ping(self) -> bool:
        """True if the backend answers; a health probe, so it reports instead of raising."""
        ...

    async def close(self) -> None:
        """Release connections; the object must not be used afterwards."""
        ...


def _check_fields(fields: dict[str, str]) -> None:
    """Refuse an empty field set: Redis cannot store an empty hash, so neither do we."""
    if not fields:
        raise ValueError("fields must not be empty")


def _check_ttl(ttl_seconds: float | None) -> None:
    if ttl_seconds is not None and not ttl_seconds > 0:
        raise ValueError(f"ttl_seconds must be positive, got {ttl_seconds!r}")


@dataclass
class _Entry:
    fields: dict[str, str]
    expires_at: float | None = None

    def expired(self, now: float) -> bool:
        return self.expires_at is not None and now >= self.expires_at


@dataclass
class _Claim:
    owner: str
    expires_at: float


@dataclass
class InMemoryCallState:
    """Call state in this process only, for a single node and for tests.

    Every method completes without awaiting, so within one event loop each one is atomic.
    Expiry is checked lazily against a monotonic clock, immune to wall-clock jumps.
    """

    clock: Callable[[], float] = time.monotonic
    _calls: dict[str, _Entry] = field(default_factory=dict, init=False)
    _claims: dict[str, _Claim] = field(default_factory=dict, init=False)
    _counters: dict[str, int] = field(default_factory=dict, init=False)

    async def put(
        self, call_id: str, fields: dict[str, str], ttl_seconds: float | None = None
    ) -> None:
        _check_fields(fields)
        _check_ttl(ttl_seconds)
        expires = None if ttl_seconds is None else self.clock() + ttl_seconds
        self._calls[call_id] = _Entry(dict(fields), expires)

    async def update(self, call_id: str, fields: dict[str, str]) -> bool:
        entry = self._live(call_id)
        if entry is None:
            return False
        entry.fields.update(fields)
        return True

    async def get(self, call_id: str) -> dict[str, str] | None:
        entry = self._live(call_id)
        return None if entry is None else dict(entry.fields)

    async def delete(self, call_id: str) -> bool:
        if self._live(call_id) is None:
            return False
        del self._calls[call_id]
        return True

    async def active(self) -> list[str]:
        return [call_id for call_id in list(self._calls) if self._live(call_id) is not None]

    async def claim(self, key: str, owner: str, ttl_seconds: float) -> bool:
        _check_ttl(ttl_seconds)
        now = self.clock()
        held = self._claims.get(key)
        if held is not None and held.expires_at > now and held.owner != owner:
            return False
        self._claims[key] = _Claim(owner, now + ttl_seconds)
        return True

    async def release(self, key: str, owner: str) -> bool:
        held = self._claims.get(key)
        if held is None or held.expires_at <= self.clock() or held.owner != owner:
            return False
        del self._claims[key]
        return True

    async def incr(self, counter: str, by: int = 1) -> int:
        self._counters[counter] = self._counters.get(counter, 0) + by
        return self._counters[counter]

    async def ping(self) -> bool:
        return True

    async def close(self) -> None:
        self._calls.clear()
        self._claims.clear()

    def _live(self, call_id: str) -> _Entry | None:
        """The entry if present and unexpired; expired entries are dropped on the way."""
        entry = self._calls.get(call_id)
        if entry is not None and entry.expired(self.clock()):
            del self._calls[call_id]
            return None
        return entry


# KEYS[1] = call hash; ARGV = field, value, ... Only touches a call that still exists, so an
# update racing with expiry cannot resurrect the call without its TTL.
_UPDATE_LUA = """
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
redis.call('HSET', KEYS[1], unpack(ARGV))
return 1
"""

# KEYS[1] = claim key; ARGV[1] = owner, ARGV[2] = ttl in ms. Win if free, renew if ours.
_CLAIM_LUA = """
if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then return 1 end
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return 1
end
return 0
"""

# KEYS[1] = claim key; ARGV[1] = owner. Compare-and-delete in one step, so an owner whose
# claim expired and was taken by another cannot delete the new owner's claim.
_RELEASE_LUA = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""

# KEYS[1] = active set, KEYS[2..n] = call hashes; ARGV[1..n-1] = their ids. Drops ids whose
# hash has expired and returns the live ones; checking and removing in one step means an id
# that another node puts again meanwhile is never removed by mistake.
_PRUNE_ACTIVE_LUA = """
local live = {}
for i, call_id in ipairs(ARGV) do
  if redis.call('EXISTS', KEYS[i + 1]) == 1 then
    table.insert(live, call_id)
  else
    redis.call('SREM', KEYS[1], call_id)
  end
end
return live
"""


def _text(value: Any) -> str:
    """Accept clients with or without decode_responses."""
    return value.decode() if isinstance(value, bytes) else str(value)


def _ms(seconds: float) -> int:
    """Seconds to whole milliseconds, rounding up so a tiny TTL never becomes 'no TTL'."""
    return max(1, math.ceil(seconds * 1000))


class RedisBacked:
    """What every store held in Redis shares: the client it owns, driver failures turned into
    `StateUnavailable` naming the server, a ping for health checks, and closing."""

    # Names the store in error messages ("call state", "ACD state").
    what = "state"

    def __init__(self, client: Redis, prefix: str) -> None:
        self._redis = client
        self._prefix = prefix

    def _where(self) -> str:
        """Where the client points, for error messages an operator can act on."""
        kwargs = self._redis.connection_pool.connection_kwargs
        if kwargs.get("path"):
            return f"unix:{kwargs['path']}"
        return f"{kwargs.get('host', 'localhost')}:{kwargs.get('port', 6379)}"

    @asynccontextmanager
    async def _guard(self, operation: str) -> AsyncIterator[None]:
        """Turn the driver's connection failures into StateUnavailable with a useful message."""
        try:
            yield
        except (redis_errors.ConnectionError, redis_errors.TimeoutError, OSError) as exc:
            raise StateUnavailable(
                f"{self.what} unavailable: Redis at {self._where()} did not answer "
                f"{operation} ({type(exc).__name__}: {exc})"
            ) from exc

    async def ping(self) -> bool:
        try:
            async with self._guard("ping"):
                return bool(await self._redis.ping())
        except StateUnavailable:
            return False

    async def close(self) -> None:
        await self._redis.aclose()


class RedisCallState(RedisBacked):
    """Call state in Redis, shared by all controller nodes.

    Layout under `prefix`: `call:<id>` hashes, the `active` set of call ids, `claim:<key>`
    strings and `counter:<name>` integers. A set member can outlive its expired hash, so
    `active()` prunes such leftovers. The state owns `client` and closes it in `close()`.
    """

    what = "call state"

    def __init__(self, client: Redis, prefix: str = "hotline:") -> None:
        super().__init__(client, prefix)
        self._update = client.register_script(_UPDATE_LUA)
        self._claim = client.register_script(_CLAIM_LUA)
        self._release = client.register_script(_RELEASE_LUA)
        self._prune = client.register_script(_PRUNE_ACTIVE_LUA)

    @property
    def prefix(self) -> str:
        return self._prefix

    def _call_key(self, call_id: str) -> str:
        return f"{self._prefix}call:{call_id}"

    @property
    def _active_key(self) -> str:
        return f"{self._prefix}active"

    async def put(
        self, call_id: str, fields: dict[str, str], ttl_seconds: float | None = None
    ) -> None:
        _check_fields(fields)
        _check_ttl(ttl_seconds)
        key = self._call_key(call_id)
        async with self._guard("put"), self._redis.pipeline(transaction=True) as pipe:
            pipe.delete(key)
            mapping: dict[EncodableT, EncodableT] = {k: v for k, v in fields.items()}
            pipe.hset(key, mapping=mapping)
            if ttl_seconds is not None:
                pipe.pexpire(key, _ms(ttl_seconds))
            pipe.sadd(self._active_key, call_id)
            await pipe.execute()

    async def update(self, call_id: str, fields: dict[str, str]) -> bool:
        if not fields:
            return await self.get(call_id) is not None
        args = [item for pair in fields.items() for item in pair]
        async with self._guard("update"):
            return bool(await self._update(keys=[self._call_key(call_id)], args=args))

    async def get(self, call_id: str) -> dict[str, str] | None:
        async with self._guard("get"):
            raw = await self._redis.hgetall(self._call_key(call_id))
        return {_text(k): _text(v) for k, v in raw.items()} or None

    async def delete(self, call_id: str) -> bool:
        async with self._guard("delete"), self._redis.pipeline(transaction=True) as pipe:
            pipe.delete(self._call_key(call_id))
            pipe.srem(self._active_key, call_id)
            deleted, _ = await pipe.execute()
        return bool(deleted)

    async def active(self) -> list[str]:
        async with self._guard("active"):
            members = [_text(m) for m in await self._redis.smembers(self._active_key)]
            if not members:
                return []
            keys = [self._active_key, *map(self._call_key, members)]
            live = await self._prune(keys=keys, args=members)
        return [_text(m) for m in live]

    async def claim(self, key: str, owner: str, ttl_seconds: float) -> bool:
        _check_ttl(ttl_seconds)
        async with self._guard("claim"):
            won = await self._claim(keys=[self._claim_key(key)], args=[owner, _ms(ttl_seconds)])
        return bool(won)

    async def release(self, key: str, owner: str) -> bool:
        async with self._guard("release"):
            return bool(await self._release(keys=[self._claim_key(key)], args=[owner]))

    async def incr(self, counter: str, by: int = 1) -> int:
        async with self._guard("incr"):
            return int(await self._redis.incrby(f"{self._prefix}counter:{counter}", by))

    def _claim_key(self, key: str) -> str:
        return f"{self._prefix}claim:{key}"


def redis_client(redis_url: str) -> Redis:
    """A Redis client tuned for the call path: fail within about a second, not after ~4 s.

    redis-py's defaults retry ten times with backoff; an AGI session waiting on that would
    leave a caller in silence, so we retry briefly and let `StateUnavailable` decide instead.
    """
    return Redis.from_url(
        redis_url,
        decode_responses=True,
        socket_connect_timeout=1.0,
        socket_timeout=2.0,
        retry=Retry(ExponentialBackoff(cap=0.2, base=0.02), retries=2),
        health_check_interval=30,
    )


def open_call_state(
    backend: str, redis_url: str = "redis://127.0.0.1:6379/0", prefix: str = "hotline:"
) -> CallState:
    """The configured backend: "memory" (one node) or "redis" (shared by all nodes).

    Connecting is lazy; call `ping()` at startup to fail fast on a misconfigured Redis.
    """
    if backend == "memory":
        return InMemoryCallState()
    if backend == "redis":
        return RedisCallState(redis_client(redis_url), prefix=prefix)
    raise ValueError(f"unknown call state backend {backend!r}; expected 'memory' or 'redis'")
