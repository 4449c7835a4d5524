"""The ACD on the embedded default (no Redis) survives a restart (issue 10 item 1): operators
take back their states from the database snapshot, after a clean stop and after a death that
left no goodbye (the snapshot the running node keeps); operators who were on a call come back
paused; the calls that were queued are whom the next run waits for."""

from __future__ import annotations

import asyncio
from pathlib import Path

from controllers import WITHOUT_RECORDER, controller_settings, started

from controller.node import Controller
from controller.settings import Settings
from routing.operators import OperatorState
from routing.snapshot import AFTER_RESTART, AcdSnapshots, restore_operators, take
from routing.testing import group, memory_node, op

S = OperatorState


def settings(tmp_path: Path) -> Settings:
    return controller_settings(
        tmp_path, {**WITHOUT_RECORDER, "HOTLINE_ROUTING_SNAPSHOT_EVERY_SECONDS": "0.01"}
    )


def states(controller: Controller) -> dict[str, tuple[S, str | None]]:
    assert controller.acd is not None
    operators = controller.acd.node.acd.operators
    return {name: (o.state, o.pause_reason) for name, o in operators.items()}


async def test_operators_keep_their_states_across_a_stop_and_start(tmp_path: Path) -> None:
    async with started(settings(tmp_path)) as first:
        assert first.acd is not None
        await first.acd.node.login("ivanova")
        await first.acd.node.login("petrov", paused_reason="обед")
    async with started(settings(tmp_path)) as second:
        now = states(second)
    assert now["ivanova"] == (S.READY, None)
    assert now["petrov"] == (S.PAUSED, "обед")
    assert now["sidorova"] == (S.LOGGED_OUT, None)


async def test_operators_keep_their_states_when_the_controller_died(tmp_path: Path) -> None:
    dying = Controller(settings(tmp_path))
    await dying.start()
    try:
        assert dying.acd is not None and dying.engine is not None
        await dying.acd.node.login("ivanova")
        snapshots = AcdSnapshots(dying.engine, dying.acd.node.node_id)
        while True:  # the running node's own snapshot, as a kill -9 would leave it
            loaded = await snapshots.load()
            if loaded and loaded[1]["operators"]["ivanova"]["state"] == "ready":
                break
            await asyncio.sleep(0.01)
        # the next controller starts while the first is, as far as it knows, dead
        async with started(settings(tmp_path)) as second:
            assert states(second)["ivanova"] == (S.READY, None)
    finally:
        await dying.stop()


async def test_an_operator_on_a_call_comes_back_paused_and_the_queue_is_awaited() -> None:
    node = memory_node(
        {"general": group("general")}, [op("anna", general=9), op("boris", general=5)]
    )
    await node.login("anna")
    await node.login("boris")
    await node.enqueue("1795564000.1", "general", number="79160000001")  # rings anna
    await node.enqueue("1795564000.2", "general", number="79160000002")  # rings boris
    await node.answer("1795564000.1")
    await node.enqueue("1795564000.3", "general", number="79160000003")  # waits
    snapshot = take(node, handed_back={"1795564000.4"})
    assert snapshot["calls"] == ["1795564000.2", "1795564000.3", "1795564000.4"]
    after = memory_node(
        {"general": group("general")}, [op("anna", general=9), op("boris", general=5)]
    )
    assert await restore_operators(after, snapshot) == 2
    anna, boris = after.acd.operators["anna"], after.acd.operators["boris"]
    assert (anna.state, anna.pause_reason) == (S.PAUSED, AFTER_RESTART)  # was talking
    assert (boris.state, boris.pause_reason) == (S.PAUSED, AFTER_RESTART)  # was ringing
