"""Connecting a queued caller to an operator from the caller's own FastAGI session.

`connect_call` is the hook the FastAGI entry (the lead's wiring) calls when a menu sends a
caller to a group. It queues the caller, plays music on hold, lets `announce` speak position
and expected wait at intervals, and when the ACD picks an operator it EXECs ``Dial`` to that
operator's phone from the caller's channel. Why this way rather than AMI Redirect/Bridge is
in routing/__init__.py.

After ``Dial`` returns, Asterisk's ``DIALSTATUS`` says what happened. ANSWER: the operator
talked to the caller; ``ANSWEREDTIME`` (talk seconds) and ``DIALEDTIME`` (ring + talk) give
the moment of answer, recorded as such so ASA is exact. NOANSWER, BUSY, CHANUNAVAIL,
CONGESTION: the operator is paused "no answer" and the caller, still first, waits for the
next one. The caller hanging up at any point is an abandon (their place is remembered for a
call back) or, after an answer, the end of the conversation. Asterisk tells of a hang-up at
once, also while no command runs (``HANGUP``, the session's `gone`): a caller on hold music
leaves the queue that moment, not at the next announcement.

A call handed back to the dialplan (the server cancels the handler: the controller is
stopping) is not an abandon: the caller comes back through the dialplan's re-entry and takes
their place again (`AcdNode.abandon` with ``counted=False``).
"""

from __future__ import annotations

import asyncio
import logging
from asyncio import FIRST_COMPLETED
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol
from urllib.parse import urlsplit

from routing.model import Offer, Overflow
from routing.node import AcdNode

__all__ = [
    "ANSWERED_SUBROUTINE",
    "ConnectResult",
    "DialSession",
    "connect_call",
    "operator_answered",
]

# The dialplan subroutine Dial runs on the operator's channel at answer (asterisk-conf), with
# the call id and this controller's host:port (ARG2) as arguments:
#   [hotline-acd-answered]
#   exten => s,1,AGI(agi://${ARG2}/acd-answered?call=${ARG1})
#    same => n,Return()
ANSWERED_SUBROUTINE = "hotline-acd-answered"
log = logging.getLogger("hotline.routing")
_RING_FAILURES = frozenset({"NOANSWER", "BUSY", "CHANUNAVAIL", "CONGESTION"})


class _CallerLeft(Exception):
    """The session ended (``HANGUP`` notice, connection lost) while the caller waited."""


class DialSession(Protocol):
    """The part of `hotline.agi.session.AgiSession` this module uses."""

    call_id: str
    env: Mapping[str, str]

    async def exec(self, application: str, *options: str) -> int: ...

    async def get_variable(self, name: str) -> str | None: ...

    def gone(self) -> asyncio.Future[None]: ...


@dataclass(frozen=True)
class ConnectResult:
    outcome: str  # answered | overflow | caller_gone
    operator_id: str | None = None
    overflow_reason: str | None = None
    overflow_group: str | None = None


# announce(position, expected_wait, stop): play the announcement, checking `stop` before each
# prompt file: an operator picked while it plays must not wait for the whole of it.
Announce = Callable[[int, float | None, asyncio.Event], Awaitable[None]]


async def connect_call(
    session: DialSession,
    node: AcdNode,
    group_id: str,
    *,
    number: str = "",
    priority: int = 0,
    data: dict[str, str] | None = None,
    announce: Announce | None = None,
    announce_every: float = 45.0,
    music_class: str = "default",
    hung_up: type[BaseException] = ConnectionError,
    on_offer: Callable[[Offer], None] | None = None,
    arrived_at: float | None = None,
    on_queued: Callable[[float], Awaitable[None]] | None = None,
) -> ConnectResult:
    """Queue the caller in `group_id` and connect them; returns when they are done with the
    ACD. `hung_up` is the exception the session raises when the caller is gone
    (``hotline.agi.session.CallerHungUp``). Overflow (closed, nobody logged in, max wait)
    is returned, not handled: the menu's overflow path runs it. `arrived_at`: the caller's
    original arrival, carried from a controller that went away (`routing.arrival`);
    `on_queued` is told the arrival the caller is queued with, to carry it on; `on_offer` is
    told each offer just before the operator's phone is dialled (the desktop's screen pop)."""
    group_id, reason = _staffed_group(node, group_id)
    if reason is not None:
        group = node.acd.groups[group_id]
        return ConnectResult(
            "overflow", overflow_reason=reason, overflow_group=group.overflow_group
        )
    call_id = session.call_id
    await node.enqueue(
        call_id, group_id, number=number, priority=priority, data=data, arrived_at=arrived_at
    )
    answered = False
    try:
        if on_queued is not None:
            await on_queued(node.acd.caller(call_id).first_arrival)
        while True:
            picked = await _wait(session, node, call_id, announce, announce_every, music_class)
            if isinstance(picked, Overflow):
                return ConnectResult(
                    "overflow",
                    overflow_reason=picked.reason,
                    overflow_group=picked.overflow_group,
                )
            if on_offer is not None:
                on_offer(picked)
            answered = await _dial(session, node, picked)
            if answered:
                await node.end_call(call_id)
                return ConnectResult("answered", operator_id=picked.operator_id)
    except (hung_up, _CallerLeft):
        talked_to = await _leave(node, call_id, answered)
        if talked_to is not None:
            # The caller ended the conversation by hanging up: still an answered call (the
            # ACD counts it so), not a caller who left before an operator took them.
            return ConnectResult("answered", operator_id=talked_to)
        return ConnectResult("caller_gone")
    except asyncio.CancelledError:  # handed back to the dialplan: the caller is still there
        await asyncio.shield(_hand_back(node, call_id, answered))
        raise


async def _hand_back(node: AcdNode, call_id: str, answered: bool) -> None:
    """The server handed the call back (shutting down): the caller did not hang up, so no
    abandon is counted; their place waits for the dialplan's re-entry."""
    caller = node.acd.callers.get(call_id)
    if answered or (caller is not None and caller.state == "talking"):
        await node.end_call(call_id)
        return
    await node.abandon(call_id, counted=False)  # place remembered, no abandon counted


def _staffed_group(node: AcdNode, group_id: str) -> tuple[str, str | None]:
    """The group to queue in and why not, if so. An open group with nobody logged in (nor in
    the groups it widens to) sends the caller on to its `overflow_group` when someone is
    logged in there (one step, no chains), so "all busy" is the last resort."""
    reason = node.acd.overflow_reason(group_id)
    overflow = node.acd.groups[group_id].overflow_group
    if reason == "nobody_logged_in" and overflow and node.acd.overflow_reason(overflow) is None:
        log.warning(
            "nobody logged in for %s: caller sent on to %s",
            group_id,
            overflow,
            extra={"group": group_id, "overflow_group": overflow},
        )
        return overflow, None
    return group_id, reason


async def _leave(node: AcdNode, call_id: str, answered: bool) -> str | None:
    """The caller hung up: end their conversation or abandon their place. Returns the
    operator they talked to ("" if unknown), None if they never talked to one."""
    # The answer hook may have marked the conversation although Dial's result never reached
    # this session (the caller hung up during Dial): the ACD's own state decides.
    caller = node.acd.callers.get(call_id)
    in_conversation = caller is not None and caller.state == "talking"
    if answered or in_conversation:
        operator = caller.operator if caller is not None else None
        await node.end_call(call_id)
        return operator or ""
    await node.abandon(call_id)
    return None


async def _wait(
    session: DialSession,
    node: AcdNode,
    call_id: str,
    announce: Announce | None,
    every: float,
    music_class: str,
) -> Offer | Overflow:
    """Hold music until the ACD decides; every `every` seconds an announcement. An operator
    picked during an announcement cuts it short at the end of the prompt file playing (a
    FastAGI session cannot stop a file mid-way): the phone rings within a file's length."""
    await session.exec("StartMusicOnHold", music_class)
    decision = asyncio.ensure_future(node.wait_for_operator(call_id))
    gone = session.gone()
    either: set[asyncio.Future[Any]] = {decision, gone}
    try:
        while True:
            await asyncio.wait(either, timeout=every, return_when=FIRST_COMPLETED)
            if gone.done():  # HANGUP while no command ran: leave the queue now
                raise _CallerLeft(call_id)
            if decision.done():
                break
            if announce is None:
                continue
            await session.exec("StopMusicOnHold")
            await _announce(node, call_id, announce, decision)
            if decision.done():
                return decision.result()  # hold music is off already
            await session.exec("StartMusicOnHold", music_class)
        await session.exec("StopMusicOnHold")
        return decision.result()
    finally:
        decision.cancel()  # a no-op once decided; the caller hung up otherwise


async def _announce(
    node: AcdNode, call_id: str, announce: Announce, decision: asyncio.Future[Offer | Overflow]
) -> None:
    position = node.acd.position(call_id)
    expected = node.acd.expected_wait(node.acd.caller(call_id).group, position)
    stop = asyncio.Event()
    decision.add_done_callback(lambda _: stop.set())
    await announce(position, expected, stop)


async def operator_answered(node: AcdNode, call_id: str) -> bool:
    """The answer hook: Dial's ``U()`` subroutine runs on the operator's channel the moment
    they pick up and calls this controller (``AGI(agi://HOST/acd-answered?call=ID)``);
    the lead routes that to this function. Marks the operator talking, stopping the ring
    timer. False if the offer is already over (e.g. timed out a moment before)."""
    caller = node.acd.callers.get(call_id)
    if caller is None or caller.state != "ringing":
        return False
    await node.answer(call_id)
    return True


async def _dial(session: DialSession, node: AcdNode, offer: Offer) -> bool:
    ring = max(1, round(offer.ring_until - node.acd.clock()))
    started = node.acd.clock()
    # g: the caller's channel goes on after the operator hangs up (the survey, a transfer),
    # like Queue()'s c; without it Dial returns -1 and Asterisk ends the AGI session.
    # The hook's second argument names this controller as the session reached it (one of the
    # dialplan's HOTLINE_AGI_HOSTS): only this node knows the call.
    host = urlsplit(session.env.get("agi_request", "")).netloc
    options = f"gU({ANSWERED_SUBROUTINE}^{offer.call_id}^{host})"
    await session.exec("Dial", offer.device, str(ring), options)
    status = (await session.get_variable("DIALSTATUS") or "").upper()
    caller = node.acd.callers.get(offer.call_id)
    if status == "ANSWER" and caller is not None and caller.state == "talking":
        return True  # the answer hook already recorded the moment of answer
    if status == "ANSWER" and caller is not None and caller.state == "waiting":
        return False  # transferred (agents.transfer): requeued, the operator's leg hung up
    if status == "ANSWER":
        dialed = _seconds(await session.get_variable("DIALEDTIME"))
        talked = _seconds(await session.get_variable("ANSWEREDTIME"))
        at = (
            started + max(0.0, dialed - talked)
            if dialed is not None and talked is not None
            else None
        )
        await node.answer(offer.call_id, at=at)
        return True
    # The ring timer may have fired first (Dial's timeout is rounded to whole seconds) and the
    # caller may already be ringing the next operator: only a still-open offer is missed.
    still_open = (
        caller is not None and caller.state == "ringing" and caller.operator == offer.operator_id
    )
    if (status in _RING_FAILURES or not status) and still_open:
        await node.no_answer(offer.call_id)
    return False


def _seconds(value: str | None) -> float | None:
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None
