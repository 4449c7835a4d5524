"""Softphone registration from AMI: a phone that is not registered is never offered a call.

`DeviceWatcher` subscribes to two AMI events through `hotline.ami.client.AmiClient.on`:

* ``DeviceStateChange`` (``Device: PJSIP/1001``, ``State: UNAVAILABLE``...): the device state
  Asterisk aggregates from the endpoint; UNAVAILABLE and INVALID mean "cannot ring".
* ``ContactStatus`` (``EndpointName: 1001``, ``ContactStatus: Unreachable``...): a PJSIP
  contact's registration and qualify result; Removed and Unreachable mean "cannot ring".

Only changes are passed on (``AcdNode.set_device_available``), so a chatty AMI costs nothing.
On every (re)login it asks for ``DeviceStateList`` so a restarted node learns the current
states; a PBX that does not know the action is simply not asked again.

Asterisk lists every device it knows, registered or not (an unregistered PJSIP seat is
UNAVAILABLE). A seat missing from the list does not exist on the PBX (a typo in
``operators.yaml``, a seat not yet added to pjsip.conf): it cannot ring, so it is marked down
and logged, until an event about it says otherwise.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

from hotline.ami.client import AmiClient
from hotline.ami.errors import AmiActionError, AmiError
from hotline.ami.protocol import AmiMessage
from routing.node import AcdNode
from routing.operators import OperatorSpec

__all__ = ["DeviceWatcher", "device_available"]

log = logging.getLogger("hotline.agents")

_DOWN_STATES = frozenset({"UNAVAILABLE", "INVALID"})
_DOWN_CONTACTS = frozenset({"REMOVED", "UNREACHABLE"})
_UP_CONTACTS = frozenset({"CREATED", "REACHABLE", "UPDATED", "NONQUALIFIED"})


def device_available(event: AmiMessage) -> tuple[str, bool] | None:
    """(device, available) carried by an AMI event, or None if it says nothing usable."""
    name = event.name.lower()
    if name == "devicestatechange":
        device, state = event.get("Device"), (event.get("State") or "").upper()
        if not device or not state:
            return None
        return device, state not in _DOWN_STATES
    if name == "contactstatus":
        endpoint = event.get("EndpointName") or event.get("AOR")
        status = (event.get("ContactStatus") or "").upper()
        if not endpoint or status not in _DOWN_CONTACTS | _UP_CONTACTS:
            return None
        return f"PJSIP/{endpoint}", status in _UP_CONTACTS
    return None


class DeviceWatcher:
    def __init__(self, node: AcdNode, operators: Iterable[OperatorSpec]) -> None:
        self._node = node
        self._by_device = {spec.device.upper(): spec.id for spec in operators}
        self._known: dict[str, bool] = {}
        self._ask_list = True

    def follow(self, operators: Iterable[OperatorSpec]) -> None:
        """Operators edited while running (routing.admin): phones are matched anew."""
        self._by_device = {spec.device.upper(): spec.id for spec in operators}

    def attach(self, ami: AmiClient) -> None:
        ami.on("DeviceStateChange", self.on_event)
        ami.on("ContactStatus", self.on_event)
        ami.on_connected(lambda: self._resync(ami))

    async def _resync(self, ami: AmiClient) -> None:
        if not self._ask_list:
            return
        try:
            listing = await ami.action("DeviceStateList")
        except AmiActionError as exc:  # the PBX does not know or allow it: never ask again
            self._ask_list = False
            log.warning("AMI DeviceStateList refused (%s); relying on live events", exc)
            return
        except (AmiError, TimeoutError) as exc:  # the link failed: the next login asks again
            log.warning("AMI DeviceStateList not answered (%s); asking at the next login", exc)
            return
        # The list's items come back in the reply, not through the event handlers.
        listed: set[str] = set()
        for event in listing.events:
            found = device_available(event)
            if found is not None:
                listed.add(found[0].upper())
            await self.on_event(event)
        await self._mark_unknown_down(listed)

    async def _mark_unknown_down(self, listed: set[str]) -> None:
        for device, op_id in self._by_device.items():
            if device in listed or self._known.get(op_id) is False:
                continue
            self._known[op_id] = False
            log.warning(
                "operator %s phone %s is unknown to Asterisk (not in DeviceStateList):"
                " no calls are offered to it; check the seat in operators.yaml and pjsip.conf",
                op_id,
                device,
            )
            await self._node.set_device_available(op_id, False)

    async def on_event(self, event: AmiMessage) -> None:
        found = device_available(event)
        if found is None:
            return
        device, available = found
        op_id = self._by_device.get(device.upper())
        if op_id is None or self._known.get(op_id) == available:
            return
        self._known[op_id] = available
        log.info("operator %s phone %s is %s", op_id, device, "up" if available else "DOWN")
        await self._node.set_device_available(op_id, available)
