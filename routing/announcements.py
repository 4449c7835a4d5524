"""What a waiting caller hears between the music: their place in the queue and the
expected wait, in Russian (`announcer` is `routing.connect.connect_call`'s ``announce``)."""

from __future__ import annotations

import asyncio
import math
from typing import Any, Protocol

from routing.connect import Announce

__all__ = ["PromptPlayer", "announcement", "announcer"]


class PromptPlayer(Protocol):
    """What an announcement needs of the caller's session (`AgiSession.stream_file`)."""

    async def stream_file(self, name: str, escape_digits: str = "") -> Any: ...


def announcer(session: PromptPlayer) -> Announce:
    """`connect_call`'s ``announce``: the caller's place and the expected wait, in Russian
    («Ваш номер в очереди: три. Примерное время ожидания: две минуты»), the wait rounded up
    to whole minutes. The first in line hears that they are next instead of a number."""

    async def announce(position: int, expected_wait: float | None, stop: asyncio.Event) -> None:
        for name in announcement(position, expected_wait):
            if stop.is_set():  # an operator is waiting for this caller: cut it short
                return
            await session.stream_file(name)

    return announce


def announcement(position: int, expected_wait: float | None) -> list[str]:
    """The prompt files of one announcement (see `announcer`)."""
    from hotline import say_ru

    if position <= 1:
        files = ["hotline/queue-next"]
    else:
        files = ["hotline/queue-position", *say_ru.number_files(position, "m")]
    if expected_wait is not None and position > 1:
        minutes = max(1, math.ceil(expected_wait / 60))
        files += ["hotline/queue-wait", *say_ru.number_files(minutes, "f")]
        files.append(say_ru.plural_form(minutes, *_MINUTE_FILES))
    return files


_MINUTE_FILES = ("hotline/say-minute", "hotline/say-minutes-few", "hotline/say-minutes-many")
