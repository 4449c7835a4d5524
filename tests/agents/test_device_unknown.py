"""A seat Asterisk has never heard of (absent from DeviceStateList) is not offered calls
(issue 10, item 4): it used to count as registered."""

from __future__ import annotations

from dataclasses import dataclass

from agents.devices import DeviceWatcher
from hotline.ami.protocol import AmiMessage
from routing.node import AcdNode
from routing.testing import group, memory_node, op


@dataclass
class _Listing:
    events: tuple[AmiMessage, ...]


class _Pbx:
    """An AMI link whose DeviceStateList answers with these devices and states."""

    def __init__(self, *states: tuple[str, str]) -> None:
        self.states = states

    async def action(self, name: str) -> _Listing:
        assert name == "DeviceStateList"
        return _Listing(
            tuple(
                AmiMessage((("Event", "DeviceStateChange"), ("Device", d), ("State", s)))
                for d, s in self.states
            )
        )


async def _node() -> AcdNode:
    operators = [op("anna", general=5), op("boris", general=5), op("vera", general=5)]
    node = memory_node({"general": group("general")}, operators)
    await node.start()
    return node


async def test_a_seat_missing_from_device_state_list_is_down_and_never_offered() -> None:
    node = await _node()
    watcher = DeviceWatcher(node, [o.spec for o in node.acd.operators.values()])
    # anna registered, boris configured but not registered, vera unknown to Asterisk
    await watcher._resync(_Pbx(("PJSIP/anna", "NOT_INUSE"), ("PJSIP/boris", "UNAVAILABLE")))  # type: ignore[arg-type]
    operators = node.acd.operators
    assert [operators[o].device_available for o in ("anna", "boris", "vera")] == [
        True,
        False,
        False,
    ]
    await node.login("vera")
    assert await node.enqueue("c1", "general") == []  # vera is ready but her seat is unknown
    # the seat is added on the PBX and registers: the live event brings vera back
    await watcher.on_event(
        AmiMessage(
            (("Event", "DeviceStateChange"), ("Device", "PJSIP/vera"), ("State", "NOT_INUSE"))
        )
    )
    assert operators["vera"].device_available is True
