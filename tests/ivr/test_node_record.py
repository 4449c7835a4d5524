"""``record``: a voice message, named after the call, with the entries set on the channel."""

from __future__ import annotations

from ivr.menu.console import ConsoleChannel, ScriptedKeypad
from ivr.menu.engine import Engine
from ivr.menu.loader import parse_menu
from ivr.menu.model import Services

RECORD = """\
number: "1000"
group: general
start: a
nodes:
  a: {kind: set, values: {callback_phone: "79161234567"}, next: r}
  r: {kind: record, prompts: [hotline/record-message], store: message, max_seconds: 60, next: bye}
  bye: {kind: hangup}
"""


class Recorder(ConsoleChannel):
    def __init__(self, call_id: str) -> None:
        super().__init__(ScriptedKeypad([]), call_id=call_id)
        self.recordings: list[tuple[str, int]] = []

    async def record_file(
        self,
        path: str,
        fmt: str = "wav",
        escape_digits: str = "#",
        timeout_ms: int = -1,
        **options: object,
    ):  # type: ignore[override]
        self.recordings.append((path, timeout_ms))
        return await super().record_file(path, fmt, escape_digits, timeout_ms)


async def test_the_message_is_recorded_with_a_safe_name() -> None:
    channel = Recorder("1795563091.7/../x")  # a hostile call id cannot leave the directory
    result = await Engine().run(
        channel, parse_menu(RECORD, "r.yaml"), Services(recordings_dir="/spool"), _now()
    )
    assert channel.recordings == [("/spool/1795563091.7_.._x", 60000)]
    assert result.variables["message"] == "/spool/1795563091.7_.._x.wav"
    assert channel.variables["HOTLINE_CALLBACK_PHONE"] == "79161234567"
    assert channel.variables["HOTLINE_MESSAGE"] == "/spool/1795563091.7_.._x.wav"
    assert str(result.end) == "hangup"


def _now():
    from datetime import UTC, datetime

    return datetime(2026, 11, 27, 9, tzinfo=UTC)
