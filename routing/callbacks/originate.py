"""Dialling one claimed callback: AMI Originate of the operator's leg, then the citizen's,
and following the operator's leg until it hangs up.

How one callback is served (`CallbackDialler.serve`, started by the scheduler for each row it
claimed):

1. The callback enters the ACD core as a caller ``callback-<id>`` with its kept place, so live
   callers who came after it wait behind it and those before it go first. When its turn comes,
   the core picks an operator and `AcdNode` confirms the pairing with its atomic store claim
   (in process or Redis): that operator is reserved and nobody else gets them.
2. Originate (AMI, ``Async: true``, each with its own ActionID; the result is the
   ``OriginateResponse`` event carrying that ActionID: ``Response: Success|Failure`` and
   ``Reason``) first to the **operator's** device (`CallbackOriginator`). Not answered: the
   operator is paused "no answer" exactly as for a live call and the callback, still first,
   gets the next operator.
3. Operator answered: Originate to the **caller**. Answered: state ``connected``; the operator
   is "talking" until the operator leg's ``Hangup`` event. Not answered / busy / failed: the
   operator leg is hung up, the operator released (wrap-up ends at once), and the callback
   goes back to ``pending`` with ``next_attempt_at = now + retry_seconds * backoff^(n-1)``;
   after ``max_attempts`` calls the citizen did not take it is ``failed``.

Why the operator first, then the caller: a citizen who picks up must hear a person at once. A
caller-first order would make the citizen answer a government number and then wait (or hear
nobody if the reserved operator fails to pick up): that is the "abandoned call" of predictive
diallers, and for a public service it reads as a scam call. The price is operator time: the
operator waits through the citizen's ring (``caller_ring_seconds``); an operator's missed
ring costs the citizen nothing. The operator also sees the callback's data before the citizen
answers.

Asterisk dialplan the Originates need: asterisk-conf/extensions.conf, contexts
``hotline-callback-operator``, ``hotline-callback-caller`` and ``hotline-callback-out``. Both
legs meet in a ConfBridge as marked users with ``end_marked_any``: whoever hangs up first ends
the other leg, so the controller only follows the operator leg's ``Hangup``. If the operator
hangs up while the citizen's phone rings, the citizen's leg hears an apology and ends (its
dialplan finds the conference empty); the controller notices the operator left, frees them and
puts the callback back to pending without counting the attempt against the citizen.

At most once, when the AMI link fails: an Originate never sent (the link was already down)
or refused by Asterisk is a plain ``ami_error``, retried later and not counted against the
citizen. One that was sent but whose ``OriginateResponse`` was lost (the link dropped, the
reply timed out) is *uncertain* (``last_result`` starts with ``uncertain``): Asterisk may be
ringing the citizen, or they may be talking to the operator. For the citizen's leg the
attempt is counted (retries stay bounded) and the next one is not before
``caller_ring_seconds + response_grace_seconds`` (whatever Asterisk placed has stopped
ringing by then) plus the usual back-off. Before any attempt on an uncertain row the dialler
asks Asterisk for its channels (`routing.callbacks.live_legs`) and, while a leg of the
callback is still up or Asterisk cannot be asked, puts the row back to pending, uncertain
still, without dialling or counting.

Every state change of the row is guarded by ``node = <me>`` (see `routing.callbacks.store`),
so a node that lost its lease cannot overwrite the row another node took over.
"""

from __future__ import annotations

import asyncio
import json
import logging
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Final

from hotline.ami.client import AmiClient
from hotline.ami.errors import AmiActionError, AmiError
from hotline.ami.protocol import AmiMessage
from hotline.store.state import StateUnavailable
from routing.callbacks.live_legs import UNCERTAIN, CallbackLegs, bridge_name, is_uncertain
from routing.callbacks.model import Callback, CallbackState
from routing.callbacks.model import CallbackState as S
from routing.callbacks.settings import CallbackSettings
from routing.callbacks.store import CallbackStore
from routing.model import AcdError, Offer
from routing.node import AcdNode

__all__ = ["CallbackDialler", "CallbackOriginator", "OriginateOutcome"]

log = logging.getLogger("hotline.routing.callbacks")

# Asterisk's OriginateResponse Reason codes (channel.h AST_CONTROL_*).
REASONS: Final[Mapping[int, str]] = {
    0: "failed",
    1: "hung_up",
    3: "no_answer",
    4: "answered",
    5: "busy",
    8: "congestion",
}


@dataclass(frozen=True)
class OriginateOutcome:
    answered: bool
    # answered | no_answer | busy | failed | congestion | hung_up | ami_error... (not
    # placed) | uncertain... (sent, its result lost with the AMI link)
    result: str
    channel: str = ""
    uniqueid: str = ""


class CallbackOriginator:
    """AMI Originate with the result of the call, correlated by ActionID."""

    def __init__(self, ami: AmiClient, grace: float) -> None:
        self._ami = ami
        self._grace = grace
        self._waiting: dict[str, asyncio.Future[OriginateOutcome]] = {}
        ami.on("OriginateResponse", self._on_response)

    def close(self) -> None:
        self._ami.off("OriginateResponse", self._on_response)

    def _on_response(self, event: AmiMessage) -> None:
        future = self._waiting.get(event.action_id or "")
        if future is None or future.done():
            return
        try:
            reason = int(event.get("Reason") or "0")
        except ValueError:
            reason = 0
        answered = (event.get("Response") or "").lower() == "success"
        future.set_result(
            OriginateOutcome(
                answered,
                "answered" if answered else REASONS.get(reason, f"reason_{reason}"),
                event.get("Channel") or "",
                event.get("Uniqueid") or "",
            )
        )

    async def call(
        self, tag: str, headers: list[tuple[str, str]], timeout_seconds: float
    ) -> OriginateOutcome:
        if not self._ami.connected:
            # AmiClient.action would refuse it before writing a byte (it checks the same, and
            # nothing awaits in between): certainly not placed
            return OriginateOutcome(False, "ami_error: AMI link down, Originate not sent")
        action_id = f"{tag}-{uuid.uuid4().hex[:12]}"
        future: asyncio.Future[OriginateOutcome] = asyncio.get_running_loop().create_future()
        self._waiting[action_id] = future  # before sending: the event may beat our await
        headers = [*headers, ("Timeout", str(max(1000, round(timeout_seconds * 1000))))]
        try:
            await self._ami.action("Originate", headers, ActionID=action_id, Async="true")
            async with asyncio.timeout(timeout_seconds + self._grace):
                return await future
        except AmiActionError as exc:  # Asterisk answered Error: nothing was placed
            return OriginateOutcome(False, f"ami_error: {exc}"[:200])
        except AmiError as exc:  # sent, then the link dropped or the reply never came
            return OriginateOutcome(False, f"{UNCERTAIN}: {exc}"[:200])
        except TimeoutError:  # queued, but the OriginateResponse was lost
            return OriginateOutcome(False, f"{UNCERTAIN}: no OriginateResponse")
        finally:
            self._waiting.pop(action_id, None)

    async def hang_up(self, channel: str) -> None:
        """Best effort: the dialplan also ends the operator's bridge on its own."""
        if not channel:
            return
        try:
            await self._ami.action("Hangup", Channel=channel)
        except AmiError as exc:
            # "No such channel": it ended first (its own dialplan, or the other side left).
            level = logging.DEBUG if "No such channel" in str(exc) else logging.WARNING
            log.log(level, "could not hang up %s: %s", channel, exc)


class CallbackDialler:
    """Serves the callbacks one node claimed: queue, Originate both legs, follow the operator's."""

    def __init__(
        self,
        store: CallbackStore,
        node: AcdNode,
        ami: AmiClient,
        settings: CallbackSettings,
        now: Callable[[], datetime],
    ) -> None:
        self.store = store
        self.node = node
        self.settings = settings
        self._now = now
        self._ami = ami
        self._originator = CallbackOriginator(ami, settings.response_grace_seconds)
        self._legs = CallbackLegs(ami, settings.caller_channel)
        self._operator_legs: dict[str, _OperatorLeg] = {}  # by uniqueid (or channel)
        ami.on("Hangup", self._on_hangup)

    def close(self) -> None:
        """Stop listening to AMI (the scheduler has cancelled the callbacks in flight)."""
        self._originator.close()
        self._ami.off("Hangup", self._on_hangup)

    async def serve(self, row: Callback) -> None:
        """Queue a claimed callback at its kept place and dial it (see the module docstring)."""
        call_id = f"callback-{row.id}"
        queued = False
        try:
            if is_uncertain(row.last_result) and await self._still_up(row):
                return
            await self._queue(row, call_id)
            queued = True
            offer = await self._next_offer(call_id)
            while offer is not None:
                outcome = await self._attempt(row, call_id, offer)
                if outcome is not None:
                    queued = outcome == "talking"
                    return
                offer = await self._next_offer(call_id)
            await self._leave_queue(call_id)
            queued = False
            await self._move(row, (S.RESERVED,), S.PENDING, node=None, last_result="overflow")
        except asyncio.CancelledError:
            if queued:
                await asyncio.shield(self._leave_queue(call_id))
            raise
        except Exception as exc:
            log.exception("callback %s: serving failed", row.id)
            if queued:
                await self._leave_queue(call_id)
            await self._retry_later(row, (S.RESERVED, S.DIALING), f"error: {type(exc).__name__}")

    async def _still_up(self, row: Callback) -> bool:
        """The last call's result was lost: is a leg of it still up in Asterisk? If so, or if
        Asterisk cannot be asked, the row goes back to pending (not counted, uncertain still,
        so the next attempt asks again) and True is returned: nobody is dialled now."""
        try:
            channel = await self._legs.alive(row)
        except AmiError as exc:
            reason = f"{UNCERTAIN}: channels not known ({exc})"
        else:
            if channel is None:
                return False
            reason = f"{UNCERTAIN}: {channel} still up"
        log.warning("callback %s not dialled: %s", row.id, reason)
        await self._retry_later(row, (S.RESERVED,), reason[:200])
        return True

    async def _queue(self, row: Callback, call_id: str) -> None:
        """Put the callback into the ACD's queue at its kept place."""
        if row.queue_seq is None:
            try:
                row.queue_seq = await self.node.store.next_seq()
            except StateUnavailable as exc:
                log.warning("callback %s: no arrival number (%s); joins at the back", row.id, exc)
                await self.node.enqueue(call_id, row.group_id, priority=row.priority)
                return
            await self.store.move(
                row.id,
                (S.RESERVED.value,),
                S.RESERVED.value,
                self._now(),
                owner=self.node.node_id,
                queue_seq=row.queue_seq,
            )
        data = {
            **{k: str(v) for k, v in row.data.items()},
            "callback_id": str(row.id),
            "callback_phone": row.phone,
        }
        if row.application_id:
            data["application_id"] = row.application_id
        fields = {
            "group": row.group_id,
            "seq": str(row.queue_seq),
            "priority": str(row.priority),
            "number": "",
            "first_arrival": repr(row.arrived_at.timestamp()),
            "data": json.dumps(data, ensure_ascii=False),
            "history": "[]",
            "node": self.node.node_id,
        }
        try:
            # AcdNode.enqueue resumes a stored caller's place: this is how the kept place
            # reaches the core (and the other nodes, on Redis).
            await self.node.store.put_caller(call_id, fields)
        except StateUnavailable as exc:
            log.warning("callback %s: place not stored (%s); joins at the back", row.id, exc)
        await self.node.enqueue(call_id, row.group_id, priority=row.priority, data=data)

    async def _next_offer(self, call_id: str) -> Offer | None:
        picked = await self.node.wait_for_operator(call_id)
        return picked if isinstance(picked, Offer) else None

    async def _leave_queue(self, call_id: str) -> None:
        caller = self.node.acd.callers.get(call_id)
        if caller is None:
            return
        if caller.state == "talking":
            await self._release(call_id, caller.operator or "")
        else:
            await self.node.abandon(call_id)  # a ringing operator goes back to ready

    async def _release(self, call_id: str, op_id: str) -> None:
        """The operator talked to nobody: free them at once (no wrap-up to do)."""
        await self.node.end_call(call_id)
        if op_id:
            await self.node.wrap_up_done(op_id)

    async def _attempt(self, row: Callback, call_id: str, offer: Offer) -> str | None:
        """One try with a reserved operator. Returns None to try the next operator, or what
        became of the callback ("talking", "done")."""
        if not await self._move(row, (S.RESERVED,), S.DIALING, operator=offer.operator_id):
            await self.node.abandon(call_id)  # cancelled meanwhile: the operator is free again
            return "done"
        group = self.node.acd.groups[row.group_id]
        operator_leg = await self._originator.call(
            f"cb{row.id}-op",
            self._operator_headers(row),
            max(1.0, group.ring_seconds - 1.0),  # end before the ACD's own ring timer
        )
        operator_leg = with_channel(operator_leg, offer.device)
        if not operator_leg.answered:
            return await self._operator_missed(row, call_id, operator_leg)
        try:
            await self.node.answer(call_id)
        except AcdError:  # the ring timer won the race: the ACD already moved on
            await self._originator.hang_up(operator_leg.channel)
            await self._move(row, (S.DIALING,), S.RESERVED, operator=None)
            return None
        # Follow the operator leg from now on: they may hang up while the citizen's phone rings.
        leg = _OperatorLeg(call_id, row.id)
        key = leg_key(operator_leg)
        self._operator_legs[key] = leg
        try:
            caller_leg = await self._originator.call(
                f"cb{row.id}-caller", self._caller_headers(row), self.settings.caller_ring_seconds
            )
        except asyncio.CancelledError:
            self._operator_legs.pop(key, None)
            raise
        if leg.gone.is_set():
            return await self._operator_left(row, call_id, offer.operator_id, caller_leg)
        if caller_leg.answered:
            # no await since the check above: from here a Hangup ends the talk
            leg.connected, leg.connected_at = True, self._now()
            await self._move(
                row,
                (S.DIALING,),
                S.CONNECTED,
                last_result="answered",
                connected_at=leg.connected_at,
            )
            log.info("callback %s connected to operator %s", row.id, offer.operator_id)
            return "talking"
        self._operator_legs.pop(key, None)
        await self._originator.hang_up(operator_leg.channel)  # best effort if AMI is down
        await self._release(call_id, offer.operator_id)
        if caller_leg.result.startswith("ami_error"):  # not placed: not the citizen's
            await self._retry_later(row, (S.DIALING,), caller_leg.result)
        elif is_uncertain(caller_leg.result):
            # counted; the next try waits until whatever Asterisk placed stopped ringing
            ring_out = self.settings.caller_ring_seconds + self.settings.response_grace_seconds
            await self._retry_or_fail(row, caller_leg.result, after=ring_out)
        else:
            await self._retry_or_fail(row, caller_leg.result)
        return "done"

    async def _operator_left(
        self, row: Callback, call_id: str, op_id: str, caller_leg: OriginateOutcome
    ) -> str:
        """The operator hung up before the citizen answered. The conversation never began:
        the operator is ready again at once, and the citizen is called again soon, the attempt
        not counted against them (their leg, if it answered, was ended by its dialplan; the
        Hangup here is for a PBX without that guard)."""
        if caller_leg.answered:
            await self._originator.hang_up(caller_leg.channel)
        await self._release(call_id, op_id)
        log.warning("callback %s: operator %s hung up before the citizen answered", row.id, op_id)
        await self._retry_later(row, (S.DIALING,), "operator_left")
        return "done"

    async def _operator_missed(
        self, row: Callback, call_id: str, leg: OriginateOutcome
    ) -> str | None:
        if leg.result.startswith("ami_error") or is_uncertain(leg.result):
            # Not the operator's fault: free them, and try the callback again later (an
            # uncertain leg keeps its result: the next try first checks it is gone).
            await self.node.abandon(call_id)
            await self._retry_later(row, (S.DIALING,), leg.result)
            return "done"
        # As for a live call: the operator is paused "no answer", the callback stays first.
        await self.node.no_answer(call_id)
        await self._move(
            row, (S.DIALING,), S.RESERVED, operator=None, last_result=f"operator_{leg.result}"
        )
        return None

    async def _retry_or_fail(self, row: Callback, result: str, *, after: float = 0.0) -> None:
        """A call the citizen did not take (or may have): counted; back to pending after the
        back-off (plus `after` seconds), or failed after ``max_attempts``."""
        attempts = row.attempts + 1
        if attempts >= self.settings.max_attempts:
            await self._move(
                row, (S.DIALING,), S.FAILED, attempts=attempts, last_result=result, node=None
            )
            log.info("callback %s failed after %s attempts (%s)", row.id, attempts, result)
            return
        wait = after + self.settings.retry_seconds * self.settings.retry_backoff ** (attempts - 1)
        await self._move(
            row,
            (S.DIALING,),
            S.PENDING,
            attempts=attempts,
            last_result=result,
            node=None,
            operator=None,
            next_attempt_at=self._now() + timedelta(seconds=wait),
        )

    async def _retry_later(
        self, row: Callback, expect: tuple[CallbackState, ...], result: str
    ) -> None:
        """Back to pending, off this node and operator, tried again after `retry_seconds`:
        for a failure that was not the citizen's, so the attempt does not count."""
        await self._move(
            row,
            expect,
            S.PENDING,
            node=None,
            operator=None,
            last_result=result,
            next_attempt_at=self._now() + timedelta(seconds=self.settings.retry_seconds),
        )

    async def _move(
        self, row: Callback, expect: tuple[CallbackState, ...], state: CallbackState, **values: Any
    ) -> bool:
        moved = await self.store.move(
            row.id,
            tuple(s.value for s in expect),
            state.value,
            self._now(),
            owner=self.node.node_id,  # a row taken back after a lost lease is no longer ours
            **values,
        )
        if moved:
            row.state = state.value
            for key, value in values.items():
                setattr(row, key, value)
        return moved

    def _variables(self, row: Callback) -> list[tuple[str, str]]:
        return [
            ("Variable", f"CALLBACK_ID={row.id}"),
            ("Variable", f"CALLBACK_BRIDGE={bridge_name(row.id)}"),
        ]

    def _operator_headers(self, row: Callback) -> list[tuple[str, str]]:
        assert row.operator is not None
        device = self.node.acd.operators[row.operator].spec.device
        return [
            ("Channel", device),
            ("Context", self.settings.operator_context),
            ("Exten", "s"),
            ("Priority", "1"),
            ("CallerID", f'"Обратный звонок" <{row.phone}>'),
            *self._variables(row),
        ]

    def _caller_headers(self, row: Callback) -> list[tuple[str, str]]:
        return [
            ("Channel", self.settings.caller_channel.format(phone=row.phone)),
            ("Context", self.settings.caller_context),
            ("Exten", "s"),
            ("Priority", "1"),
            ("CallerID", f"<{self.settings.caller_id}>"),
            *self._variables(row),
        ]

    async def _on_hangup(self, event: AmiMessage) -> None:
        """An operator leg of a callback hung up: the conversation is over, or, during the
        citizen's ring, never began (`_attempt` sees ``gone`` and cleans up)."""
        leg = self._operator_legs.pop(event.get("Uniqueid") or "", None)
        if leg is None:
            leg = self._operator_legs.pop(event.get("Channel") or "", None)
        if leg is None:
            return
        if not leg.connected:
            leg.gone.set()
            return
        caller = self.node.acd.callers.get(leg.call_id)
        if caller is not None and caller.state == "talking":
            await self.node.end_call(leg.call_id)  # the operator goes into wrap-up as usual
        await self._completed(leg)

    async def _completed(self, leg: _OperatorLeg) -> None:
        """The conversation is over (the citizen's leg ends with the operator's: the
        conference ends when either leaves): a final state, with how long they talked. From
        dialing too: the Hangup can beat the write of ``connected``."""
        now = self._now()
        done = await self.store.move(
            leg.callback_id,
            (S.DIALING.value, S.CONNECTED.value),
            S.COMPLETED.value,
            now,
            last_result="completed",
            connected_at=leg.connected_at,
            ended_at=now,
            node=None,
            lease_until=None,
        )
        if done:
            log.info("callback %s completed", leg.callback_id)


@dataclass
class _OperatorLeg:
    """An answered operator leg of a callback, followed until its Hangup."""

    call_id: str
    callback_id: int
    connected: bool = False  # the citizen answered too
    connected_at: datetime | None = None
    gone: asyncio.Event = field(default_factory=asyncio.Event)


def leg_key(leg: OriginateOutcome) -> str:
    """How a Hangup event names the leg: its uniqueid, or its channel if Asterisk gave none."""
    if leg.uniqueid and leg.uniqueid != "<unknown>":
        return leg.uniqueid
    return leg.channel


def with_channel(outcome: OriginateOutcome, device: str) -> OriginateOutcome:
    """Asterisk names the answered channel; keep the device if it did not."""
    if outcome.channel:
        return outcome
    return OriginateOutcome(outcome.answered, outcome.result, device, outcome.uniqueid)
