"""Listen, whisper and barge: a supervisor's own softphone joins an operator's live call.

How (Asterisk 22's app_chanspy): AMI ``Originate`` rings the supervisor's device
(``PJSIP/<seat>``, from the operators file: `SupervisorDevices`); when they pick up, the
channel runs ``ChanSpy(<uniqueid of the operator's channel>,<options>)``:

    listen   qEu     q: no beep and no channel name spoken to the supervisor
    whisper  qwEu    w: the supervisor talks to the operator only
    barge    qBEu    B: the supervisor talks to both sides of the call
                     E: ChanSpy ends when the operator's channel hangs up (rather than
                        going on to spy on the next channel it finds)
                     u: the first argument is that exact channel (its uniqueid), not a name
                        prefix (a channel that is gone ends ChanSpy at once, nobody else is
                        heard). The uniqueid, not the name: manager.c refuses an Originate
                        whose Data holds ``DB``, ``FILE``, ``SHELL``... without the ``system``
                        class, and a seat may well be named ``DB01``.

The operator's channel is looked up at that moment in Asterisk's own list (AMI ``Status``
with no channel: one ``Status`` event per channel): the channel of their seat that is up
(``PJSIP/<seat>-<n>``). Not ``CoreShowChannels``: manager.c registers it for the ``system`` or
``reporting`` write class, and Asterisk 22 answers the shipped user (``write = call,originate``,
asterisk-conf/manager.conf) ``Permission denied``; ``Status`` needs ``call``. The Originate
needs ``originate`` only: ChanSpy is none of the applications manager.c keeps for ``system``.

Every act is audited before the Originate is sent (``supervisor.<mode>``: who, which call,
which operator, which device); one the PBX refused gets a second row with outcome
``failed``. No audit row, no act: an audit log that cannot be written answers 503.
"""

from __future__ import annotations

import enum
import logging
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final

from hotline.ami.client import AmiClient
from hotline.ami.errors import AmiError
from hotline.audit import AuditLog
from hotline.auth import Actor
from supervision.floor import Floor

log = logging.getLogger(__name__)

__all__ = ["CHANSPY_OPTIONS", "SpyMode", "SpyRefused", "Spying", "SupervisorDevices"]


class SpyMode(enum.StrEnum):
    LISTEN = "listen"
    WHISPER = "whisper"
    BARGE = "barge"


CHANSPY_OPTIONS: Final = {SpyMode.LISTEN: "qEu", SpyMode.WHISPER: "qwEu", SpyMode.BARGE: "qBEu"}
_MODE_RU: Final = {
    SpyMode.LISTEN: "Прослушивание",
    SpyMode.WHISPER: "Подсказка",
    SpyMode.BARGE: "Вмешательство",
}
_RING_MS: Final = 30_000
# What follows ``PJSIP/<seat>-`` in the name of that seat's channel (Asterisk's sequence).
_SEQUENCE: Final = re.compile(r"[0-9a-f]+")
# A uniqueid (``1795563300.8``, or ``<systemname>-1795563300.8``): one argument to ChanSpy.
_UNIQUEID: Final = re.compile(r"[A-Za-z0-9_-]*[0-9]+\.[0-9]+")

# user id -> their softphone (PJSIP/<seat>), or None: they have none
SupervisorDevices = Callable[[str], str | None]


class SpyRefused(Exception):
    """A refused act: HTTP status and the Russian text for the wallboard."""

    def __init__(self, status: int, text: str) -> None:
        super().__init__(text)
        self.status = status
        self.text = text


@dataclass
class Spying:
    floor: Floor
    devices: SupervisorDevices
    ami: Callable[[], AmiClient | None]
    audit: AuditLog
    # the seat device of an operator (for the channel lookup)
    operator_device: Callable[[str], str | None]

    async def start(self, actor: Actor, call_id: str, mode: SpyMode, source: str) -> dict[str, Any]:
        device = self.devices(actor.user_id)
        if device is None:
            raise SpyRefused(
                409,
                "За вами не закреплён телефон: слушать разговор не на чем. Попросите "
                "администратора указать ваше рабочее место (device) в operators.yaml.",
            )
        talking = [op for op in self.floor.operators() if op.call_id == call_id]
        operator = next((op for op in talking if op.state == "talking"), None)
        if operator is None:
            raise SpyRefused(404, "Такого разговора сейчас нет: звонок завершён или не начат.")
        if operator.id == actor.user_id:
            raise SpyRefused(409, "Это ваш собственный разговор.")
        ami = self.ami()
        if ami is None or not ami.connected:
            raise SpyRefused(503, "Нет связи с АТС: подключиться к разговору сейчас нельзя.")
        seat = self.operator_device(operator.id)
        try:
            found = await _live_channel(ami, seat) if seat else None
        except AmiError as error:
            log.warning("channel list unavailable: %s", error)
            raise SpyRefused(503, "АТС не ответила: попробуйте ещё раз.") from None
        if found is None:
            raise SpyRefused(409, "Канал оператора не найден на АТС: разговор уже закончился.")
        channel, uniqueid = found
        detail = {
            "call": call_id,
            "operator": operator.id,
            "device": device,
            "channel": channel,
            "uniqueid": uniqueid,
        }
        await self._audit(actor, mode, source, "accepted", detail)
        data = f"{uniqueid},{CHANSPY_OPTIONS[mode]}"
        try:
            await ami.action(
                "Originate",
                [
                    ("Channel", device),
                    ("Application", "ChanSpy"),
                    ("Data", data),
                    ("CallerID", f'"{_MODE_RU[mode]} {operator.id}" <{operator.id}>'),
                    ("Timeout", str(_RING_MS)),
                    ("Async", "true"),
                ],
            )
        except AmiError as error:
            await self._audit(actor, mode, source, "failed", {**detail, "error": str(error)})
            raise SpyRefused(503, "АТС не приняла вызов: попробуйте ещё раз.") from None
        log.info(
            "supervisor %s on call", mode.value, extra={"call": call_id, "operator": operator.id}
        )
        return {
            "mode": mode.value,
            "call_id": call_id,
            "operator": operator.id,
            "device": device,
            "message": f"{_MODE_RU[mode]}: звоним на ваш телефон {device}.",
        }

    async def _audit(
        self, actor: Actor, mode: SpyMode, source: str, outcome: str, detail: dict[str, str]
    ) -> None:
        try:
            await self.audit.record(
                actor,
                f"supervisor.{mode.value}",
                recording_id=None,
                source=source,
                outcome=outcome,
                detail=detail,
            )
        except Exception as error:  # any database error means the same here
            log.error("supervisor act refused: audit log unavailable: %s", error)
            raise SpyRefused(503, "Журнал аудита недоступен: действие не выполнено.") from None


async def _live_channel(ami: AmiClient, seat: str) -> tuple[str, str] | None:
    """The name and uniqueid of the seat's channel that is up now (``PJSIP/1001-0000000a``),
    or None."""
    listing = await ami.action("Status")
    prefix = seat + "-"
    for event in listing.events:
        if event.get("Event") != "Status":
            continue
        name = event.get("Channel") or ""
        up = event.get("ChannelStateDesc") == "Up" or event.get("ChannelState") == "6"
        uniqueid = event.get("Uniqueid") or ""
        mine = name.startswith(prefix) and _SEQUENCE.fullmatch(name[len(prefix) :])
        if mine and up and _UNIQUEID.fullmatch(uniqueid):
            return name, uniqueid
    return None
