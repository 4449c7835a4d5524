"""``callback``: the caller asks to be called back and keeps their place in the group's queue;
without the ACD's callbacks the request stays in channel variables as before."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from ivr.menu.engine import Engine
from ivr.menu.loader import check_menu, parse_menu
from tests.ivr.conftest import DIALPLANS, WORKDAY_NOON, BargeChannel, services


def menu_text(nodes: str) -> str:
    return 'number: "1000"\ngroup: general\nstart: a\nnodes:\n' + nodes


CALLBACK = """\
  a:
    kind: set
    values: {topic: "оплата", group: payments, callback_phone: "89161234567"}
    next: cb
  cb:
    kind: callback
    group: "${group}"
    phone: callback_phone
    data: [topic]
    next: booked
    otherwise: refused
  booked: {kind: hangup, prompts: [hotline/callback-accepted]}
  refused: {kind: hangup, prompts: [hotline/callback-failed]}
"""


@dataclass
class Booking:
    """The controller's callbacks as the menu sees them: books what it is asked unless told
    to refuse, and remembers every request."""

    accept: bool = True
    requests: list[dict[str, object]] = field(default_factory=list)

    async def request(
        self, call_id: str, *, phone: str, group: str, number: str, data: Mapping[str, str]
    ) -> bool:
        self.requests.append(
            {"call": call_id, "phone": phone, "group": group, "number": number, "data": data}
        )
        return self.accept


async def test_a_booked_callback_carries_the_call_the_number_and_the_entries(run_menu) -> None:
    booking = Booking()
    result, channel = await run_menu(CALLBACK, caller_id="79035550000", callbacks=booking)
    assert booking.requests == [
        {
            "call": channel.call_id,  # the ACD finds the caller's place by it
            "phone": "89161234567",
            "group": "payments",
            "number": "79035550000",  # or by the caller ID, once the call left the queue
            "data": {"topic": "оплата"},
        }
    ]
    assert channel.played == ["hotline/callback-accepted"]
    assert "callback payments: booked" in [f"{s.kind} {s.detail}" for s in result.path]


async def test_a_refused_callback_takes_the_otherwise_path(run_menu) -> None:
    result, channel = await run_menu(CALLBACK, callbacks=Booking(accept=False))
    assert channel.played == ["hotline/callback-failed"]
    assert "callback payments: refused" in [f"{s.kind} {s.detail}" for s in result.path]


async def test_no_phone_entered_calls_back_the_callers_own_number_in_the_menus_group(
    run_menu,
) -> None:
    nodes = """\
  a: {kind: callback, group: "${group}", phone: callback_phone, next: bye}
  bye: {kind: hangup}
"""
    booking = Booking()
    await run_menu(nodes, caller_id="79035550000", callbacks=booking)
    assert booking.requests[0]["phone"] == "79035550000"
    assert booking.requests[0]["group"] == "general"  # the menu's own group


async def test_a_refusal_without_otherwise_is_told_and_never_promised(run_menu) -> None:
    """`next` promises a call back: a refused booking with no `otherwise` must not go there;
    the caller hears it failed (call later) and the call ends."""
    nodes = (
        "  a: {kind: callback, group: tech1, next: promise}\n"
        "  promise: {kind: hangup, prompts: [hotline/callback-accepted]}\n"
    )
    result, channel = await run_menu(nodes, callbacks=Booking(accept=False))
    assert channel.played == ["hotline/callback-failed"]
    assert (str(result.end), result.end.outcome) == ("callback tech1", "callback_refused")
    booked, _ = await run_menu(nodes, callbacks=Booking(accept=True))
    assert booked.end is not None and str(booked.end) == "hangup"


async def test_without_the_acd_the_request_stays_in_channel_variables(run_menu) -> None:
    result, channel = await run_menu(CALLBACK)
    assert channel.variables == {"HOTLINE_TOPIC": "оплата", "HOTLINE_CALLBACK_GROUP": "payments"}
    assert channel.played == ["hotline/callback-accepted"]
    assert "callback payments: kept in channel variables" in [
        f"{s.kind} {s.detail}" for s in result.path
    ]


def test_a_callback_without_next_or_with_a_typo_is_rejected_at_its_line() -> None:
    _, problems = check_menu(menu_text("  a: {kind: callback, group: general}\n"), "m.yaml")
    assert [str(p) for p in problems] == ["m.yaml:5: node 'a' needs 'next'"]
    typo = "  a: {kind: callback, group: general, next: b, phnoe: x}\n  b: {kind: hangup}\n"
    _, problems = check_menu(menu_text(typo), "m.yaml")
    assert len(problems) == 1 and problems[0].at.line == 5 and "phnoe" in problems[0].message


async def test_the_general_line_books_a_callback_when_nobody_answers(hours) -> None:
    """The shipped general menu: "0" for an operator on a workday, nobody logged in, "1" for
    a callback, the number, a message: the callback is booked for the queue the caller was
    in (the general group), with what they chose and said."""
    path = DIALPLANS / "88001000001.yaml"
    menu = parse_menu(path.read_text(encoding="utf-8"), str(path))
    channel = BargeChannel(
        ["1", "89161234567"], {"hotline/greeting-general": "0"}, queue_status="JOINEMPTY"
    )
    booking = Booking()
    result = await Engine(200).run(
        channel,
        menu,
        services(hours=hours(), callbacks=booking),
        WORKDAY_NOON,
        caller_id="79035550000",
    )
    assert len(booking.requests) == 1
    request = booking.requests[0]
    assert request["group"] == "general" and request["phone"] == "79161234567"
    assert request["call"] == channel.call_id and request["number"] == "79035550000"
    assert request["data"]["topic"] == "общий вопрос"
    assert "callback_message" in request["data"]
    assert channel.played[-2:] == ["hotline/callback-accepted", "hotline/goodbye"]
    assert result.outcome == "joinempty"  # the call log still says why it left the queue
