"""``queue``: to a skill group with priority and the caller's entries; rating after the
operator; another path when nobody answers."""

from __future__ import annotations

QUEUE = """\
  a: {kind: set, values: {application: "1234567897", topic: "статус"}, next: q}
  q:
    kind: queue
    group: application-status
    priority: 3
    data: [application]
    then_rating: rate
    otherwise: busy
  rate: {kind: rating, prompts: [hotline/rating-request], next: bye}
  busy: {kind: hangup, prompts: [hotline/all-busy]}
  bye: {kind: hangup}
"""


async def test_queue_tags_the_call_and_comes_back_for_the_rating(run_menu) -> None:
    result, channel = await run_menu(QUEUE, ["5"])
    assert channel.variables == {
        "HOTLINE_APPLICATION": "1234567897",
        "HOTLINE_GROUP": "application-status",
        "QUEUE_PRIO": "3",
        "HOTLINE_RATING": "5",
    }
    # option c: Queue() returns when the operator hangs up, so the menu can ask for a rating
    assert channel.applications[0] == (
        "Queue",
        ("hotline-application-status", "tc", "", "", "1800"),
    )
    assert result.outcome == "answered" and result.variables["rating"] == "5"
    assert str(result.end) == "hangup"


async def test_nobody_answering_takes_the_otherwise_path(run_menu) -> None:
    result, channel = await run_menu(QUEUE, queue_status="TIMEOUT")
    assert channel.played == ["hotline/all-busy"]
    assert result.outcome == "timeout"


async def test_without_rating_the_call_ends_in_the_queue(run_menu) -> None:
    nodes = "  a: {kind: queue, group: general}\n"
    result, channel = await run_menu(nodes, queue_status="JOINEMPTY")
    assert channel.applications == [("Queue", ("hotline-general", "tc", "", "", "1800"))]
    assert str(result.end) == "queue general" and result.outcome == "joinempty"
    assert "HOTLINE_TOPIC" not in channel.variables
