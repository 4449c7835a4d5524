"""``condition``: the first branch whose test holds decides; `otherwise` when none does.

    hours:
      kind: condition
      branches:
        - {when: surge, goto: main-menu}        # 24/7 surge mode switched by an admin
        - {when: holiday, goto: holiday-hours}
        - {when: closed, goto: after-hours}
        - {when: seen_before, goto: welcome-back}
        - {when: {variable: topic, equals: "payments"}, goto: payments}
      otherwise: main-menu

Tests: ``open``, ``closed``, ``holiday``, ``surge`` (from the opening hours, at the moment the
call runs), ``workday``/``saturday``/``sunday`` (the kind of day), ``seen_before`` (this caller
number is in the call log from an earlier call), ``{variable, equals}``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Iterable
from dataclasses import dataclass, field
from typing import Any, ClassVar

from yaml.nodes import MappingNode, ScalarNode

from ivr.menu.fields import FieldError, Fields
from ivr.menu.model import Call, Location, Next, Step

HOURS_TESTS = ("open", "closed", "holiday", "surge", "workday", "saturday", "sunday")
TESTS = (*HOURS_TESTS, "seen_before")


@dataclass(frozen=True)
class Test:
    name: str  # one of TESTS, or "variable"
    variable: str = ""
    equals: str = ""


@dataclass(frozen=True)
class Branch:
    test: Test
    goto: tuple[str, Location]
    at: Location


@dataclass(frozen=True)
class ConditionNode:
    kind: ClassVar[str] = "condition"
    id: str
    at: Location
    branches: tuple[Branch, ...]
    otherwise: tuple[str, Location]
    _programs: dict[frozenset[str], _Program] = field(init=False, repr=False, compare=False)
    _needs_hours: bool = field(init=False, repr=False, compare=False)

    def targets(self) -> Iterable[tuple[str, Location]]:
        return (*(b.goto for b in self.branches), self.otherwise)

    def prompts(self) -> Iterable[tuple[str, Location]]:
        return ()

    @property
    def uses_hours(self) -> Location | None:
        """Where the first branch that needs the opening hours is written, if any."""
        return next((b.at for b in self.branches if b.test.name in HOURS_TESTS), None)

    def __post_init__(self) -> None:
        # Worked out once, when the menu is loaded: the node's branches for each set of
        # opening-hours facts a day can have (`_Program`), and whether it needs the hours.
        # (A node that needs no hours has the same program for every set.)
        programs = {facts: _program(self, facts) for facts in _DAY_FACTS}
        object.__setattr__(self, "_programs", programs)
        object.__setattr__(self, "_needs_hours", self.uses_hours is not None)

    def run(self, call: Call) -> Next | Awaitable[Next]:
        """Decided at once, unless a `seen_before` test has a call log to ask: from that
        branch on the node waits for it (`_ask_from`)."""
        program = self._programs.get(call.facts)  # type: ignore[arg-type]  # None: not found
        if program is None:
            program = self._program_for(call)
        # (`__class__ is`: measured cheaper than `isinstance` when the step is not one)
        for step in program.steps:
            if step.__class__ is _ByValue:
                value = call.variables.get(step.variable)
                if value is None:  # not the menu's or the caller's: the engine's, or unset
                    value = call.system.get(step.variable, "")
                taken = step.gotos.get(value)
                if taken is None:
                    continue
                call.path.append(taken[1])
                return taken[0]
            if call.services.history is not None and call.caller_id:  # a `_SeenBefore`
                return self._ask_from(call, step.index)  # type: ignore[union-attr]
            # no call log, or no caller number: never seen before
        if program.noted is not None:
            call.path.append(program.noted)
        return program.goto

    def _program_for(self, call: Call) -> _Program:
        """The program of a call whose facts the engine did not fill in (a call it did not
        start), or of facts no usual day has (a schedule of another kind, in tests)."""
        facts = call.facts
        if facts is None:
            facts = hours_facts(call.hours()) if self._needs_hours else _NO_SCHEDULE
        program = self._programs.get(facts)
        if program is None:
            program = _program(self, facts)
            if len(self._programs) < _MAX_PROGRAMS:
                self._programs[facts] = program
        return program

    async def _ask_from(self, call: Call, start: int) -> Next:
        for branch in self.branches[start:]:
            test = branch.test
            passed = await seen_before(call) if test.name == "seen_before" else holds(call, test)
            if passed:
                call.note("branch", describe(test))
                return branch.goto[0]
        return self.otherwise[0]


async def seen_before(call: Call) -> bool:
    """Whether the caller's number is in the call log from an earlier call."""
    history = call.services.history
    if history is None or not call.caller_id:
        return False
    return await history.seen_before(call.caller_id, call.channel.call_id)


def holds(call: Call, test: Test) -> bool:
    """A test that needs no waiting: a variable's value, or the opening hours."""
    if test.name == "variable":
        return call.value(test.variable) == test.equals
    return test.name in hours_facts(call.hours())


# With no schedule the line is always open and every day a workday.
_NO_SCHEDULE = frozenset({"open", "workday"})
# The last opening-hours status seen and the hours tests that hold for it: every call of
# the same stretch of the day gets the same status (`hotline.hours.OpenHours`), so the tests
# are worked out once per stretch. The status is held, so its id cannot name another one.
_last_facts: tuple[Any, frozenset[str]] = (None, _NO_SCHEDULE)


def hours_facts(status: Any) -> frozenset[str]:
    """The hours tests that hold for `status` (None: no schedule): ``open`` or ``closed``,
    ``surge`` if on, and the kind of day (workday, saturday, sunday, holiday)."""
    global _last_facts
    if status is None:
        return _NO_SCHEDULE
    held, facts = _last_facts
    if held is status:
        return facts
    facts = frozenset({status.kind, "open" if status.open else "closed"})
    if status.surge:
        facts |= {"surge"}
    facts = _DAY_FACTS.get(facts, facts)
    _last_facts = (status, facts)
    return facts


# --- a node's branches with the opening hours already decided ------------------------------
#
# What a condition decides depends on the hours (the same all day for every call), the
# variables and the call log. So for each set of hours facts its branches are boiled down
# once: an hours test that fails is dropped, the first that holds ends the list (it is taken
# whenever reached), and tests of one variable in a row become one look-up of its value.
# A call then only looks up its variables and, if reached, asks the call log.


@dataclass(frozen=True, slots=True)
class _ByValue:
    """Tests of one variable in a row: its value picks the branch (the first written wins)."""

    variable: str
    gotos: dict[str, tuple[str, Step]]  # by value: (the node to go to, the step noted)


@dataclass(frozen=True, slots=True)
class _SeenBefore:
    """A `seen_before` test, the `index`-th branch: from there on the node waits."""

    index: int


@dataclass(frozen=True, slots=True)
class _Program:
    """A node's branches for one set of hours facts: the tests left to make as a call runs
    (`steps`, in order), then where the call goes when none of them decides: to the first
    hours test that holds, its step noted, else to `otherwise`, nothing noted."""

    steps: tuple[_ByValue | _SeenBefore, ...]
    goto: str
    noted: Step | None


_KINDS_OF_DAY = ("workday", "saturday", "sunday", "holiday")
# Every set of facts `hours_facts` gives for the schedules of `hotline.hours` (and none), by
# itself: `hours_facts` hands out these very sets, which a node's `_programs` then finds by
# identity rather than comparing their members.
_DAY_FACTS = {
    facts: facts
    for facts in {_NO_SCHEDULE}
    | {
        frozenset({kind, state, *surge})
        for kind in _KINDS_OF_DAY
        for state in ("open", "closed")
        for surge in ((), ("surge",))
    }
}
_MAX_PROGRAMS = 64


def _program(node: ConditionNode, facts: frozenset[str]) -> _Program:
    steps: list[_ByValue | _SeenBefore] = []
    for index, branch in enumerate(node.branches):
        test = branch.test
        taken = (branch.goto[0], Step("branch", describe(test), node.id))
        if test.name == "variable":
            last = steps[-1] if steps else None
            if isinstance(last, _ByValue) and last.variable == test.variable:
                last.gotos.setdefault(test.equals, taken)
            else:
                steps.append(_ByValue(test.variable, {test.equals: taken}))
        elif test.name == "seen_before":
            steps.append(_SeenBefore(index))
        elif test.name in facts:
            return _Program(tuple(steps), *taken)  # the branches after it are never reached
    return _Program(tuple(steps), node.otherwise[0], None)


def describe(test: Test) -> str:
    return f"{test.variable} = {test.equals}" if test.name == "variable" else test.name


def parse(node_id: str, fields: Fields) -> ConditionNode:
    branches = []
    for item in fields.sequence("branches"):
        if not isinstance(item, MappingNode):
            raise FieldError(fields.loc(item), f"node '{node_id}': a branch is {{when, goto}}")
        branch = Fields(fields.file, node_id, item, reserved=())
        test = _test(node_id, branch)
        branches.append(Branch(test=test, goto=branch.target("goto"), at=branch.at))
        branch.done()
    if not branches:
        raise fields.error("branches", "needs at least one branch")
    return ConditionNode(
        id=node_id, at=fields.at, branches=tuple(branches), otherwise=fields.target("otherwise")
    )


def _test(node_id: str, branch: Fields) -> Test:
    if not branch.has("when"):
        raise FieldError(branch.at, f"node '{node_id}': a branch needs 'when'")
    pairs = branch.mapping("when") if branch.is_mapping("when") else None
    if pairs is None:
        name = branch.text("when")
        if name not in TESTS:
            raise branch.error("when", f"unknown test '{name}' (known: {', '.join(TESTS)})")
        return Test(name)
    given = {str(k.value): v for k, v in pairs}
    variable, equals = given.get("variable"), given.get("equals")
    if set(given) != {"variable", "equals"} or not isinstance(variable, ScalarNode):
        raise branch.error("when", "a variable test is {variable: NAME, equals: VALUE}")
    if not isinstance(equals, ScalarNode):
        raise branch.error("when", "equals: expected a value")
    return Test("variable", str(variable.value), str(equals.value))
