"""The manager actions on calls and channels: CoreShowChannels, Status (every channel),
Originate, Setvar, Redirect,
Hangup and DeviceStateList.
"""

from __future__ import annotations

import asyncio
import logging

from hotline.ami.protocol import (
    AmiMessage,
)
from pbxsim.ami_channels import one_less, status_of
from pbxsim.ami_core import AmiServerCore
from pbxsim.ami_originate import (
    HangsUp,
    OriginateRequest,
    OriginateResult,
    originate_request,
    originate_response,
)
from pbxsim.ami_session import (
    AmiSession,
    Handler,
    action_id_headers,
    ami_true,
)
from pbxsim.chanspy import ChanSpies, originate_app_permitted

log = logging.getLogger(__name__)

Headers = list[tuple[str, str]]


class CallActions(AmiServerCore):
    """The actions a controller uses to place, steer and end calls."""

    def _action_handlers(self) -> dict[str, Handler]:
        return {
            **super()._action_handlers(),
            "coreshowchannels": self._core_show_channels,
            "status": self._status,
            "originate": self._originate,
            "setvar": self._setvar,
            "redirect": self._redirect,
            "hangup": self._hangup,
            "devicestatelist": self._device_state_list,
        }

    async def _core_show_channels(self, session: AmiSession, message: AmiMessage) -> None:
        action_id = action_id_headers(message)
        listing = self.channels.listing(self.clock.now_us())
        items = [("CoreShowChannel", [*action_id, *body]) for body in listing]
        self._send_list(session, message, "Channels will follow", "CoreShowChannelsComplete", items)

    async def _status(self, session: AmiSession, message: AmiMessage) -> None:
        """``Status``: one ``Status`` event per channel (or the one ``Channel`` names, by name
        or uniqueid), the headers of manager.c's generate_status with the ActionID last
        (ami-chanspy.txt), then ``StatusComplete`` with ``Items``."""
        wanted = message.get("Channel") or ""
        views = self.channels.views()
        if wanted:
            one = self.channels.find(wanted)
            if one is None:
                self._respond(session, message, "Error", ("Message", "No such channel"))
                return
            views = [one]
        now_us = self.clock.now_us()
        items = [("Status", status_of(view, now_us, action_id_headers(message))) for view in views]
        self._send_list(
            session, message, "Channel status will follow", "StatusComplete", items, with_items=True
        )

    _spies: ChanSpies | None = None

    @property
    def spies(self) -> ChanSpies:
        """ChanSpy on answered Originate legs (`pbxsim.chanspy`), made on first use."""
        if self._spies is None:
            self._spies = ChanSpies(self.channels, self.emit, self._hang_up_leg)
        return self._spies

    def _hang_up_leg(self, channel: str) -> bool:
        originator = self.originator
        return isinstance(originator, HangsUp) and originator.hang_up(channel)

    def emit(self, event: str, headers: list[tuple[str, str]]) -> None:
        ended = self._spies.before(event, headers) if self._spies is not None else []
        super().emit(event, headers)
        for spyer in ended:
            self._hang_up_leg(spyer)

    async def _originate(self, session: AmiSession, message: AmiMessage) -> None:
        request, problem = originate_request(message)
        if request is None:
            self._respond(session, message, "Error", ("Message", problem))
            return
        user = session.user
        may_write = (lambda c: True) if user is None else user.can_write
        if request.application and not originate_app_permitted(
            request.application, request.data, may_write
        ):
            text = "Originate Access Forbidden: app or data blacklisted"
            self._respond(session, message, "Error", ("Message", text))
            return
        if ami_true(message.get("Async")):
            self._respond(session, message, "Success", ("Message", "Originate successfully queued"))
            task = asyncio.ensure_future(self._originate_async(request))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
            return
        result = await self._place_call(request)
        if result.answered:
            self._respond(session, message, "Success", ("Message", "Originate successfully queued"))
            self._run_application(request, result)
        else:
            self._respond(session, message, "Error", ("Message", "Originate failed"))

    async def _setvar(self, session: AmiSession, message: AmiMessage) -> None:
        name, value = message.get("Variable") or "", message.get("Value") or ""
        if not name:
            self._respond(session, message, "Error", ("Message", "No variable specified"))
            return
        channel = message.get("Channel") or ""
        view = self.channels.find(channel) if channel else None
        if channel and view is None:
            self._respond(session, message, "Error", ("Message", "No such channel"))
            return
        self._respond(session, message, "Success", ("Message", "Variable Set"))
        if view is not None:
            view.variables = {**(view.variables or {}), name.lstrip("_"): value}
            self.emit("VarSet", [*view.block, ("Variable", name), ("Value", value)])

    async def _redirect(self, session: AmiSession, message: AmiMessage) -> None:
        channel = message.get("Channel") or ""
        if not channel:
            self._respond(session, message, "Error", ("Message", "Channel not specified"))
            return
        priority = message.get("Priority") or "1"
        if not priority.isdigit():
            self._respond(session, message, "Error", ("Message", "Invalid priority"))
            return
        view = self.channels.find(channel)
        if view is None:
            text = f"Channel does not exist: {channel}"
            self._respond(session, message, "Error", ("Message", text))
            return
        self._respond(session, message, "Success", ("Message", "Redirect successful"))
        if view.bridge and view.bridge_headers is not None:
            self.emit("BridgeLeave", [*one_less(view.bridge_headers), *view.block])
        place = {
            "Context": message.get("Context") or dict(view.block)["Context"],
            "Exten": message.get("Exten") or dict(view.block)["Exten"],
            "Priority": priority,
        }
        view.block = [(key, place.get(key, value)) for key, value in view.block]
        view.application = view.data = ""

    async def _hangup(self, session: AmiSession, message: AmiMessage) -> None:
        """Asterisk 22's manager.c: the three answers of a by-name Hangup (the /regex/ form is
        not simulated). Only the Originator's calls can be hung up from here."""
        channel = message.get("Channel") or ""
        if not channel:
            self._respond(session, message, "Error", ("Message", "No channel specified"))
            return
        originator = self.originator
        if not isinstance(originator, HangsUp) or not originator.hang_up(channel):
            self._respond(session, message, "Error", ("Message", "No such channel"))
            return
        self._respond(session, message, "Success", ("Message", "Channel Hungup"))

    async def _device_state_list(self, session: AmiSession, message: AmiMessage) -> None:
        """res_manager_devicestate.c: every state of the device-state cache as a
        ``DeviceStateChange`` carrying the ActionID, then ``DeviceStateListComplete``."""
        known = self.queues.devices.known() if self.queues is not None else []
        items: list[tuple[str, Headers]] = [
            (
                "DeviceStateChange",
                [*action_id_headers(message), ("Device", device), ("State", state.name)],
            )
            for device, state in known
        ]
        intro, complete = "Device State Changes will follow", "DeviceStateListComplete"
        self._send_list(session, message, intro, complete, items)

    async def _originate_async(self, request: OriginateRequest) -> None:
        result = await self._place_call(request)
        self.emit("OriginateResponse", originate_response(request, result))
        self._run_application(request, result)

    def _run_application(self, request: OriginateRequest, result: OriginateResult) -> None:
        """The application an answered leg runs (only ChanSpy is simulated)."""
        if result.answered and request.application.lower() == "chanspy":
            self.spies.start(result.channel, request.data)

    async def _place_call(self, request: OriginateRequest) -> OriginateResult:
        if self.originator is None:
            return OriginateResult(answered=False, reason=0)  # as for an unknown technology
        try:
            return await self.originator.originate(request)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("simulated Originate of %s failed", request.channel)
            return OriginateResult(answered=False, reason=0)
