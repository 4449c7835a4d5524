"""The call facts' writes as the journal keeps them (`reporting.fact_codec`): each of the four
kinds comes back equal, times with their offsets; what is not a write of this format is
refused with `RecordError`, never read as something else."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta, timezone

import pytest

from reporting.fact_codec import RecordError, decode_write, encode_write
from reporting.fact_marks import WriteMark
from reporting.fact_store import Fact, FactNews, FactWrite, NewFact, OperatorStay, WrapUpAdded

MOSCOW_OFFSET = timezone(timedelta(hours=3))


def full_fact() -> Fact:
    """A fact with every field away from its default."""
    return Fact(
        call_id="call-1",
        line="88001000001",
        started_at=datetime(2026, 12, 1, 9, 0, 5, 123456, tzinfo=UTC),
        local_day=date(2026, 12, 1),
        local_hour=12,
        ended_at=datetime(2026, 12, 1, 12, 10, tzinfo=MOSCOW_OFFSET),
        menu_path="start>queue",
        menu_exit="queue general",
        menu_seconds=12.5,
        topic="пенсии",
        group_name="general",
        queued=True,
        wait_seconds=30.25,
        overflowed=True,
        overflow_reason="timeout",
        widened=True,
        ringing_operators="op1,op2",
        operator_id="op1",
        answered=True,
        talk_seconds=300.0,
        hold_seconds=5.0,
        wrap_seconds=60.0,
        outcome="answered",
        abandoned_at=datetime(2026, 12, 1, 9, 1, tzinfo=UTC),
        abandoned_ringing=True,
        callback_booked=True,
        transferred=True,
        escalated=True,
        rating=5,
        contact_number="1234-5",
        fcr_operator=False,
        came_back=True,
        repeat=True,
        caller_number="79161234567",
        application="A-77\nline two",
    )


DAY = date(2026, 12, 1)
WRITES = {
    "fact": NewFact(full_fact()),
    "bare_fact": NewFact(Fact("call-2", "88001000001", datetime(2026, 12, 1, tzinfo=UTC), DAY, 3)),
    "news": FactNews("call-1", {"rating": 4, "fcr_operator": True, "topic": None}),
    "news_with_a_time": FactNews("call-1", {"abandoned_at": datetime(2026, 12, 2, tzinfo=UTC)}),
    "wrap_up": WrapUpAdded("call-1", 42.5),
    "stay": OperatorStay("op1", "talking", ((DAY, 9, 1800.0), (DAY, 10, 60.5))),
}


@pytest.mark.parametrize("write", WRITES.values(), ids=WRITES.keys())
def test_each_kind_of_write_comes_back_as_it_was(write: FactWrite) -> None:
    assert decode_write(encode_write(write)) == (write, None)
    mark = WriteMark("5f0c2a", 12)
    assert decode_write(encode_write(write, mark)) == (write, mark)


def test_a_record_from_before_marks_is_read_without_one() -> None:
    data = b'{"v":1,"kind":"wrap_up","call_id":"c","seconds":1.5}'
    assert decode_write(data) == (WrapUpAdded("c", 1.5), None)


def test_a_record_names_its_format_and_spells_times_in_iso_with_their_offset() -> None:
    record = json.loads(encode_write(NewFact(full_fact())))
    assert (record["v"], record["kind"]) == (1, "fact")
    assert record["fact"]["started_at"] == {"datetime": "2026-12-01T09:00:05.123456+00:00"}
    assert record["fact"]["ended_at"] == {"datetime": "2026-12-01T12:10:00+03:00"}
    assert record["fact"]["local_day"] == {"date": "2026-12-01"}
    back, _ = decode_write(encode_write(NewFact(full_fact())))
    assert isinstance(back, NewFact) and back.fact.ended_at is not None
    assert back.fact.ended_at.utcoffset() == timedelta(hours=3)
    assert b"\n" not in encode_write(NewFact(full_fact()))  # one record, one line


def test_a_naive_time_is_refused_when_written() -> None:
    with pytest.raises(ValueError, match="naive"):
        encode_write(FactNews("call-1", {"abandoned_at": datetime(2026, 12, 1, 9, 0)}))


@pytest.mark.parametrize(
    "data",
    [
        b'{"v":2,"kind":"wrap_up","call_id":"c","seconds":1.0}',  # a later format
        b'{"v":1,"kind":"teleport","call_id":"c"}',
        b'{"v":1,"kind":"wrap_up","call_id":"c"}',
        b'{"v":1,"kind":"fact","fact":{"call_id":"c","no_such_field":1}}',
        b'{"v":1,"kind":"news","call_id":"c","values":{"ended_at":{"datetime":"2026-12-01T09:00:00"}}}',
        b'{"v":1,"kind":"stay","operator_id":7,"state":"ready","slots":[]}',
        b"[1, 2, 3]",
        b'{"v":1,"kind":"wrap_up","call_id":"c","seconds":1.0',
        b"\xff\xfe garbage",
        b'{"v":1,"kind":"wrap_up","call_id":"c","seconds":1.0,"by":"w","seq":0}',
        b'{"v":1,"kind":"wrap_up","call_id":"c","seconds":1.0,"by":"w","seq":"7"}',
        b'{"v":1,"kind":"wrap_up","call_id":"c","seconds":1.0,"by":7,"seq":7}',
        b'{"v":1,"kind":"wrap_up","call_id":"c","seconds":1.0,"seq":7}',
    ],
)  # fmt: skip
def test_what_is_not_a_known_record_is_refused(data: bytes) -> None:
    with pytest.raises(RecordError):
        decode_write(data)
