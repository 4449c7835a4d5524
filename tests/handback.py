"""What the hand-back tests share (tests/ivr/test_handback.py, test_resume.py and the
restart tests): a stand-in ACD that holds callers, the simulated PBX's event sink, placing one
call through the shipped [from-pstn], and a call log in the test's directory."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from test_sim_dialplan import QueueLog

from hotline.store.db import Base, CallLog, create_engine
from ivr.menu.model import Channel
from pbxsim.runner import CallOutcome, run_scenario
from pbxsim.scenario import parse_scenario

GENERAL = "88001000001"  # [controller-down]: FALLBACK_QUEUE=hotline-general
EPOCH = 1795564000
TIME_SCALE = 0.05  # one simulated second is 50 ms: the 60 s budget is 3 real seconds


class HoldingAcd:
    """Stands in for the ACD: holds the caller with music until `answer` is set."""

    def __init__(self, *, answer_at_once: bool = False) -> None:
        self.data: list[dict[str, str]] = []  # what each queued call brought the operator
        self.holding = asyncio.Event()
        self.answer = asyncio.Event()
        if answer_at_once:
            self.answer.set()

    async def connect(
        self,
        channel: Channel,
        group: str,
        *,
        number: str,
        priority: int,
        data: Mapping[str, str],
    ) -> str:
        self.data.append(dict(data))
        await channel.exec("StartMusicOnHold", "default")
        self.holding.set()
        await self.answer.wait()
        await channel.exec("StopMusicOnHold")
        return "answered"


@dataclass
class Sink:
    events: list[tuple[str, dict[str, str]]] = field(default_factory=list)

    def emit(self, event: str, headers: list[tuple[str, str]]) -> None:
        self.events.append((event, dict(headers)))

    def trail(self) -> list[tuple[str, str, str]]:
        """Every dialplan step as (context, application, data)."""
        return [
            (h["Context"], h["Application"], h["AppData"])
            for event, h in self.events
            if event == "Newexten"
        ]

    @property
    def call_id(self) -> str:
        """The simulated channel's uniqueid: the controller's call id."""
        return next(h["Uniqueid"] for _, h in self.events if "Uniqueid" in h)

    def agi_urls(self) -> list[str]:
        return [data for _, app, data in self.trail() if app == "AGI"]


@pytest.fixture
async def call_log(tmp_path: Path) -> AsyncIterator[CallLog]:
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path}/calls.sqlite3")
    async with engine.begin() as connection:
        await connection.run_sync(Base.metadata.create_all)
    yield CallLog(engine)
    await engine.dispose()  # its connections' threads end with the test, not after the loop


async def place_call(
    port: int,
    sink: Sink,
    queues: QueueLog,
    *,
    menu_keys: str = "",
    more_controllers: tuple[str, ...] = (),
) -> CallOutcome:
    """One call to the general line through the shipped [from-pstn], whose HOTLINE_AGI_HOSTS
    are the controller on `port`, then `more_controllers` (host:port)."""
    keys = f", menu_keys: '{menu_keys}'" if menu_keys else ""
    scenario = parse_scenario(
        f"pbx: {{epoch: {EPOCH}}}\ncalls: [{{number: '{GENERAL}', hangup_after: 3000{keys}}}]\n"
    )
    report = await run_scenario(
        scenario,
        "127.0.0.1",
        port,
        sink=sink,
        queues=queues,
        time_scale=TIME_SCALE,
        more_controllers=more_controllers,
    )
    (outcome,) = report.calls
    assert outcome.error is None, outcome.error
    return outcome
