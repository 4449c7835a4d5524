"""The desk: what the controller pushes to the operators' open desktops, and the contact each
answered call opens.

* `ring(Ring)`: the ACD is about to ring an operator. The desk builds the screen pop (the
  caller's history read from the registry under the operator's name, so the audit log shows
  who saw it), remembers it by call id, and pushes it to that operator's open desktops. An
  earlier pop of the same call on another operator's screen is withdrawn.
* `answered(call_id)`: the operator picked up. The desk opens the call's contact in the
  registry (a number the caller will hear at the end) and pushes it.
* `operator_state(StateBar)`: the ACD moved the operator (the root forwards its
  operator listeners): pushed as a `state` event, and remembered so a desktop that connects
  later starts with it. The state bar is never polled.

Push is per operator, to every desktop they have open (`subscribe`). A desktop that does not
read its events (a frozen tab) loses its oldest ones rather than holding memory: the page
reloads its state on reconnect anyway.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import OrderedDict, defaultdict
from collections.abc import Coroutine, Iterator
from dataclasses import dataclass
from typing import Any, Final

from hotline.auth import Actor
from hotline.push import put_dropping_oldest, sse_frame
from hotline.validators import validate_phone
from workspace.model import Contact, ContactChannel, ContactDraft
from workspace.numbers import parse_contact_number
from workspace.pop import Pop, Ring, masked_entries
from workspace.registry import MENU, ContactRegistry
from workspace.store import REPEAT_WINDOW

log = logging.getLogger(__name__)

__all__ = ["Desk", "DeskEvent", "StateBar"]

_QUEUE_LIMIT: Final = 64
_REMEMBERED_POPS: Final = 5_000  # calls ringing at once on one node, with a wide margin


@dataclass(frozen=True)
class StateBar:
    """An operator's state for the state bar (the root builds it from the ACD's)."""

    operator_id: str
    state: str  # logged_out | ready | paused | ringing | talking | wrap_up
    pause_reason: str | None = None
    seconds_left: float | None = None  # the wrap-up countdown (or the ring's)

    def as_json(self) -> dict[str, Any]:
        left = None if self.seconds_left is None else max(0, round(self.seconds_left))
        return {"state": self.state, "pause_reason": self.pause_reason, "seconds_left": left}


@dataclass(frozen=True)
class DeskEvent:
    kind: str  # pop | pop_withdrawn | contact | state
    data: dict[str, Any]

    def sse(self) -> bytes:
        """The event as a server-sent event frame."""
        return sse_frame(self.kind, self.data)


class Desk:
    def __init__(self, registry: ContactRegistry) -> None:
        self._registry = registry
        self._streams: defaultdict[str, set[asyncio.Queue[DeskEvent]]] = defaultdict(set)
        self._pops: OrderedDict[str, Pop] = OrderedDict()
        self._work: dict[str, asyncio.Task[None]] = {}  # per call: the last step scheduled
        self._states: dict[str, StateBar] = {}  # per operator: the last state told

    def ring_soon(self, ring: Ring) -> None:
        """`ring` from code that must not wait (the ACD, on the caller's session)."""
        self._chain(ring.call_id, self._ring_quietly(ring))

    def answered_soon(self, call_id: str) -> None:
        """`answered` from code that must not wait; runs after that call's pop is built."""
        self._chain(call_id, self.answered(call_id))

    def _chain(self, call_id: str, step: Coroutine[Any, Any, None]) -> None:
        before = self._work.get(call_id)

        async def in_order() -> None:
            if before is not None:
                await asyncio.gather(before, return_exceptions=True)
            try:
                await step
            except Exception:  # the call goes on without its pop; the log says why
                log.exception("desk update failed", extra={"call": call_id})

        task = asyncio.create_task(in_order())
        self._work[call_id] = task
        task.add_done_callback(lambda done: self._forget_work(call_id, done))

    def _forget_work(self, call_id: str, task: asyncio.Task[None]) -> None:
        if self._work.get(call_id) is task:
            del self._work[call_id]

    async def _ring_quietly(self, ring: Ring) -> None:
        await self.ring(ring)

    async def idle(self) -> None:
        """Wait for every scheduled update (tests, and a clean stop)."""
        while self._work:
            await asyncio.gather(*self._work.values(), return_exceptions=True)

    @contextlib.contextmanager
    def subscribe(self, operator_id: str) -> Iterator[asyncio.Queue[DeskEvent]]:
        """A queue of this operator's events for as long as the desktop stays connected."""
        queue: asyncio.Queue[DeskEvent] = asyncio.Queue(_QUEUE_LIMIT)
        known = self._states.get(operator_id)
        if known is not None:  # the state bar starts right, without asking
            queue.put_nowait(DeskEvent("state", known.as_json()))
        self._streams[operator_id].add(queue)
        try:
            yield queue
        finally:
            self._streams[operator_id].discard(queue)
            if not self._streams[operator_id]:
                del self._streams[operator_id]

    def connected(self, operator_id: str) -> int:
        return len(self._streams.get(operator_id, ()))

    def publish(self, operator_id: str, event: DeskEvent) -> None:
        for queue in self._streams.get(operator_id, ()):
            put_dropping_oldest(queue, event)  # a desktop that stopped reading loses its oldest

    def operator_state(self, status: StateBar) -> None:
        """The ACD moved an operator: their open desktops' state bars follow at once."""
        self._states[status.operator_id] = status
        self.publish(status.operator_id, DeskEvent("state", status.as_json()))

    def pop_of(self, call_id: str) -> Pop | None:
        return self._pops.get(call_id)

    async def ring(self, ring: Ring) -> Pop:
        pop = await self._build(ring)
        earlier = self._pops.pop(ring.call_id, None)
        if earlier is not None and earlier.operator_id != ring.operator_id:
            self.publish(earlier.operator_id, DeskEvent("pop_withdrawn", {"call_id": ring.call_id}))
        self._pops[ring.call_id] = pop
        while len(self._pops) > _REMEMBERED_POPS:
            self._pops.popitem(last=False)
        self.publish(ring.operator_id, DeskEvent("pop", pop.as_json()))
        return pop

    async def _build(self, ring: Ring) -> Pop:
        entries = ring.entries
        application = entries.get("application") or None
        # +7..., 8... and 7... are one caller: history matches on the normalised form
        phone = validate_phone(ring.caller_phone).normalized or ring.caller_phone
        history: list[Contact] = []
        about = None
        # History is read (and audited as seen) only when a desktop is open to show it: an
        # operator on the phone alone sees nothing, and the call path stays light.
        if self.connected(ring.operator_id):
            history = await self._registry.history(
                phone=phone,
                application=application,
                actor=Actor(ring.operator_id, "operator"),
                source="pop",
            )
            about = await self._keyed_contact(entries.get("contact_number", ""), ring.operator_id)
        now = self._registry.now()
        return Pop(
            call_id=ring.call_id,
            operator_id=ring.operator_id,
            group=ring.group,
            line=entries.get("line", ""),
            caller_phone=phone,
            menu_path=entries.get("menu_path", ""),
            topic=entries.get("topic", ""),
            application_number=application,
            application_status=entries.get("status_status") or None,
            entries=masked_entries(entries),
            waited_seconds=max(0, round(ring.waited_seconds)),
            history=history,
            repeat=about is not None or any(now - c.opened_at < REPEAT_WINDOW for c in history),
            about=about,
        )

    async def _keyed_contact(self, printed: str, operator_id: str) -> Contact | None:
        number = parse_contact_number(printed) if printed else None
        if number is None:
            return None
        operator = Actor(operator_id, "operator")
        return await self._registry.view(number, actor=operator, source="pop")

    async def answered(self, call_id: str) -> None:
        """The operator picked up: open the call's contact and show its number."""
        pop = self._pops.pop(call_id, None)
        if pop is None:  # rung on another node, or before a restart: no pop to build on
            log.warning("answered call without a pop on this node", extra={"call": call_id})
            return
        draft = ContactDraft(
            channel=ContactChannel.CALL,
            line=pop.line,
            call_id=call_id,
            caller_phone=pop.caller_phone,
            application_number=pop.application_number,
            topic=pop.topic,
            group=pop.group,
            operator_id=pop.operator_id,
            waited_seconds=pop.waited_seconds,
        )
        contact = await self._registry.open(draft, actor=MENU, source="desk")
        event = {"call_id": call_id, "number": str(contact.number), "repeat": contact.repeat}
        self.publish(pop.operator_id, DeskEvent("contact", event))
