"""``menu``: a prompt, then one key chooses where to go.

    main-menu:
      kind: menu
      prompts: [hotline/general-main-menu]
      options: {"1": services, "2": registration, "0": operator}
      timeout: 5            # seconds to wait for a key after the prompt
      retries: 3            # attempts before the fallback
      invalid: hotline/invalid-choice
      no_input: hotline/no-input      # optional
      fallback: operator

A caller who presses nothing or only wrong keys goes to `fallback` after `retries` attempts.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import ClassVar

from ivr.menu.fields import DTMF_KEYS, FieldError, Fields
from ivr.menu.model import Call, Location, Next, Step
from ivr.nodes.common import Cue, KeySteps, Prompts, asking_parts, play

DEFAULT_INVALID = "hotline/invalid-input"


@dataclass(frozen=True)
class MenuNode:
    kind: ClassVar[str] = "menu"
    id: str
    at: Location
    files: Prompts
    options: Mapping[str, tuple[str, Location]]
    timeout: float
    retries: int
    invalid: Prompts
    no_input: Prompts
    fallback: tuple[str, Location]
    _cues: tuple[Cue, ...] = field(init=False, repr=False, compare=False)
    _timeout_ms: int = field(init=False, repr=False, compare=False)
    _attempts: range = field(init=False, repr=False, compare=False)
    # The steps the node notes, made when the menu is loaded (see `KeySteps`).
    _inputs: KeySteps = field(init=False, repr=False, compare=False)
    _invalids: KeySteps = field(init=False, repr=False, compare=False)
    _timed_out: Step = field(init=False, repr=False, compare=False)
    _fell_back: Step = field(init=False, repr=False, compare=False)
    # The keys that choose an option (what a prompt lets the caller barge in with).
    keys: str = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        made = asking_parts(self.id, self.files, self.timeout, self.retries)
        made["_fell_back"] = Step("fallback", self.fallback[0], self.id)
        made["keys"] = "".join(self.options)
        for name, value in made.items():
            object.__setattr__(self, name, value)

    def targets(self) -> Iterable[tuple[str, Location]]:
        return (*self.options.values(), self.fallback)

    def prompts(self) -> Iterable[tuple[str, Location]]:
        return (*self.files, *self.invalid, *self.no_input)

    async def run(self, call: Call) -> Next:
        keys, channel, path, inputs = self.keys, call.channel, call.path, self._inputs
        for _ in self._attempts:
            if call.pending:  # a key pressed during an earlier prompt (the rest is dropped)
                digit, call.pending = call.pending[0], ""
                path.append(inputs[digit])
            else:  # ask (written out here: every command is awaited through each coroutine)
                digit = None
                for name, fixed, step in self._cues:
                    played = await channel.stream_file(name if fixed else call.expand(name), keys)
                    path.append(step)
                    if (digit := played.digit) is not None:
                        path.append(inputs[digit])
                        break
                if digit is None:
                    digit = await channel.wait_for_digit(self._timeout_ms)
                    if digit is not None:
                        path.append(inputs[digit])
            if digit is None:
                path.append(self._timed_out)
                await play(call, self.no_input)
                continue
            if (chosen := self.options.get(digit)) is not None:
                return chosen[0]
            path.append(self._invalids[digit])
            await play(call, self.invalid)
        path.append(self._fell_back)
        return self.fallback[0]


def parse(node_id: str, fields: Fields) -> MenuNode:
    options: dict[str, tuple[str, Location]] = {}
    for key, value in fields.mapping("options"):
        at = fields.loc(key)
        if len(key.value) != 1 or key.value not in DTMF_KEYS:
            raise FieldError(at, f"node '{node_id}': option '{key.value}' is not one key")
        if key.value in options:
            raise FieldError(at, f"node '{node_id}': option '{key.value}' is given twice")
        if not isinstance(value.value, str) or not value.value:
            raise FieldError(fields.loc(value), f"node '{node_id}': option needs a node id")
        options[key.value] = (value.value, fields.loc(value))
    if not options:
        raise fields.error("options", "needs at least one option")
    return MenuNode(
        id=node_id,
        at=fields.at,
        files=fields.prompts("prompts"),
        options=options,
        timeout=fields.number("timeout", 5.0, 1.0, 60.0),
        retries=fields.whole("retries", 3, 1, 10),
        invalid=fields.prompts("invalid", required=False) or ((DEFAULT_INVALID, fields.at),),
        no_input=fields.prompts("no_input", required=False),
        fallback=fields.target("fallback"),
    )
