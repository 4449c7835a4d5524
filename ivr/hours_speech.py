"""The opening hours as a caller hears them: one Russian sentence for speech synthesis
(`hotline prompts build` renders it into the out-of-hours prompt)."""

from __future__ import annotations

from datetime import time
from typing import Final

from hotline.hours import DayKind, OpenHours, Window

_KIND_PHRASES: Final[tuple[tuple[DayKind, str], ...]] = (
    ("workday", "в будние дни"),
    ("saturday", "в субботу"),
    ("sunday", "в воскресенье"),
    ("holiday", "в праздничные дни"),
)


_GENITIVE_UNITS: Final = (
    "нуля", "одного", "двух", "трёх", "четырёх", "пяти", "шести", "семи", "восьми", "девяти",
    "десяти", "одиннадцати", "двенадцати", "тринадцати", "четырнадцати", "пятнадцати",
    "шестнадцати", "семнадцати", "восемнадцати", "девятнадцати",
)  # fmt: skip
_GENITIVE_TENS: Final = {20: "двадцати", 30: "тридцати", 40: "сорока", 50: "пятидесяти"}


def genitive_ru(n: int) -> str:
    """0..59 in the genitive, as after «с» and «до»: 8 -> «восьми», 21 -> «двадцати одного»."""
    if not 0 <= n <= 59:
        raise ValueError(f"{n}: ожидалось число от 0 до 59")
    if n < 20:
        return _GENITIVE_UNITS[n]
    tens, unit = divmod(n, 10)
    return _GENITIVE_TENS[tens * 10] + (f" {_GENITIVE_UNITS[unit]}" if unit else "")


def _clock_ru(moment: time) -> str:
    """«восьми», «восьми тридцати»: a time of day after «с»/«до», spelt out for speech synthesis."""
    words = genitive_ru(moment.hour)
    return words if moment.minute == 0 else f"{words} {genitive_ru(moment.minute)}"


def _range_ru(window: Window) -> str:
    """«с восьми до двадцати часов»; «часа» after one: «до двадцати одного часа»."""
    unit = "часа" if window.closes.hour % 10 == 1 and window.closes.hour != 11 else "часов"
    if window.opens.minute or window.closes.minute:
        return f"с {_clock_ru(window.opens)} до {_clock_ru(window.closes)}"
    return f"с {_clock_ru(window.opens)} до {_clock_ru(window.closes)} {unit}"


def describe_hours_ru(hours: OpenHours) -> str:
    """The hours as one Russian sentence, the text read to a caller out of hours."""
    parts = []
    for kind, phrase in _KIND_PHRASES:
        window = hours.window_for(kind)
        if window is None:
            parts.append(f"{phrase} — выходной")
        else:
            parts.append(f"{phrase} {_range_ru(window)}")
    return "Горячая линия работает по московскому времени: " + ", ".join(parts) + "."
