"""What a callback is: its database row, its states, and the checks every part of it shares.

States: pending -> reserved (claimed by a node, waiting for / holding an operator) -> dialing
-> connected; back to pending after a failed attempt or an overflow; failed, cancelled
(DELETE or the caller), expired (window over) are final. `CallbackRefused` is a request that
cannot be accepted (its message is Russian, for the app's screen); `window_overlaps_hours`
and `is_open_at` read a group's opening hours for the scheduler.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from datetime import datetime
from enum import StrEnum
from typing import Any, Final, Protocol

from sqlalchemy import JSON, BigInteger, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from hotline.hours import HoursStatus
from hotline.store.db import Base, UTCDateTime
from routing.groups import Group

__all__ = [
    "ACTIVE",
    "HELD",
    "Callback",
    "CallbackRefused",
    "CallbackState",
    "HoursFor",
    "HoursLike",
    "Refusal",
    "is_open_at",
    "new_public_id",
    "window_overlaps_hours",
]


class CallbackState(StrEnum):
    PENDING = "pending"
    RESERVED = "reserved"
    DIALING = "dialing"
    CONNECTED = "connected"
    COMPLETED = "completed"  # the conversation took place and is over
    FAILED = "failed"
    CANCELLED = "cancelled"
    EXPIRED = "expired"


S = CallbackState
ACTIVE: Final = (S.PENDING.value, S.RESERVED.value, S.DIALING.value)
HELD: Final = (S.RESERVED.value, S.DIALING.value)  # claimed by a node, under its lease


class Callback(Base):
    """One callback request. Schema owned by migrations ``0002_acd`` (branch "acd"),
    ``0005_callback_lease``, ``0006_callback_talk`` and ``0008_callback_public_id``.

    `id` is internal (claims, the ACD's ``callback-<id>`` caller, the Originate's variables);
    the API shows `public_id` only, so nobody reaches a callback by counting."""

    __tablename__ = "callbacks"
    __table_args__ = (
        Index("ix_callbacks_state_next", "state", "next_attempt_at"),
        Index("ix_callbacks_phone", "phone"),
        Index("ux_callbacks_public_id", "public_id", unique=True),
        Index("ix_callbacks_requested_by", "requested_by", "requested_at"),
        Index("ix_callbacks_group_requested", "group_id", "requested_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    public_id: Mapped[str] = mapped_column(String(32))  # new_public_id()
    # "<actor kind>:<user id>" of an API request (its rate limits, who may see it); None: menu
    requested_by: Mapped[str | None] = mapped_column(String, nullable=True)
    phone: Mapped[str] = mapped_column(String)  # 11 digits starting with 7 (validate_phone)
    application_id: Mapped[str | None] = mapped_column(String, nullable=True)
    group_id: Mapped[str] = mapped_column(String)
    priority: Mapped[int] = mapped_column(Integer)
    source: Mapped[str] = mapped_column(String)  # ivr | api
    requested_at: Mapped[datetime] = mapped_column(UTCDateTime)
    window_start: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    window_end: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    queue_seq: Mapped[int | None] = mapped_column(BigInteger, nullable=True)  # ACD arrival no.
    arrived_at: Mapped[datetime] = mapped_column(UTCDateTime)  # first arrival: orders the queue
    state: Mapped[str] = mapped_column(String)
    attempts: Mapped[int] = mapped_column(Integer)  # calls to the citizen made so far
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime)
    last_result: Mapped[str | None] = mapped_column(String, nullable=True)
    operator: Mapped[str | None] = mapped_column(String, nullable=True)
    node: Mapped[str | None] = mapped_column(String, nullable=True)  # the node holding the claim
    # until when the claim holds without renewal (migration 0005_callback_lease)
    lease_until: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    data: Mapped[dict[str, Any]] = mapped_column(JSON)  # collected in the menu / from the app
    # the conversation: both legs answered, then the operator's leg hung up (0006_callback_talk)
    connected_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)

    def as_json(self) -> dict[str, Any]:
        def iso(value: datetime | None) -> str | None:
            return value.isoformat() if value is not None else None

        return {
            "id": self.public_id,
            "state": self.state,
            "group": self.group_id,
            "application_id": self.application_id,
            "window_start": iso(self.window_start),
            "window_end": iso(self.window_end),
            "attempts": self.attempts,
            "next_attempt_at": iso(self.next_attempt_at),
            "last_result": self.last_result,
            "connected_at": iso(self.connected_at),
            "ended_at": iso(self.ended_at),
            "talk_seconds": self.talk_seconds,
        }

    @property
    def talk_seconds(self) -> float | None:
        """How long the citizen and the operator talked, once the call is over."""
        if self.connected_at is None or self.ended_at is None:
            return None
        return round((self.ended_at - self.connected_at).total_seconds(), 1)


class Refusal(StrEnum):
    """Why a request was refused; the HTTP API maps each to its status code."""

    INVALID = "invalid"  # the request itself is wrong (400)
    NUMBER = "number"  # a number callbacks may not call (400)
    DUPLICATE = "duplicate"  # the number already has a callback pending (409)
    RATE_LIMITED = "rate_limited"  # over a rate limit (429)


class CallbackRefused(ValueError):
    """A request that cannot be accepted; the message is Russian, for the app's screen, and
    names nothing of another request (no id, no group, no count)."""

    def __init__(self, message: str, *, why: Refusal = Refusal.INVALID) -> None:
        super().__init__(message)
        self.why = why


def new_public_id() -> str:
    """A callback's id as the API shows it: 128 random bits, URL-safe (22 characters)."""
    return secrets.token_urlsafe(16)


class HoursLike(Protocol):
    """`hotline.hours.OpenHours` (what a group's schedule resolves to)."""

    def status(self, at: datetime) -> HoursStatus: ...


HoursFor = Callable[[Group], HoursLike | None]
"""A group's hours; None means round the clock. The lead maps ``group.schedule`` to hours."""


def window_overlaps_hours(hours: HoursLike | None, start: datetime, end: datetime) -> bool:
    """Is the group open at some moment in [start, end)?"""
    if hours is None:
        return True
    status = hours.status(start)
    if status.open:
        return True
    return status.opens_at is not None and status.opens_at < end


def is_open_at(hours: HoursLike | None, at: datetime) -> bool:
    return hours is None or hours.status(at).open
