"""The Originate seam: what an ``Originate`` action asks for, what the call came to, and the
`Originator` (the AGI half) that places it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from hotline.ami.protocol import (
    AmiMessage,
)
from pbxsim.ami_session import caller_id_parts, int_header

Headers = list[tuple[str, str]]


@dataclass(frozen=True)
class OriginateRequest:
    """An Originate action, parsed: ``channel`` is the dial string (``Local/8800...@from-pstn``);
    the call goes to ``context``/``exten``/``priority`` or runs ``application(data)``."""

    channel: str
    context: str = ""
    exten: str = ""
    priority: int = 1
    application: str = ""
    data: str = ""
    caller_id_num: str = ""
    caller_id_name: str = ""
    timeout_ms: int = 30000
    variables: tuple[tuple[str, str], ...] = ()
    account: str = ""
    action_id: str = ""


@dataclass(frozen=True)
class OriginateResult:
    """How the outgoing call went: ``reason`` is Asterisk's (4 answered, 0 failed, 1 hung up,
    3 ring timeout, 5 busy, 8 congestion); ``channel``/``uniqueid`` are the outgoing channel's
    when one was created."""

    answered: bool
    reason: int
    channel: str = ""
    uniqueid: str = "<unknown>"


class Originator(Protocol):
    """Places the calls AMI Originate asks for (implemented by the simulator's AGI half): create
    the channels, report their events through the server's `emit`, and return once the
    outgoing channel is answered or has failed; the call then goes on in the background."""

    async def originate(self, request: OriginateRequest) -> OriginateResult: ...


@runtime_checkable
class HangsUp(Protocol):
    """An `Originator` whose calls the AMI ``Hangup`` action can end: ``hang_up`` returns False
    for a channel it does not know."""

    def hang_up(self, channel: str) -> bool: ...


def originate_variables(message: AmiMessage) -> tuple[tuple[str, str], ...]:
    """Every ``Variable: a=b,c=d`` header, in order."""
    pairs: list[tuple[str, str]] = []
    for value in message.getall("Variable"):
        for item in value.split(","):
            name, sep, content = item.partition("=")
            if sep and name.strip():
                pairs.append((name.strip(), content))
    return tuple(pairs)


def originate_request(message: AmiMessage) -> tuple[OriginateRequest | None, str]:
    """The request, or None and the error Asterisk gives."""
    channel = message.get("Channel") or ""
    if not channel:
        return None, "Channel not specified"
    if "/" not in channel:
        return None, "Invalid channel"
    priority = (message.get("Priority") or "1").strip()
    if not priority.isdigit():
        return None, "Invalid priority"
    application = message.get("Application") or ""
    number, name = caller_id_parts(message.get("CallerID") or "")
    return (
        OriginateRequest(
            channel=channel,
            context="" if application else message.get("Context") or "default",
            exten="" if application else message.get("Exten") or "s",
            priority=int(priority),
            application=application,
            data=message.get("Data") or "",
            caller_id_num=number,
            caller_id_name=name,
            timeout_ms=int_header(message.get("Timeout"), 30000),
            variables=originate_variables(message),
            account=message.get("Account") or "",
            action_id=message.get("ActionID") or "",
        ),
        "",
    )


def originate_response(request: OriginateRequest, result: OriginateResult) -> Headers:
    """OriginateResponse's headers, with the ActionID first as ami-ivr-call.txt shows; an
    application's Originate names it and its data instead of the dialplan place
    (ami-chanspy.txt)."""
    headers: Headers = [("ActionID", request.action_id)] if request.action_id else []
    if request.application:
        target = [("Application", request.application), ("Data", request.data)]
    else:
        target = [("Context", request.context), ("Exten", request.exten)]
    return [
        *headers,
        ("Response", "Success" if result.answered else "Failure"),
        ("Channel", result.channel or request.channel),
        *target,
        ("Reason", str(result.reason)),
        ("Uniqueid", result.uniqueid),
        ("CallerIDNum", request.caller_id_num or "<unknown>"),
        ("CallerIDName", request.caller_id_name or "<unknown>"),
    ]
