"""Action correlation: an action's bytes, and its reply matched to it by ``ActionID``.

`PendingActions` holds the actions awaiting a reply on one link. A plain reply settles its
action; a reply that opens an event list (``EventList: start``) waits for the items, which
come as events with the same ``ActionID``, and the closing ``...Complete`` event settles it.
Events that belong to no waiting list are not its business: the link dispatches them.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field

from hotline.ami.errors import AmiActionError, AmiError, AmiLinkLost
from hotline.ami.protocol import AmiMessage, AmiProtocolError, encode_message

# One logger for the whole client: operators filter its lines by this name.
log = logging.getLogger("hotline.ami.client")

HeaderValue = str | int | bool
Headers = Iterable[tuple[str, HeaderValue]] | Mapping[str, HeaderValue]


@dataclass(frozen=True, slots=True)
class AmiResponse:
    """A successful reply. For an event list, ``events`` holds the list's items and
    ``complete`` the closing ``...Complete`` event (with ``ListItems``)."""

    message: AmiMessage
    events: tuple[AmiMessage, ...] = ()
    complete: AmiMessage | None = None

    @property
    def status(self) -> str:
        """``Success``, or ``Goodbye`` for Logoff."""
        return self.message.name

    @property
    def action_id(self) -> str | None:
        return self.message.action_id

    @property
    def text(self) -> str | None:
        """The ``Message`` header."""
        return self.message.get("Message")

    @property
    def output(self) -> list[str]:
        """The ``Output`` lines of a ``Command`` reply."""
        return self.message.getall("Output")

    def get(self, key: str, default: str | None = None) -> str | None:
        return self.message.get(key, default)

    def getall(self, key: str) -> list[str]:
        return self.message.getall(key)

    def __getitem__(self, key: str) -> str:
        return self.message[key]

    def __contains__(self, key: object) -> bool:
        return key in self.message


@dataclass(eq=False, slots=True)
class PendingAction:
    """An action waiting for its reply, and for an event list, the items gathered so far."""

    action: str
    future: asyncio.Future[AmiResponse]
    response: AmiMessage | None = None
    events: list[AmiMessage] = field(default_factory=list)

    def settle(self, outcome: AmiResponse | AmiError) -> None:
        """Hand the reply (or the failure) to whoever awaits it; later outcomes are ignored."""
        if self.future.done():
            return
        if isinstance(outcome, AmiResponse):
            self.future.set_result(outcome)
        else:
            self.future.set_exception(outcome)


class PendingActions:
    """The actions awaiting a reply on one link, by ``ActionID``."""

    def __init__(self) -> None:
        self._by_id: dict[str, PendingAction] = {}

    def open(self, action_id: str, action: str) -> PendingAction:
        """Start waiting for the reply to ``action``; its ``ActionID`` must be free."""
        if action_id in self._by_id:
            raise AmiProtocolError(f"ActionID {action_id!r} is already awaiting a reply")
        pending = PendingAction(action, asyncio.get_running_loop().create_future())
        self._by_id[action_id] = pending
        return pending

    def forget(self, action_id: str) -> None:
        """Stop waiting (replied, timed out or cancelled); a late reply is then ignored."""
        self._by_id.pop(action_id, None)

    def take_response(self, response: AmiMessage) -> None:
        pending = self._by_id.get(response.action_id or "")
        if pending is None or pending.response is not None:
            log.debug("AMI reply nobody waits for (late or foreign): %s", response.as_dict())
            return
        if response.name.lower() == "error":
            pending.settle(AmiActionError(pending.action, response))
        elif (response.get("EventList") or "").lower() == "start":
            pending.response = response  # the items follow as events with our ActionID
        else:
            pending.settle(AmiResponse(response))

    def take_event(self, event: AmiMessage) -> bool:
        """Keep an event that is part of a reply; False for any other event.

        Other events include those caused by an action but not part of its reply, such as the
        OriginateResponse that carries the Originate's ActionID.
        """
        pending = self._by_id.get(event.action_id or "")
        if pending is None or pending.response is None:
            return False
        if (event.get("EventList") or "").lower() == "complete":
            _check_list_size(pending, event)
            pending.settle(AmiResponse(pending.response, tuple(pending.events), event))
        else:
            pending.events.append(event)
        return True

    def fail_all(self, reason: str) -> None:
        """The link is gone: every waiter learns it now."""
        for pending in self._by_id.values():
            pending.settle(
                AmiLinkLost(f"AMI link lost before the reply to {pending.action}: {reason}")
            )


def encode_action(
    name: str, pairs: list[tuple[str, str]], new_action_id: Callable[[], str]
) -> tuple[str, bytes]:
    """The ActionID (the one given in ``pairs``, else a new one) and the bytes to send;
    raises `AmiProtocolError` before anything is sent."""
    given = [value for key, value in pairs if key.lower() == "actionid"]
    action_id = given[0] if given else new_action_id()
    pairs = [(key, value) for key, value in pairs if key.lower() != "actionid"]
    return action_id, encode_message([("Action", name), ("ActionID", action_id), *pairs])


def header_pairs(headers: Headers | None) -> list[tuple[str, str]]:
    """Headers given as pairs or a mapping, as text pairs in their order."""
    if headers is None:
        return []
    items = headers.items() if isinstance(headers, Mapping) else headers
    return [(key, _header_text(value)) for key, value in items]


def _header_text(value: HeaderValue) -> str:
    if isinstance(value, bool):  # Asterisk's ast_true() wants "true"/"false", not "True"
        return "true" if value else "false"
    return str(value)


def _check_list_size(pending: PendingAction, complete: AmiMessage) -> None:
    announced = complete.get("ListItems") or ""
    # isdigit() alone passes "²" and "٣", which int() refuses or misreads: ASCII, and short.
    wellformed = announced.isascii() and announced.isdigit() and len(announced) < 10
    if wellformed and int(announced) != len(pending.events):
        log.warning(
            "AMI %s list announced %s items but carried %d",
            pending.action,
            announced,
            len(pending.events),
        )
