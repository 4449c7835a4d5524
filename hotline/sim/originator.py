"""A simulated `Originator` for AMI Originate: the called phones answer, ring out or are busy as
a test or scenario scripts them, and an answered call hangs up after ``talk_seconds``.

Outcomes are scripted per dial string fragment (a phone number or a device such as
``PJSIP/o1``): each Originate whose channel contains the fragment takes the next outcome of its
list; when the list is used up (or no fragment matches) ``default`` applies. The outcomes and
the Reason codes Asterisk 22 puts in ``OriginateResponse``:

    answer     4  (the callee picked up)
    no_answer  3  (rang until the Originate's Timeout)
    busy       5
    congestion 8
    fail       0  (the channel could not be created)

Every request is kept in ``calls`` in order, so a test can check who was dialled first.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Final, Protocol

from hotline.sim.ami_server import OriginateRequest, OriginateResult

__all__ = ["OUTCOME_REASONS", "ScriptedOriginator"]

OUTCOME_REASONS: Final[Mapping[str, int]] = {
    "answer": 4,
    "no_answer": 3,
    "busy": 5,
    "congestion": 8,
    "fail": 0,
}


class EventSink(Protocol):
    def emit(self, event: str, headers: list[tuple[str, str]]) -> None: ...


@dataclass
class ScriptedOriginator:
    """Places simulated outgoing calls; plug it into ``AmiServer(originator=...)``."""

    script: dict[str, list[str]] = field(default_factory=dict)
    default: str = "answer"
    talk_seconds: float | None = None  # None: the answered call never hangs up by itself
    ring_seconds: float = 0.0  # how long the phone rings before the outcome
    sink: EventSink | None = None  # where Hangup events go (the AmiServer)
    calls: list[OriginateRequest] = field(default_factory=list)
    _ids: Iterator[int] = field(default_factory=lambda: itertools.count(1))
    _tasks: set[asyncio.Task[None]] = field(default_factory=set)

    def __post_init__(self) -> None:
        for fragment, outcomes in self.script.items():
            unknown = [o for o in outcomes if o not in OUTCOME_REASONS]
            if unknown or self.default not in OUTCOME_REASONS:
                raise ValueError(f"unknown outcome(s) for {fragment!r}: {unknown or self.default}")

    def _outcome(self, channel: str) -> str:
        for fragment, outcomes in self.script.items():
            if fragment in channel and outcomes:
                return outcomes.pop(0)
        return self.default

    async def originate(self, request: OriginateRequest) -> OriginateResult:
        self.calls.append(request)
        outcome = self._outcome(request.channel)
        if self.ring_seconds:
            await asyncio.sleep(self.ring_seconds)
        if outcome != "answer":
            return OriginateResult(answered=False, reason=OUTCOME_REASONS[outcome])
        n = next(self._ids)
        uniqueid = f"1795600000.{n}"
        channel = f"{request.channel.split('@')[0]}-{n:08x}"
        if self.talk_seconds is not None and self.sink is not None:
            task = asyncio.ensure_future(self._hang_up_later(channel, uniqueid))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        return OriginateResult(answered=True, reason=4, channel=channel, uniqueid=uniqueid)

    async def _hang_up_later(self, channel: str, uniqueid: str) -> None:
        await asyncio.sleep(self.talk_seconds or 0.0)
        assert self.sink is not None
        self.sink.emit(
            "Hangup",
            [
                ("Channel", channel),
                ("Uniqueid", uniqueid),
                ("Cause", "16"),
                ("Cause-txt", "Normal Clearing"),
            ],
        )

    def dialled(self) -> list[str]:
        """The dial strings of every Originate so far, in order."""
        return [call.channel for call in self.calls]
