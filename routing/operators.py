"""Operators: who they are (from ``dialplans/operators.yaml``) and the states they move through.

File layout::

    operators:
      ivanova:                        # login id: latin letters, digits, '_', '-' or '.'
        name: Иванова Анна            # shown to supervisors
        device: PJSIP/1001            # the softphone the ACD dials: PJSIP/<seat> only
        skills: {general: 5, payments: 3}   # group id -> level 1..10, higher is better

States and the moves between them (anything else is refused with `InvalidTransition`):

    logged_out -> ready | paused            ready    -> ringing | paused | logged_out
    ringing    -> talking | paused | ready  talking  -> wrap_up
    wrap_up    -> ready | paused | logged_out   paused -> ready | logged_out

``ringing -> paused`` is the "no answer" pause; ``ringing -> ready`` is a caller who hung up
while the phone rang.

Devices: the ACD dials an operator's device, so only an operator's own PJSIP seat is accepted
(`is_seat_device`): ``PJSIP/<seat>``, the seat 1-40 latin letters, digits, ``_`` or ``-``.
The seats Asterisk knows are generated from this very file (`routing.asterisk_files`), so
there is no other list to be a member of; the pattern leaves out everything Asterisk's Dial
would read as more than one seat: another technology (``Local/...``), a host or context
(``@``), a second device (``&``), an option (``,``, ``(``) or a path (``/``).
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass
from pathlib import Path

from hotline.yamldoc import YamlDoc

__all__ = [
    "MAX_LEVEL",
    "TRANSITIONS",
    "InvalidTransition",
    "OperatorSpec",
    "OperatorState",
    "check_transition",
    "is_seat_device",
    "load_operators",
    "parse_operators",
]

MAX_LEVEL = 10
_ID = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,62}$")
_SEAT_DEVICE = re.compile(r"^PJSIP/[A-Za-z0-9][A-Za-z0-9_-]{0,39}$")


def is_seat_device(device: str) -> bool:
    """True for ``PJSIP/<seat>`` with a plain seat name (see the module's text)."""
    return _SEAT_DEVICE.fullmatch(device) is not None


class OperatorState(enum.StrEnum):
    LOGGED_OUT = "logged_out"
    READY = "ready"
    RINGING = "ringing"
    TALKING = "talking"
    WRAP_UP = "wrap_up"
    PAUSED = "paused"


S = OperatorState
TRANSITIONS: dict[OperatorState, frozenset[OperatorState]] = {
    S.LOGGED_OUT: frozenset({S.READY, S.PAUSED}),
    S.READY: frozenset({S.RINGING, S.PAUSED, S.LOGGED_OUT}),
    S.RINGING: frozenset({S.TALKING, S.PAUSED, S.READY}),
    S.TALKING: frozenset({S.WRAP_UP}),
    S.WRAP_UP: frozenset({S.READY, S.PAUSED, S.LOGGED_OUT}),
    S.PAUSED: frozenset({S.READY, S.LOGGED_OUT}),
}

# What an operator's screen shows when a move is refused, by the state they are in.
_REFUSAL_RU: dict[OperatorState, str] = {
    S.LOGGED_OUT: "Сначала войдите в систему.",
    S.READY: "Вы уже готовы принимать звонки.",
    S.RINGING: "У вас звонит телефон: ответьте на вызов.",
    S.TALKING: "Идёт разговор: это действие недоступно до его окончания.",
    S.WRAP_UP: "Завершите обработку предыдущего звонка.",
    S.PAUSED: "Вы на перерыве: сначала вернитесь в готовность.",
}


class InvalidTransition(ValueError):
    """A state change that the rules above do not allow; `message_ru` is for the screen."""

    def __init__(self, operator_id: str, current: OperatorState, wanted: OperatorState) -> None:
        super().__init__(f"operator {operator_id}: cannot go from {current} to {wanted}")
        self.current = current
        self.wanted = wanted
        self.message_ru = _REFUSAL_RU[current]


def check_transition(operator_id: str, current: OperatorState, wanted: OperatorState) -> None:
    if wanted not in TRANSITIONS[current]:
        raise InvalidTransition(operator_id, current, wanted)


@dataclass(frozen=True)
class OperatorSpec:
    """An operator as configured: identity, softphone and skills (group id -> level)."""

    id: str
    name: str
    device: str
    skills: dict[str, int]


def load_operators(path: str | Path, group_ids: set[str] | None = None) -> dict[str, OperatorSpec]:
    """Operators by id; with `group_ids`, every skill must name a known group."""
    return parse_operators(YamlDoc(path), group_ids)


def parse_operators(doc: YamlDoc, group_ids: set[str] | None = None) -> dict[str, OperatorSpec]:
    """`load_operators` on a parsed file (the admin API checks would-be files with it)."""
    top = doc.mapping(doc.root, "the operators file")
    doc.check_keys(top, {"operators"}, {"operators"}, doc.root)
    operators: dict[str, OperatorSpec] = {}
    devices: dict[str, str] = {}
    for op_id, (key, body) in doc.mapping(top["operators"][1], "operators").items():
        if not _ID.match(op_id):
            raise doc.error(key, f"operator id {op_id!r}: use a-z, 0-9, '_', '-' or '.'")
        fields = doc.mapping(body, f"operator {op_id!r}")
        doc.check_keys(fields, {"name", "device", "skills"}, {"name", "device", "skills"}, body)
        device_node = fields["device"][1]
        device = doc.text(device_node, "device")
        if not is_seat_device(device):
            raise doc.error(
                device_node,
                f"device {device!r} must look like PJSIP/1001: an operator's own PJSIP seat "
                "(latin letters, digits, '_' or '-' after PJSIP/, nothing else)",
            )
        if device in devices:
            raise doc.error(device_node, f"device {device} is already used by {devices[device]}")
        devices[device] = op_id
        skills: dict[str, int] = {}
        for skill, (skill_key, level_node) in doc.mapping(fields["skills"][1], "skills").items():
            if group_ids is not None and skill not in group_ids:
                raise doc.error(skill_key, f"skill {skill!r} is not a known group")
            skills[skill] = doc.integer(level_node, f"level of {skill}", low=1, high=MAX_LEVEL)
        if not skills:
            raise doc.error(fields["skills"][1], "an operator needs at least one skill")
        name = doc.line(fields["name"][1], "name")
        operators[op_id] = OperatorSpec(op_id, name, device, skills)
    return operators
