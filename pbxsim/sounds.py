"""The simulated sound library: how long each prompt plays, and which files a number is said with.

Media is simulated, not played: a prompt lasts as long as its sound file, counted in 8 kHz
samples, and ``endpos`` is counted in the 20 ms frames a file stream reads.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Final

SAMPLE_RATE: Final = 8000


FRAME_SAMPLES: Final = 160  # one 20 ms frame at 8 kHz: the unit a file stream reads in


_SAY_FILE_SAMPLES: Final = 3704  # one Russian digit: SAY DIGITS 123 took 1.389 s


# Lengths in samples. beep, the digits and digits/20 are measured from the transcript
# (endpos=3404; SAY DIGITS 123 and SAY NUMBER 21 durations); the demo prompts are estimates.
DEFAULT_SOUNDS: Final[Mapping[str, int]] = MappingProxyType(
    {
        "beep": 3404,
        "demo-congrats": 20 * SAMPLE_RATE,
        "demo-enterkeywords": 28000,
        "digits/20": 7024,
        **{f"digits/{n}": _SAY_FILE_SAMPLES for n in range(10)},
    }
)


@dataclass(frozen=True)
class SoundLibrary:
    """How long each sound file plays; files in `missing` do not exist (``result=-1``)."""

    samples: Mapping[str, int] = field(default_factory=lambda: DEFAULT_SOUNDS)
    default_samples: int = 2 * SAMPLE_RATE
    missing: frozenset[str] = frozenset()

    def length(self, name: str) -> int | None:
        """Samples in `name`, or None if the file does not exist."""
        if name in self.missing:
            return None
        if name in self.samples:
            return self.samples[name]
        if name.startswith(("digits/", "letters/", "phonetic/")):
            return _SAY_FILE_SAMPLES
        return self.default_samples


def played_samples(elapsed: float, offset: int, length: int) -> int:
    """``endpos`` for a stream stopped after `elapsed` seconds: the frames read so far."""
    samples = int(round(elapsed * SAMPLE_RATE, 6))
    return min(length, offset + (samples // FRAME_SAMPLES + 1) * FRAME_SAMPLES)


def digit_files(text: str) -> list[str]:
    names = {"*": "digits/star", "#": "digits/pound", "-": "digits/minus"}
    return [f"digits/{c}" if c.isdigit() else names[c] for c in text if c.isdigit() or c in names]


def alpha_files(text: str) -> list[str]:
    return [f"digits/{c}" if c.isdigit() else f"letters/{c.lower()}" for c in text if c.isalnum()]


def number_files(number: int) -> list[str]:
    """The sound files ast_say_number plays, in the digits/ naming every language shares."""
    if number < 0:
        return ["digits/minus", *number_files(-number)]
    if number <= 20:
        return [f"digits/{number}"]
    for size, word in ((1_000_000, "million"), (1000, "thousand"), (100, "hundred")):
        if number >= size:
            head, rest = divmod(number, size)
            return [*number_files(head), f"digits/{word}", *(number_files(rest) if rest else [])]
    tens, units = divmod(number, 10)
    return [f"digits/{tens * 10}", *([f"digits/{units}"] if units else [])]
