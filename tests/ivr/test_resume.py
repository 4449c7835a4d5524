"""A handed-back caller resumes their menu (issue 10 item 1): on the simulated PBX running the
shipped [from-pstn], a controller stopped while the caller's application number is being
looked up; the next controller goes on from the lookup with the number the caller typed,
without greeting them again or asking for it again, and the operator gets it."""

from __future__ import annotations

import asyncio
import random
import re
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from datetime import datetime
from pathlib import Path

import pytest
from handback import GENERAL, HoldingAcd, Sink, call_log, place_call
from test_sim_dialplan import QueueLog

from hotline.agi import carry
from hotline.agi.router import Router
from hotline.agi.server import FastAgiServer
from hotline.store.db import CallLog
from ivr.entry import CallEntry
from ivr.menu.console import ConsoleChannel, ScriptedKeypad
from ivr.menu.engine import Engine
from ivr.menu.library import load_library
from ivr.menu.loader import parse_menu
from ivr.menu.model import Call, LookupResult, Services
from ivr.menu.resume import (
    MAX_CARRIED,
    RESUME_VARIABLE,
    SAFE_KINDS,
    STATE_KEEPING_KINDS,
    Checkpoints,
    Resume,
    resume_from,
)

__all__ = ["call_log"]  # a fixture

MENU = f"""
number: "{GENERAL}"
title: test
group: general
start: welcome
nodes:
  welcome: {{kind: play, prompts: [hotline/greeting-general], next: ask}}
  ask:
    kind: collect
    prompts: [hotline/enter-application]
    store: application
    length: 1
    timeout: 5
    next: check
    fallback: operator
  check:
    kind: lookup
    path: "/applications/${{application}}"
    found: operator
    not_found: operator
    failure: operator
  operator: {{kind: queue, group: general, data: [application]}}
"""


class StatusService:
    """The application-status service: answers at once, or never (the controller stops
    while the caller waits for it)."""

    def __init__(self, *, answers: bool) -> None:
        self.answers = answers
        self.asked: list[str] = []
        self.waiting = asyncio.Event()

    async def get(self, path: str, seconds: float) -> LookupResult:
        self.asked.append(path)
        self.waiting.set()
        if not self.answers:
            await asyncio.Event().wait()
        return LookupResult("found", {"status": "ok"})


@asynccontextmanager
async def menu_controller(
    tmp_path: Path, log: CallLog, acd: HoldingAcd, status: StatusService, port: int = 0
) -> AsyncIterator[FastAgiServer]:
    (tmp_path / f"{GENERAL}.yaml").write_text(MENU)
    library, problems = load_library(tmp_path, Services(queue=acd, status=status), GENERAL)
    assert problems == []
    router = Router()
    router.add("hotline", CallEntry(log, "test-node", library=library, queue=acd))
    server = FastAgiServer(router, host="127.0.0.1", port=port)
    await server.start()
    try:
        yield server
    finally:
        server.close()


async def test_a_caller_handed_back_mid_menu_resumes_without_the_greeting_or_typing_again(
    tmp_path: Path, call_log: CallLog
) -> None:
    sink, queues = Sink(), QueueLog()
    first_status, acd = StatusService(answers=False), HoldingAcd(answer_at_once=True)
    async with menu_controller(tmp_path, call_log, acd, first_status) as first:
        port = first.port
        call = asyncio.create_task(place_call(port, sink, queues, menu_keys="7"))
        await asyncio.wait_for(first_status.waiting.wait(), 10)
        await asyncio.wait_for(first.drain(30), 5)
    assert not call.done()
    second_status = StatusService(answers=True)
    async with menu_controller(tmp_path, call_log, acd, second_status, port):
        outcome = await asyncio.wait_for(call, 30)
    assert first_status.asked == ["/applications/7"]
    assert second_status.asked == ["/applications/7"]  # the number the caller typed before
    assert outcome.prompts.count("hotline/greeting-general") == 1  # not greeted again
    assert outcome.prompts.count("hotline/enter-application") == 1  # not asked again
    # the operator's screen has it (beside the line and menu path the pop shows)
    assert [entry["application"] for entry in acd.data] == ["7"]
    assert sink.trail()[-1] == ("from-pstn", "Hangup", "")
    record = await call_log.get(sink.call_id)
    assert record is not None and record.outcome == "answered"


@pytest.mark.parametrize(
    ("carried", "why"),
    [
        ("v=2&menu=88001000001&node=check&var.application=7", "a newer controller's format"),
        ("menu=88001000001&node=check", "no format named"),
        ("v=1&menu=88002000002&node=check&var.application=7", "another number's menu"),
        ("v=1&menu=88001000001&node=gone&var.application=7", "a node the menu no longer has"),
        ("%%%&&=", "not a carried value"),
    ],
)
async def test_a_checkpoint_this_controller_cannot_use_starts_the_call_over(
    carried: str, why: str
) -> None:
    menu = parse_menu(MENU, "test.yaml")
    assert resume_from(carry.decode(carried), menu) is None, why


def test_a_checkpoint_never_brings_back_the_engines_own_variables() -> None:
    # the number dialled and the opening times are filled in afresh for each call: a
    # checkpoint naming them (none is written so) does not stand in for them
    menu = parse_menu(MENU, "test.yaml")
    carried = f"v=1&menu={GENERAL}&node=check&var.did=1&var.opens_at=x&var.application=7"
    back = resume_from(carry.decode(carried), menu)
    assert back is not None and back.variables == {"application": "7"}


async def test_checkpoints_follow_the_safe_node_rule() -> None:
    menu = parse_menu(MENU, "test.yaml")
    seen: list[Resume] = []

    class Channel(ConsoleChannel):
        async def set_variable(self, name: str, value: str) -> None:
            if name == RESUME_VARIABLE:  # what HOTLINE_RESUME is set to, read back
                here = resume_from(carry.decode(value), menu)
                assert here is not None, value
                seen.append(here)
            await super().set_variable(name, value)

    channel = Channel(ScriptedKeypad(["7"]))
    services = Services(queue=HoldingAcd(answer_at_once=True), status=StatusService(answers=True))
    await Engine().run(channel, menu, services, datetime(2026, 12, 1), checkpoints=True)
    # the greeting is no checkpoint; the question is; after the answer, the node it leads
    # to; then the queue; and once the queue is over, where the call goes on from there
    assert [here.node for here in seen] == ["ask", "check", "operator"]
    assert seen[1].variables == {"application": "7"} and seen[1].personal == {"application"}
    assert "status_status" in seen[2].variables  # the lookup's answer goes with the call


def test_a_checkpoint_too_long_for_one_agi_line_drops_the_longest_answers_not_entries() -> None:
    menu = parse_menu(MENU, "test.yaml")
    here = Resume(
        "check",
        {"application": "7", "status_text": "Заявление " * 60, "topic": "оплата"},
        frozenset({"application"}),
    )
    carried = carry.encode(here.fields(menu))
    assert len(carried) <= MAX_CARRIED  # res_agi reads 2 KiB a command line
    back = resume_from(carry.decode(carried), menu)
    assert back is not None and back.variables == {"application": "7", "topic": "оплата"}
    assert back.personal == {"application"}


def told_to(told: list[str]) -> Callable[[str], Awaitable[None]]:
    async def tell(text: str) -> None:
        told.append(text)

    return tell


def reference_rule(call: Call, node_id: str, last: Resume) -> Resume | None:
    """The safe-node rule taken word for word from the module's description, with the call's
    state taken apart at every node: the checkpoint to leave at `node_id`, or None."""
    here = Resume.of(call, node_id)
    if last.node == node_id and here.same_state(last):
        return None
    if call.menu.nodes[node_id].kind in SAFE_KINDS or not here.same_state(last):
        return here
    return None


async def test_checkpoints_kept_between_nodes_are_those_the_rule_gives_at_every_node() -> None:
    # A call wandering a menu while its state changes now and then (an entry, the same
    # entry again, a personal mark alone, the queue's outcome, a system variable): the
    # checkpoints left, and the text each carries, are those of the rule applied afresh.
    # a set node's texts are encoded once for all calls: a caller's entry or a personal
    # variable with the same text must come out the same
    marked = MENU.replace("general], next: ask}", "general], next: mark}") + (
        '  mark: {kind: set, values: {topic: "оплата вопрос", x: "7"}, next: ask}\n'
    )
    menu = parse_menu(marked, "test.yaml")
    nodes = list(menu.nodes)
    changes: list[Callable[[Call], None]] = [
        lambda call: call.variables.update(application="7"),
        lambda call: call.variables.update(x="7"),
        lambda call: call.personal.add("x"),
        lambda call: call.variables.update(application="8", topic="оплата вопрос"),
        lambda call: call.variables.update(topic="оплата вопрос"),  # the same value again
        lambda call: call.personal.add("topic"),
        lambda call: setattr(call, "queued", ("general", "answered")),
        lambda call: call.variables.update(opens_at="2026-12-01T08:00:00+03:00"),
        lambda call: call.variables.pop("application", None),
    ]
    picks = random.Random(14)
    for _ in range(200):
        call = Call(ConsoleChannel(ScriptedKeypad([])), menu, Services(), datetime(2026, 12, 1))
        call.variables["did"] = "1000"
        if picks.random() < 0.3:  # the caller's state is not the fresh one the rule starts from
            picks.choice(changes)(call)
        told: list[str] = []
        expected: list[Resume] = []
        last = Resume(menu.start, {}, frozenset())
        checkpoints = Checkpoints(call, told_to(told), last)
        for _ in range(12):
            if picks.random() < 0.4:
                picks.choice(changes)(call)
            node_id = picks.choice(nodes)
            here = reference_rule(call, node_id, last)
            if here is not None:
                expected.append(here)
                last = here
            await checkpoints.reach(node_id)
        # the text each carries names its node, variables, personal marks and queue outcome
        assert told == [carry.encode(here.fields(menu)) for here in expected]


async def test_a_personal_mark_on_an_unchanged_entry_goes_in_the_next_checkpoint() -> None:
    # The caller types the very value the menu had written there: the variables are as they
    # were, only the mark is new; the next checkpoint carries the mark all the same (a
    # controller resuming the call masks that entry in its logs).
    menu = parse_menu(MENU, "test.yaml")
    call = Call(ConsoleChannel(ScriptedKeypad([])), menu, Services(), datetime(2026, 12, 1))
    told: list[str] = []
    checkpoints = Checkpoints(call, told_to(told), Resume(menu.start, {}, frozenset()))
    call.variables["application"] = "7"
    await checkpoints.reach("check")
    call.personal.add("application")
    await checkpoints.reach("ask")
    back = resume_from(carry.decode(told[-1]), menu)
    assert back is not None and back.node == "ask"
    assert back.variables == {"application": "7"} and back.personal == {"application"}


# What changes a call's state, as node code writes it.
STATE_WRITES = re.compile(
    r"variables\[[^\]]+\]\s*=|variables\.(update|pop|setdefault)\(|personal\.(add|update)\("
    r"|\.queued\s*="
)


def test_the_kinds_said_to_keep_the_state_never_change_it() -> None:
    # The engine takes the call's state apart again only after a node of another kind: a
    # kind that changed it unannounced would leave its change without a checkpoint.
    nodes = Path(__file__).resolve().parents[2] / "ivr" / "nodes"
    changing = {path.stem for path in nodes.glob("*.py") if STATE_WRITES.search(path.read_text())}
    assert changing >= {"set", "collect", "lookup", "queue", "rating"}  # the pattern finds them
    assert not changing & STATE_KEEPING_KINDS


ORDERS = parse_menu(
    'number: "1000"\ngroup: general\nstart: pick\nnodes:\n'
    "  pick: {kind: menu, prompts: [hotline/m], options: {'1': ab, '2': ba, '3': ac},"
    " fallback: ab}\n"
    "  ab: {kind: set, values: {a: '1', b: '2'}, next: done}\n"
    "  ba: {kind: set, values: {b: '2', a: '1'}, next: done}\n"
    "  ac: {kind: set, values: {a: '1', b: '3'}, next: done}\n"
    "  done: {kind: hangup}\n",
    "test.yaml",
)


async def test_a_call_carries_its_own_state_where_the_last_call_had_another() -> None:
    # Calls leaving the same checkpoint and entering the same node mostly bring the same
    # state there, and the engine looks that one up first (`StateTexts.after`): a call whose
    # state differs from the last call's, if only in the order of its variables, carries
    # its own all the same.
    menu = ORDERS

    async def carried_at_done(key: str) -> str:
        told: list[str] = []

        class Channel(ConsoleChannel):
            async def set_variable(self, name: str, value: str) -> None:
                if name == RESUME_VARIABLE:
                    told.append(value)
                await super().set_variable(name, value)

        channel = Channel(ScriptedKeypad([key]))
        await Engine().run(channel, menu, Services(), datetime(2026, 12, 1), checkpoints=True)
        return told[-1]

    def written(*variables: tuple[str, str]) -> str:
        return carry.encode(
            {"menu": "1000", "node": "done"} | {f"var.{k}": v for k, v in variables}
        )

    states = {
        "1": (("a", "1"), ("b", "2")),
        "2": (("b", "2"), ("a", "1")),
        "3": (("a", "1"), ("b", "3")),
    }
    # each state first met, then each right after each other ("2": the same values as "1" in
    # another order; "3": another value)
    for key in ["1", "2", "3", "1", "2", "1", "3", "1", "1", "2", "2", "3", "3", "2"]:
        assert await carried_at_done(key) == written(*states[key]), key


async def test_a_call_carries_its_own_queue_outcome_where_the_last_call_had_another() -> None:
    # as above, the state differing from the last call's at that node in its queue outcome
    for queued in [None, ("general", "answered"), None, None, ("general", "timeout")] * 2:
        call = Call(ConsoleChannel(ScriptedKeypad([])), ORDERS, Services(), datetime(2026, 12, 1))
        told: list[str] = []
        checkpoints = Checkpoints(call, told_to(told), None)  # a fresh call's
        call.variables.update(a="1", b="2")
        call.queued = queued
        await checkpoints.reach("done")
        expected = Resume("done", {"a": "1", "b": "2"}, frozenset(), queued)
        assert told == [carry.encode(expected.fields(ORDERS))], queued
