"""The applications that reach other people: ``Queue()`` through the queue half and
``Dial()`` to a simulated softphone.

``EXEC Dial(PJSIP/<seat>,<ring>,gU(sub^args))`` rings the queue half's `Operator` for that
interface and sets DIALSTATUS/DIALEDTIME/ANSWEREDTIME, with ``DialBegin``/``DialEnd``; ``b()``
runs its dialplan subroutine on the dialled channel before it rings and ``U()`` at answer
(through the channel's `CalleeDialplan`, which runs extensions.conf).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Mapping

from pbxsim.agi_apps import DialplanApplications
from pbxsim.agi_results import (
    arg_at,
    c_float,
    smaller,
)
from pbxsim.dialplan.arguments import app_args, app_options, callee_gosub, predial_gosub
from pbxsim.model import ChannelState, SimChannel
from pbxsim.queue_state import Operator
from pbxsim.timeline import (
    no_digit,
)

log = logging.getLogger(__name__)


def endpoint_context(device: str) -> str:
    """The context of the PJSIP endpoint a device dials, as the shipped pjsip.conf sets it:
    the carrier trunk's ``from-pstn``, the seats' ``operators``."""
    return "from-pstn" if device.endswith("@trunk") else "operators"


class QueueAndDial(DialplanApplications):
    """``Queue()`` and ``Dial()``: the applications that connect the caller to someone."""

    async def app_queue(self, data: str) -> int:
        """Queue(name,options,URL,announce,timeout,...) through the queue half."""
        args = data.split(",")
        if self.hung_up or self.queues is None:
            return -1 if self.hung_up else self._queue_status("UNKNOWN")
        timeout = c_float(args[4]) if len(args) > 4 and args[4] else None
        status: str | None
        if self.clock.instant:
            status = await self._queue_in_virtual_time(args, timeout)
        else:
            status = await self._queue_in_real_time(args, timeout)
        self.poll()
        if status is None or self.hung_up:
            return -1  # the caller gave up: app_queue leaves QUEUESTATUS unset
        if status == "ANSWERED":  # the operator hung up; without option c so does the call
            return await self.app_hangup("")
        return self._queue_status(status)

    async def _queue_in_real_time(self, args: list[str], limit: float | None) -> str | None:
        """Wait in the queue while the caller's timeline runs; their hang-up cancels the
        wait, which the queue half reports as an abandoned call."""
        assert self.queues is not None
        waiting = asyncio.ensure_future(
            self.queues.enter(self.channel, args[0], arg_at(args, 1), limit)
        )
        try:
            while not waiting.done():
                upcoming = self._timeline.peek()
                wait = None if upcoming is None else self.clock.real_wait(upcoming)
                await asyncio.wait({waiting}, timeout=wait)
                self.poll()
                if self.hung_up:
                    return None
            return waiting.result()
        finally:
            if not waiting.done():
                waiting.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await waiting

    async def _queue_in_virtual_time(self, args: list[str], limit: float | None) -> str:
        """Simulated time cannot race the queue half's own clock, so the caller's patience
        goes in as the wait limit: a TIMEOUT it caused is the caller hanging up."""
        assert self.queues is not None
        max_wait = smaller(limit, self._patience_left())
        start = self.clock.now()
        status = await self.queues.enter(self.channel, args[0], arg_at(args, 1), max_wait)
        if status == "TIMEOUT" and max_wait is not None:
            await self.clock.sleep_until(start + max_wait)
        return status

    def _patience_left(self) -> float | None:
        hangup = self._timeline.next_hangup()
        return None if hangup is None else max(0.0, hangup - self.clock.now())

    def _queue_status(self, status: str) -> int:
        self.set_variable("QUEUESTATUS", status)
        return 0

    async def app_dial(self, data: str) -> int:
        """Dial(device,timeout,options) to a simulated softphone (the queue half's `Operator`
        for that interface: ring delay, answers or not, talk time). Sets DIALSTATUS (ANSWER,
        NOANSWER, BUSY, CHANUNAVAIL, CANCEL), ANSWEREDTIME and DIALEDTIME, and prints
        DialBegin/DialEnd. Option ``b(...)`` runs its dialplan subroutine on the operator's
        channel before it rings, ``U(sub^args)`` at answer (`callee_dialplan`). Option ``g``:
        the call goes on after the operator hangs up; without it the caller is hung up too, as
        Asterisk does."""
        if self.hung_up:
            return -1
        args = app_args(data)
        device = arg_at(args, 0)
        options = app_options(arg_at(args, 2))
        timeout = c_float(arg_at(args, 1)) or None
        refused = self._device_refusal(device)
        if refused is not None:
            self.set_variable("DIALSTATUS", refused)
            return 0
        callee = self._callee_channel(device)
        if "b" in options:
            await self._run_callee_gosub(callee, predial_gosub(options["b"]))
        started = self.clock.now()
        self._emit_dial("DialBegin", callee, ("DialString", device.partition("/")[2] or device))
        callee.state = ChannelState.RINGING  # the phone's 180 Ringing
        self.sink.emit("Newstate", callee.headers())
        self._emit_dial("DialState", callee, ("DialStatus", "RINGING"))
        operator = self._operator(device)
        ring = operator.ring_delay if operator.answers else None
        if ring is None or (timeout is not None and ring >= timeout):
            wake = await self._wait(None if timeout is None else started + timeout, no_digit)
            status = "CANCEL" if wake.kind == "hangup" else "NOANSWER"
            return self._dial_over(callee, status, started, None)
        wake = await self._wait(started + ring, no_digit)
        if wake.kind == "hangup":
            return self._dial_over(callee, "CANCEL", started, None)
        callee.state = ChannelState.UP
        self.sink.emit("Newstate", callee.headers())
        answered = self.clock.now()
        self._emit_dial("DialEnd", callee, ("DialStatus", "ANSWER"))  # app_dial: before U()
        if "U" in options:
            await self._run_callee_gosub(callee, callee_gosub(options["U"]))
        self._busy_device(device, True)
        try:
            await self._wait(answered + operator.next_talk_time(), no_digit)
        finally:
            self._busy_device(device, False)
        return self._dial_over(callee, "ANSWER", started, answered, go_on="g" in options)

    def _device_refusal(self, device: str) -> str | None:
        from pbxsim.queue_state import DeviceState

        devices = getattr(self.queues, "devices", None)
        state = devices.get(device) if devices is not None else None
        if state in (DeviceState.UNAVAILABLE, DeviceState.INVALID):
            return "CHANUNAVAIL"
        if state in (DeviceState.INUSE, DeviceState.BUSY):
            return "BUSY"
        return None

    def _busy_device(self, device: str, busy: bool) -> None:
        from pbxsim.queue_state import DeviceState

        devices = getattr(self.queues, "devices", None)
        if devices is None:
            return
        if devices.get(device) in (DeviceState.UNAVAILABLE, DeviceState.INVALID):
            return  # unregistered during the call: hanging up does not register it again
        devices.update(device, DeviceState.INUSE if busy else DeviceState.NOT_INUSE)

    def _operator(self, device: str) -> Operator:
        operators: Mapping[str, Operator] = getattr(self.queues, "operators", {})
        default: Operator = getattr(self.queues, "default_operator", None) or Operator()
        return operators.get(device, default)

    def _callee_channel(self, device: str) -> SimChannel:
        ids = getattr(self.queues, "ids", None)
        self._dials += 1
        if ids is not None:
            uniqueid, sequence = ids.uniqueid(), ids.local_sequence()
        else:
            uniqueid, sequence = f"{self.channel.uniqueid}{self._dials}", f"{self._dials:08x}"
        callee = SimChannel(
            name=f"{device}-{sequence}",
            uniqueid=uniqueid,
            linkedid=self.channel.linkedid,
            context=endpoint_context(device),
            exten=self.channel.exten,  # app_dial: "inherit context and extension"
            state=ChannelState.DOWN,
            language=self.channel.language,
            # app_dial's stored CallerID: the caller's extension and name (the confbridge
            # capture's DialBegin to the trunk, agi-acd-answered-session.txt's agi_callerid)
            caller_id_num=self.channel.exten,
            caller_id_name=self.channel.caller_id_name,
            connected_num=self.channel.caller_id_num,
            connected_name=self.channel.caller_id_name,
        )
        self.sink.emit("Newchannel", callee.headers())
        return callee

    def _emit_dial(self, event: str, callee: SimChannel, extra: tuple[str, str]) -> None:
        self.sink.emit(event, [*self.channel.headers(), *callee.headers("Dest"), extra])

    async def _run_callee_gosub(self, callee: SimChannel, gosub: str) -> None:
        if self.callee_dialplan is None:
            log.warning("simulated Dial without a dialplan: %s skipped", gosub)
            return
        await self.callee_dialplan.run_gosub(self, callee, gosub)

    def _dial_over(
        self,
        callee: SimChannel,
        status: str,
        started: float,
        answered: float | None,
        *,
        go_on: bool = True,
    ) -> int:
        now = self.clock.now()
        if answered is None:
            self._emit_dial("DialEnd", callee, ("DialStatus", status))
        self.sink.emit(
            "Hangup", [*callee.headers(), ("Cause", "16"), ("Cause-txt", "Normal Clearing")]
        )
        self.set_variable("DIALSTATUS", status)
        self.set_variable("DIALEDTIME", str(int(now - started)))
        self.set_variable("ANSWEREDTIME", str(int(now - answered)) if answered else "")
        self.poll()
        if self.hung_up:
            return -1
        if answered is not None and not go_on:
            return -1  # Dial without g: the bridge's end ends the call
        return 0
