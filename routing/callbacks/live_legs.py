"""Whether a callback still has a call up in Asterisk, asked before a citizen is dialled again
after an attempt whose result the AMI link lost.

An Originate that was sent (or may have been) and whose ``OriginateResponse`` never came (the
link dropped, the reply timed out) leaves the row's ``last_result`` starting with
`UNCERTAIN`: Asterisk may well be ringing the citizen, or they may be talking to the operator
in the callback's conference. Before the next attempt on such a row, `CallbackLegs.alive`
lists Asterisk's channels (AMI ``Status`` with no channel: one ``Status`` event each) and names
one that still belongs to the callback: the citizen's leg
(``Local/<phone>@hotline-callback-out-<n>;1`` or ``;2``, ringing or answered) or any channel in
the callback's ConfBridge (``Data`` is ``hotline-callback-<id>``: the operator's leg left
behind when its Hangup could not be sent). Not ``CoreShowChannels``: Asterisk 22 refuses it to
the shipped AMI user (``write = call,originate``; manager.c wants ``system`` or ``reporting``,
tests/asterisk/test_supervisor_spy.py found it), ``Status`` needs ``call``.
"""

from __future__ import annotations

from typing import Final

from hotline.ami.client import AmiClient
from routing.callbacks.model import Callback

__all__ = ["UNCERTAIN", "CallbackLegs", "bridge_name", "is_uncertain"]

UNCERTAIN: Final = "uncertain"  # how last_result starts when a call's result was lost


def is_uncertain(result: str | None) -> bool:
    """Was the last call of this callback placed with a result nobody heard?"""
    return result is not None and result.startswith(UNCERTAIN)


def bridge_name(callback_id: int) -> str:
    """The ConfBridge both legs of a callback meet in (``CALLBACK_BRIDGE`` in the dialplan)."""
    return f"hotline-callback-{callback_id}"


class CallbackLegs:
    """Asks Asterisk which of a callback's channels are still up."""

    def __init__(self, ami: AmiClient, caller_channel: str) -> None:
        self._ami = ami
        self._caller_channel = caller_channel  # CallbackSettings.caller_channel

    async def alive(self, row: Callback) -> str | None:
        """The name of a channel of this callback Asterisk still has, or None. Raises
        `hotline.ami.errors.AmiError` when Asterisk cannot be asked (the link is still down)."""
        listing = await self._ami.action("Status")
        citizen = self._caller_channel.format(phone=row.phone) + "-"
        bridge = bridge_name(row.id)
        for channel in listing.events:
            if channel.get("Event") != "Status":
                continue
            name = channel.get("Channel") or ""
            conference = (channel.get("Data") or "").split(",")[0]
            in_bridge = channel.get("Application") == "ConfBridge" and conference == bridge
            if name.startswith(citizen) or in_bridge:
                return name
        return None
