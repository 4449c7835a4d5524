"""The call facts' writes as JSON, for the writer's journal on disk (`reporting.fact_journal`).

Each write (`reporting.fact_store`: `NewFact`, `FactNews`, `WrapUpAdded`, `OperatorStay`) is
one JSON object naming its format (`"v": 1`) and its kind, its fields spelled out here rather
than pickled, so a journal written by one version of the controller can be read, or refused
with a clear error, by the next. Datetimes are ISO 8601 with their offset (a naive one is
refused: the facts' times are UTC), dates ISO; a value of any other type than JSON's is
refused, never written as something it is not. A write's mark (`reporting.fact_marks`: its
writer and number) is kept beside it as `"by"` and `"seq"`; a record without them (written
before marks were) is read without one.
"""

from __future__ import annotations

import json
from datetime import date, datetime
from typing import Any, Final

from reporting.fact_marks import WriteMark
from reporting.fact_store import Fact, FactNews, FactWrite, NewFact, OperatorStay, WrapUpAdded

__all__ = ["CODEC_VERSION", "RecordError", "decode_write", "encode_write"]

CODEC_VERSION: Final = 1


class RecordError(ValueError):
    """A journal record that is not a write of a format this controller knows."""


def encode_write(write: FactWrite, mark: WriteMark | None = None) -> bytes:
    """`write` (and its mark) as compact JSON (UTF-8, no newline: JSON escapes the ones in
    strings)."""
    record = _record(write)
    if mark is not None:
        record["by"], record["seq"] = mark
    return json.dumps(record, ensure_ascii=False, separators=(",", ":")).encode()


def decode_write(data: bytes) -> tuple[FactWrite, WriteMark | None]:
    """The write and mark `encode_write` made; `RecordError` for anything else."""
    try:
        record = json.loads(data)
        if not isinstance(record, dict) or record.get("v") != CODEC_VERSION:
            raise RecordError(f"not a version {CODEC_VERSION} record")
        return _write(record), _mark(record)
    except (KeyError, TypeError, ValueError) as error:  # RecordError is a ValueError
        raise RecordError(f"unreadable call-fact write: {error}") from error


def _mark(record: dict[str, Any]) -> WriteMark | None:
    if "by" not in record and "seq" not in record:
        return None
    seq = record["seq"]
    if seq.__class__ is not int or seq < 1:
        raise RecordError("a write's number that is not a positive integer")
    return WriteMark(_text(record["by"]), seq)


def _record(write: FactWrite) -> dict[str, Any]:
    if isinstance(write, NewFact):
        values = {name: _value(value) for name, value in write.fact.values().items()}
        return {"v": CODEC_VERSION, "kind": "fact", "fact": values}
    if isinstance(write, FactNews):
        values = {name: _value(value) for name, value in write.values.items()}
        return {"v": CODEC_VERSION, "kind": "news", "call_id": write.call_id, "values": values}
    if isinstance(write, WrapUpAdded):
        return {
            "v": CODEC_VERSION,
            "kind": "wrap_up",
            "call_id": write.call_id,
            "seconds": write.seconds,
        }
    slots = [[day.isoformat(), hour, seconds] for day, hour, seconds in write.slots]
    return {
        "v": CODEC_VERSION,
        "kind": "stay",
        "operator_id": write.operator_id,
        "state": write.state,
        "slots": slots,
    }


def _write(record: dict[str, Any]) -> FactWrite:
    kind = record["kind"]
    if kind == "fact":
        values = {name: _unvalue(value) for name, value in record["fact"].items()}
        return NewFact(Fact(**values))
    if kind == "news":
        values = {name: _unvalue(value) for name, value in record["values"].items()}
        return FactNews(_text(record["call_id"]), values)
    if kind == "wrap_up":
        return WrapUpAdded(_text(record["call_id"]), float(record["seconds"]))
    if kind == "stay":
        slots = tuple(
            (date.fromisoformat(day), int(hour), float(seconds))
            for day, hour, seconds in record["slots"]
        )
        return OperatorStay(_text(record["operator_id"]), _text(record["state"]), slots)
    raise RecordError(f"unknown kind {kind!r}")


def _value(value: Any) -> Any:
    """A field's value as JSON: datetimes and dates tagged, JSON's own types as they are."""
    if isinstance(value, datetime):  # before date: a datetime is a date
        if value.tzinfo is None:
            raise ValueError("a naive datetime in a call-fact write")
        return {"datetime": value.isoformat()}
    if isinstance(value, date):
        return {"date": value.isoformat()}
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    raise TypeError(f"a {type(value).__name__} in a call-fact write")


def _unvalue(value: Any) -> Any:
    if isinstance(value, dict):
        if set(value) == {"datetime"}:
            at = datetime.fromisoformat(value["datetime"])
            if at.tzinfo is None:
                raise RecordError("a datetime without its offset")
            return at
        if set(value) == {"date"}:
            return date.fromisoformat(value["date"])
        raise RecordError("an object where a value belongs")
    if isinstance(value, list):
        raise RecordError("a list where a value belongs")
    return value


def _text(value: Any) -> str:
    if not isinstance(value, str):
        raise RecordError("a name that is not text")
    return value
