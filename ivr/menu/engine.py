"""The engine: runs one call through one menu, node after node, until the call leaves it.

Guarantees a caller is never stuck: every node that waits for a key has retries and a fallback,
and the engine itself stops after `max_steps` nodes and sends the caller to the number's
operator group (the linter rejects loops with no exit; this is the net under it). A caller
who hangs up ends the run with ``caller_hangup``; nothing else is raised for a hang-up.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from datetime import datetime
from types import MappingProxyType
from typing import Any, NamedTuple

from hotline.agi.session import CallerHungUp
from hotline.logs import mask_personal
from ivr.menu.model import Call, Channel, End, Menu, ObservedPath, Services, Step
from ivr.menu.resume import RESUME_VARIABLE, WALK_ATTRIBUTE, Checkpoints, MenuWalk, Resume, walk_of
from ivr.metrics import MENU_STEP_LIMIT
from ivr.nodes.condition import hours_facts
from ivr.nodes.queue import enqueue

log = logging.getLogger(__name__)


class CallResult(NamedTuple):
    """How a call left its menu: the end, the path it took, what the caller entered, and
    what the call log records (`outcome_of`). A named tuple, made with no frame (a class
    with an ``__init__`` is called from C in Python 3.11)."""

    end: End
    path: list[Step]
    variables: dict[str, str]
    queued: tuple[str, str] | None
    # A field rather than a property: Python 3.11 reads a property through a call from C,
    # and the entry reads it for every call.
    outcome: str


_new_result = tuple.__new__


def outcome_of(end: End, queued: tuple[str, str] | None) -> str:
    """What the call log records: the queue's outcome if the caller reached one (a rating
    after the operator does not change it), else the end's."""
    if end.kind != "queue" and queued is not None:
        return queued[1]
    return end.outcome


class Engine:
    """Runs menus; one engine serves every call (it keeps no per-call state)."""

    def __init__(self, max_steps: int = 200) -> None:
        self.max_steps = max_steps

    async def run(
        self,
        channel: Channel,
        menu: Menu,
        services: Services,
        now: datetime,
        *,
        caller_id: str = "",
        observer: Callable[[Step], None] | None = None,
        resume: Resume | None = None,
        checkpoints: bool = False,
    ) -> CallResult:
        """Run the call through `menu` from its start, or from `resume` (a handed-back call:
        its variables restored, its greeting not played again); with `checkpoints`, the call
        leaves its checkpoints on the channel as it goes (``HOTLINE_RESUME``,
        `ivr.menu.resume`), where a handed-back call's next controller reads them."""
        # Whether steps are logged is asked once a call (the level is set when logging is
        # configured, before any call); they are logged as the call notes them.
        logged = log.isEnabledFor(logging.INFO)  # and DEBUG only if INFO is
        if logged and log.isEnabledFor(logging.DEBUG):
            observer = _logging_steps(observer)
        path = [] if observer is None else ObservedPath(observer)
        call = Call(channel, menu, services, now, caller_id, path)  # (no keywords: no dict)
        if resume is not None:
            call.variables.update(resume.variables)
            call.personal.update(resume.personal)
            call.queued = resume.queued
            call.note("resume", resume.node)
        # (`walk_of` written out: the library works every menu's walk out as it loads it)
        walk = menu.__dict__.get(WALK_ATTRIBUTE) or walk_of(menu)
        _fill_system_variables(call, walk)
        plan = walk.plan
        node_id = menu.start if resume is None else resume.node
        # Nothing to carry before the call has a state of its own: a fresh call's greeting
        # is not a checkpoint (a caller cut off during it hears it again).
        # (set on the channel by the engine itself: no function made per call to tell them)
        rule = Checkpoints(call, None, resume, walk) if checkpoints else None
        # Whether a node run since the checkpoints were last asked may have changed the
        # call's state; a fresh call's is the fresh checkpoint's, a resumed one's is not known.
        changed = resume is not None
        # The walk is written here rather than in a method of its own: every command a node
        # sends is awaited through each coroutine between it and the session, twice.
        try:
            for _ in range(self.max_steps):
                call.node = node_id
                run, asks, changes = plan[node_id]
                # The checkpoints are asked only where one may be due: on entering a node that
                # asks or queues, or once the state may have changed.
                if changed or asks:
                    if rule is not None and (text := rule.due(node_id, changed)):
                        await channel.set_variable(RESUME_VARIABLE, text)
                changed = changes
                nxt = run(call)
                # A node's answer is a str or an End, or an awaitable of one: `type(...) is`
                # tells them apart at the least cost (3.11 runs `type(x)` with no call, where
                # `x.__class__` is looked up anew whenever its type differs from the last).
                if type(nxt) is not str:
                    if type(nxt) is not End:  # a node that waits for the caller or a service
                        # (no `typing.cast` here: `Awaitable[Next]` is built anew at every node)
                        nxt = await nxt  # type: ignore[misc]
                    if type(nxt) is End:  # (not isinstance, which mypy would need: a call)
                        end = nxt
                        break
                node_id = nxt  # type: ignore[assignment]
            else:
                end = await self._step_limit(call)
        except CallerHungUp:
            call.note("caller-hangup")
            end = End("caller_hangup", outcome="hangup")
        ends = walk.ends  # MENU_ENDS.count(menu.number, end.kind), with no call
        ends[end.kind] = ends.get(end.kind, 0) + 1
        queued = call.queued
        outcome = outcome_of(end, queued)
        result = _new_result(CallResult, (end, call.path, call.variables, queued, outcome))
        if logged:
            log.info(
                "menu finished",
                extra={"dialled": menu.number, "end": str(end), "steps": len(call.path)},
            )
        return result

    async def _step_limit(self, call: Call) -> End:
        menu = call.menu
        MENU_STEP_LIMIT.labels(menu.number).inc()
        log.warning("menu step limit reached", extra={"dialled": menu.number, "node": call.node})
        call.note("step-limit", f"{self.max_steps} steps: to group {menu.group}")
        # The wait's own outcome: with the ACD serving the group, QUEUESTATUS says nothing.
        outcome = await enqueue(call, menu.group, 0, None)
        call.queued = (menu.group, outcome)
        return End("queue", menu.group, outcome)


def _fill_system_variables(call: Call, walk: MenuWalk) -> None:
    """What menus may say (`Call.system`) or test (`Call.facts`, for condition nodes)
    besides the caller's entries: the number dialled and the opening hours.

    The menu's walk holds the last opening-hours status seen with its facts and system
    variables (`MenuWalk.hours_held`): the schedule hands every call of the same stretch of
    the day the same status (`hotline.hours.OpenHours`), so they are worked out once per
    stretch. The status is held, so its id cannot name another one."""
    hours = call.services.hours
    # `Call.hours` written out: it is asked here first, once per call
    status = call.hours_status = None if hours is None else hours.status(call.now)
    held = walk.hours_held
    if held is None or held[0] is not status:
        number = call.menu.number
        held = walk.hours_held = (status, hours_facts(status), _system_variables(number, status))
    _, call.facts, call.system = held


def _system_variables(number: str, status: Any) -> Mapping[str, str]:
    variables = {"did": number}
    if status is not None:
        if status.opens_at is not None:
            variables["opens_at"] = status.opens_at.isoformat()
            variables["opens_date"] = status.opens_at.date().isoformat()
        if status.closes_at is not None:
            variables["closes_at"] = status.closes_at.isoformat()
    return MappingProxyType(variables)


def _logging_steps(observer: Callable[[Step], None] | None) -> Callable[[Step], None]:
    """`observer`, and each step logged (masked: a step may hold what the caller typed)."""

    def logged(step: Step) -> None:
        log.debug("menu step", extra={"step": mask_personal(str(step))})
        if observer is not None:
            observer(step)

    return logged
