"""Shared ACD state: operators, queued callers and the atomic claims that pair them.

Two backends with one interface (`AcdStore`): `InMemoryAcdStore` for a single node (every
method finishes without awaiting, so each is atomic in the event loop) and `RedisAcdStore`
for several controller nodes, where every read-check-write runs as one Lua script.

The one invariant both guarantee: a claim pairs a *ready* operator whose phone is registered
with a *waiting* caller, and marks both ringing in one step. So whatever the interleaving of
nodes, an operator never holds two calls and a caller never rings two operators.

Redis layout under ``prefix`` (default ``hotline:acd:``): ``op:<id>`` and ``caller:<id>``
hashes, the ``ops`` and ``callers`` id sets, ``place:<number>`` (a recalled caller's place,
with a TTL), the ``seq`` counter that orders arrivals across nodes, and ``node:<id>``, each
node's heartbeat (a key with a TTL the node keeps refreshing; gone means the node is lost).
Backend failures surface only as `hotline.store.state.StateUnavailable`.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import AsyncIterator, Callable
from typing import Protocol

from redis.asyncio import Redis

from hotline.store.state import RedisBacked, StateUnavailable

__all__ = ["AcdStore", "InMemoryAcdStore", "RedisAcdStore", "StateUnavailable"]

Fields = dict[str, str]


class AcdStore(Protocol):
    async def next_seq(self) -> int:
        """A cluster-wide arrival number (strictly increasing)."""
        ...

    async def put_operator(self, op_id: str, fields: Fields) -> None:
        """Create or overwrite an operator's record (login, resync after degraded mode)."""
        ...

    async def move_operator(
        self, op_id: str, state: str, *, expect: tuple[str, ...], fields: Fields | None = None
    ) -> bool:
        """Set the state only if the current one is in `expect` (compare-and-set)."""
        ...

    async def put_caller(self, call_id: str, fields: Fields) -> None:
        """Store a caller; state is "waiting" unless `fields` says otherwise (resync)."""
        ...

    async def remove_caller(self, call_id: str) -> None: ...

    async def claim(self, call_id: str, op_id: str, node: str) -> bool:
        """Atomically: ready+registered operator and waiting caller -> both ringing."""
        ...

    async def unclaim(self, call_id: str, op_id: str, op_state: str, reason: str = "") -> bool:
        """Undo a claim (no answer, caller gone): operator to `op_state`, caller waiting again."""
        ...

    async def answer(self, call_id: str, op_id: str) -> bool:
        """Ringing pair -> talking; False if the claim is no longer theirs."""
        ...

    async def finish(self, call_id: str, op_id: str, fields: Fields) -> bool:
        """Talking pair -> operator gets `fields` (wrap-up), caller is forgotten; False (and no
        change to the operator) if the operator is not talking on this call."""
        ...

    async def remember_place(self, number: str, fields: Fields, ttl_seconds: float) -> None: ...

    async def recall_place(self, number: str) -> Fields | None:
        """Take (and forget) the place a number left within the recall window."""
        ...

    async def operators(self) -> dict[str, Fields]: ...

    def changes(self) -> AsyncIterator[str]:
        """Operator ids as other nodes change them (never ends; raises StateUnavailable)."""
        ...

    async def operator(self, op_id: str) -> Fields | None: ...

    async def caller(self, call_id: str) -> Fields | None: ...

    async def callers(self) -> dict[str, Fields]: ...

    async def beat(self, node: str, ttl_seconds: float) -> None:
        """This node is alive for the next `ttl_seconds`."""
        ...

    async def node_alive(self, node: str) -> bool: ...

    async def drop_lost_caller(self, call_id: str, node: str, op_id: str) -> Fields | None:
        """Remove a caller of `node` if that node is (still) lost and the caller is not
        talking; a ringing operator goes back to ready. Returns the removed record, or None
        if it was not removed (another node swept it, the node came back, it is talking)."""
        ...

    async def ping(self) -> bool: ...

    async def close(self) -> None: ...


class InMemoryAcdStore:
    """The store of a single node (and of a node in degraded mode)."""

    def __init__(self) -> None:
        self._seq = 0
        self._ops: dict[str, Fields] = {}
        self._callers: dict[str, Fields] = {}
        self._places: dict[str, tuple[Fields, float]] = {}  # number -> (place, monotonic expiry)

    async def next_seq(self) -> int:
        self._seq += 1
        return self._seq

    async def put_operator(self, op_id: str, fields: Fields) -> None:
        self._ops[op_id] = dict(fields)

    async def move_operator(
        self, op_id: str, state: str, *, expect: tuple[str, ...], fields: Fields | None = None
    ) -> bool:
        record = self._ops.get(op_id)
        if record is None or record.get("state") not in expect:
            return False
        record.update(fields or {})
        record["state"] = state
        return True

    async def put_caller(self, call_id: str, fields: Fields) -> None:
        self._callers[call_id] = {"state": "waiting", **fields}
        self._seq = max(self._seq, int(fields.get("seq", "0")))

    async def remove_caller(self, call_id: str) -> None:
        self._callers.pop(call_id, None)

    async def claim(self, call_id: str, op_id: str, node: str) -> bool:
        op, caller = self._ops.get(op_id), self._callers.get(call_id)
        if op is None or caller is None:
            return False
        if op.get("state") != "ready" or op.get("device") == "0":
            return False
        if caller.get("state") != "waiting":
            return False
        op.update(state="ringing", call=call_id)
        caller.update(state="ringing", operator=op_id, node=node)
        return True

    async def unclaim(self, call_id: str, op_id: str, op_state: str, reason: str = "") -> bool:
        op = self._ops.get(op_id)
        if op is None or op.get("call") != call_id or op.get("state") != "ringing":
            return False
        op.update(state=op_state, call="", reason=reason)
        caller = self._callers.get(call_id)
        if caller is not None:
            caller.update(state="waiting", operator="")
        return True

    async def answer(self, call_id: str, op_id: str) -> bool:
        op, caller = self._ops.get(op_id), self._callers.get(call_id)
        if op is None or op.get("call") != call_id or op.get("state") != "ringing":
            return False
        op["state"] = "talking"
        if caller is not None:
            caller["state"] = "talking"
        return True

    async def finish(self, call_id: str, op_id: str, fields: Fields) -> bool:
        self._callers.pop(call_id, None)
        op = self._ops.get(op_id)
        if op is None or op.get("call") != call_id or op.get("state") != "talking":
            return False
        op.update(fields)
        return True

    async def remember_place(self, number: str, fields: Fields, ttl_seconds: float) -> None:
        # Kept about as long as asked, like Redis's expiry, so places of callers who never
        # call back do not pile up; whether a place may still be taken is the node's call.
        self._forget_expired_places()
        self._places[number] = (dict(fields), time.monotonic() + ttl_seconds)

    async def recall_place(self, number: str) -> Fields | None:
        self._forget_expired_places()
        kept = self._places.pop(number, None)
        return None if kept is None else kept[0]

    def _forget_expired_places(self) -> None:
        now = time.monotonic()
        for number in [n for n, (_, until) in self._places.items() if until < now]:
            del self._places[number]

    async def changes(self) -> AsyncIterator[str]:
        """One node sees all its own changes directly: nothing to follow."""
        await asyncio.Event().wait()
        yield ""  # pragma: no cover - never reached

    async def operators(self) -> dict[str, Fields]:
        return {k: dict(v) for k, v in self._ops.items()}

    async def operator(self, op_id: str) -> Fields | None:
        record = self._ops.get(op_id)
        return None if record is None else dict(record)

    async def caller(self, call_id: str) -> Fields | None:
        record = self._callers.get(call_id)
        return None if record is None else dict(record)

    async def callers(self) -> dict[str, Fields]:
        return {k: dict(v) for k, v in self._callers.items()}

    async def beat(self, node: str, ttl_seconds: float) -> None:
        """One node alone: nobody else reads its heartbeat."""

    async def node_alive(self, node: str) -> bool:
        return True  # every caller here is this node's own

    async def drop_lost_caller(self, call_id: str, node: str, op_id: str) -> Fields | None:
        return None

    async def ping(self) -> bool:
        return True

    async def close(self) -> None:
        return None


_CLAIM = """
if redis.call('HGET', KEYS[1], 'state') ~= 'ready' then return 0 end
if redis.call('HGET', KEYS[1], 'device') == '0' then return 0 end
if redis.call('HGET', KEYS[2], 'state') ~= 'waiting' then return 0 end
redis.call('HSET', KEYS[1], 'state', 'ringing', 'call', ARGV[2])
redis.call('HSET', KEYS[2], 'state', 'ringing', 'operator', ARGV[1], 'node', ARGV[3])
redis.call('PUBLISH', KEYS[#KEYS], KEYS[1])
return 1
"""

# KEYS: op, caller; ARGV: call id, new operator state, pause reason
_UNCLAIM = """
if redis.call('HGET', KEYS[1], 'state') ~= 'ringing' then return 0 end
if redis.call('HGET', KEYS[1], 'call') ~= ARGV[1] then return 0 end
redis.call('HSET', KEYS[1], 'state', ARGV[2], 'call', '', 'reason', ARGV[3])
if redis.call('EXISTS', KEYS[2]) == 1 then
  redis.call('HSET', KEYS[2], 'state', 'waiting', 'operator', '')
end
redis.call('PUBLISH', KEYS[#KEYS], KEYS[1])
return 1
"""

_ANSWER = """
if redis.call('HGET', KEYS[1], 'state') ~= 'ringing' then return 0 end
if redis.call('HGET', KEYS[1], 'call') ~= ARGV[1] then return 0 end
redis.call('HSET', KEYS[1], 'state', 'talking')
if redis.call('EXISTS', KEYS[2]) == 1 then redis.call('HSET', KEYS[2], 'state', 'talking') end
redis.call('PUBLISH', KEYS[#KEYS], KEYS[1])
return 1
"""

# KEYS: op; ARGV: new state, n expected states..., then field/value pairs
_MOVE = """
local current = redis.call('HGET', KEYS[1], 'state')
if not current then return 0 end
local n = tonumber(ARGV[2])
local ok = false
for i = 3, 2 + n do if ARGV[i] == current then ok = true end end
if not ok then return 0 end
redis.call('HSET', KEYS[1], 'state', ARGV[1])
for i = 3 + n, #ARGV, 2 do redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1]) end
redis.call('PUBLISH', KEYS[#KEYS], KEYS[1])
return 1
"""

# KEYS: op, caller, callers set; ARGV: call id, then field/value pairs for the operator
_FINISH = """
redis.call('DEL', KEYS[2])
redis.call('SREM', KEYS[3], ARGV[1])
if redis.call('HGET', KEYS[1], 'state') ~= 'talking' then return 0 end
if redis.call('HGET', KEYS[1], 'call') ~= ARGV[1] then return 0 end
for i = 2, #ARGV, 2 do redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1]) end
redis.call('PUBLISH', KEYS[#KEYS], KEYS[1])
return 1
"""

# KEYS: caller, callers set, the node's heartbeat, the caller's operator, channel;
# ARGV: call id, node
_DROP_LOST = """
if redis.call('HGET', KEYS[1], 'node') ~= ARGV[2] then return {} end
if redis.call('EXISTS', KEYS[3]) == 1 then return {} end
if redis.call('HGET', KEYS[1], 'state') == 'talking' then return {} end
if redis.call('HGET', KEYS[4], 'state') == 'ringing'
   and redis.call('HGET', KEYS[4], 'call') == ARGV[1] then
  redis.call('HSET', KEYS[4], 'state', 'ready', 'call', '', 'reason', '')
  redis.call('PUBLISH', KEYS[5], KEYS[4])
end
local record = redis.call('HGETALL', KEYS[1])
redis.call('DEL', KEYS[1])
redis.call('SREM', KEYS[2], ARGV[1])
return record
"""

_RECALL = """
local place = redis.call('HGETALL', KEYS[1])
redis.call('DEL', KEYS[1])
return place
"""


class RedisAcdStore(RedisBacked):
    """ACD state in Redis, shared by all controller nodes; the store owns `client`."""

    what = "ACD state"

    def __init__(self, client: Redis, prefix: str = "hotline:acd:") -> None:
        super().__init__(client, prefix)
        self._claim = client.register_script(_CLAIM)
        self._unclaim = client.register_script(_UNCLAIM)
        self._answer = client.register_script(_ANSWER)
        self._move = client.register_script(_MOVE)
        self._recall = client.register_script(_RECALL)
        self._finish = client.register_script(_FINISH)
        self._drop_lost = client.register_script(_DROP_LOST)

    def _op(self, op_id: str) -> str:
        return f"{self._prefix}op:{op_id}"

    @property
    def _channel(self) -> str:
        """Pub/sub channel: every write to an operator publishes its key here (in the same
        script), so other nodes learn of it without polling."""
        return f"{self._prefix}operator-changed"

    async def changes(self) -> AsyncIterator[str]:
        """Ids of operators changed by any node, as they happen (own writes included)."""
        pubsub = self._redis.pubsub(ignore_subscribe_messages=True)
        marker = f"{self._prefix}op:"
        try:
            async with self._guard("subscribe"):
                await pubsub.subscribe(self._channel)
            task = asyncio.current_task()
            while True:
                async with self._guard("listen"):
                    message = await pubsub.get_message(timeout=1.0)
                if task is not None and task.cancelling():
                    # redis-py's get_message can swallow a cancellation that lands in its
                    # read; without this check the loop would outlive its task's cancel().
                    raise asyncio.CancelledError
                if message is not None and message.get("type") == "message":
                    key = _text(message["data"])
                    if key.startswith(marker):
                        yield key[len(marker) :]
        finally:
            await pubsub.aclose()

    def _caller(self, call_id: str) -> str:
        return f"{self._prefix}caller:{call_id}"

    async def next_seq(self) -> int:
        async with self._guard("next_seq"):
            return int(await self._redis.incr(f"{self._prefix}seq"))

    async def put_operator(self, op_id: str, fields: Fields) -> None:
        async with self._guard("put_operator"), self._redis.pipeline(transaction=True) as pipe:
            pipe.delete(self._op(op_id))
            pipe.hset(self._op(op_id), mapping=dict(fields))  # type: ignore[arg-type]
            pipe.sadd(f"{self._prefix}ops", op_id)
            pipe.publish(self._channel, self._op(op_id))
            await pipe.execute()

    async def move_operator(
        self, op_id: str, state: str, *, expect: tuple[str, ...], fields: Fields | None = None
    ) -> bool:
        pairs = [item for pair in (fields or {}).items() for item in pair]
        args = [state, str(len(expect)), *expect, *pairs]
        async with self._guard("move_operator"):
            return bool(await self._move(keys=[self._op(op_id), self._channel], args=args))

    async def put_caller(self, call_id: str, fields: Fields) -> None:
        mapping = {"state": "waiting", **fields}
        async with self._guard("put_caller"), self._redis.pipeline(transaction=True) as pipe:
            pipe.delete(self._caller(call_id))
            pipe.hset(self._caller(call_id), mapping=mapping)  # type: ignore[arg-type]
            pipe.sadd(f"{self._prefix}callers", call_id)
            await pipe.execute()

    async def remove_caller(self, call_id: str) -> None:
        async with self._guard("remove_caller"), self._redis.pipeline(transaction=True) as pipe:
            pipe.delete(self._caller(call_id))
            pipe.srem(f"{self._prefix}callers", call_id)
            await pipe.execute()

    async def claim(self, call_id: str, op_id: str, node: str) -> bool:
        keys = [self._op(op_id), self._caller(call_id), self._channel]
        async with self._guard("claim"):
            return bool(await self._claim(keys=keys, args=[op_id, call_id, node]))

    async def unclaim(self, call_id: str, op_id: str, op_state: str, reason: str = "") -> bool:
        keys = [self._op(op_id), self._caller(call_id), self._channel]
        async with self._guard("unclaim"):
            return bool(await self._unclaim(keys=keys, args=[call_id, op_state, reason]))

    async def answer(self, call_id: str, op_id: str) -> bool:
        keys = [self._op(op_id), self._caller(call_id), self._channel]
        async with self._guard("answer"):
            return bool(await self._answer(keys=keys, args=[call_id]))

    async def finish(self, call_id: str, op_id: str, fields: Fields) -> bool:
        keys = [self._op(op_id), self._caller(call_id), f"{self._prefix}callers", self._channel]
        pairs = [item for pair in fields.items() for item in pair]
        async with self._guard("finish"):
            return bool(await self._finish(keys=keys, args=[call_id, *pairs]))

    async def remember_place(self, number: str, fields: Fields, ttl_seconds: float) -> None:
        key = f"{self._prefix}place:{number}"
        async with self._guard("remember_place"), self._redis.pipeline(transaction=True) as pipe:
            pipe.delete(key)
            pipe.hset(key, mapping=dict(fields))  # type: ignore[arg-type]
            pipe.pexpire(key, max(1, math.ceil(ttl_seconds * 1000)))
            await pipe.execute()

    async def recall_place(self, number: str) -> Fields | None:
        async with self._guard("recall_place"):
            flat = await self._recall(keys=[f"{self._prefix}place:{number}"])
        flat = [_text(x) for x in flat]
        return dict(zip(flat[::2], flat[1::2], strict=True)) or None

    async def _all(self, kind: str, key: Callable[[str], str]) -> dict[str, Fields]:
        async with self._guard(f"list {kind}"):
            ids = sorted(_text(m) for m in await self._redis.smembers(f"{self._prefix}{kind}"))
            async with self._redis.pipeline(transaction=False) as pipe:
                for ident in ids:
                    pipe.hgetall(key(ident))
                rows = await pipe.execute()
        return {
            ident: {_text(k): _text(v) for k, v in row.items()}
            for ident, row in zip(ids, rows, strict=True)
            if row
        }

    async def operators(self) -> dict[str, Fields]:
        return await self._all("ops", self._op)

    async def _one(self, key: str) -> Fields | None:
        async with self._guard("read"):
            row = await self._redis.hgetall(key)
        return {_text(k): _text(v) for k, v in row.items()} or None

    async def operator(self, op_id: str) -> Fields | None:
        return await self._one(self._op(op_id))

    async def caller(self, call_id: str) -> Fields | None:
        return await self._one(self._caller(call_id))

    async def callers(self) -> dict[str, Fields]:
        return await self._all("callers", self._caller)

    def _heartbeat(self, node: str) -> str:
        return f"{self._prefix}node:{node}"

    async def beat(self, node: str, ttl_seconds: float) -> None:
        async with self._guard("beat"):
            await self._redis.set(
                self._heartbeat(node), "1", px=max(1, math.ceil(ttl_seconds * 1000))
            )

    async def node_alive(self, node: str) -> bool:
        async with self._guard("node_alive"):
            return bool(await self._redis.exists(self._heartbeat(node)))

    async def drop_lost_caller(self, call_id: str, node: str, op_id: str) -> Fields | None:
        keys = [
            self._caller(call_id),
            f"{self._prefix}callers",
            self._heartbeat(node),
            self._op(op_id),  # op_id "" names no operator: its checks simply fail
            self._channel,
        ]
        async with self._guard("drop_lost_caller"):
            flat = [_text(x) for x in await self._drop_lost(keys=keys, args=[call_id, node])]
        return dict(zip(flat[::2], flat[1::2], strict=True)) or None


def _text(value: object) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)
