"""Contact numbers: what a person reads, says and keys in to name one request in the registry.

Format: ``YYYY-NNNNNNN-C``, the year the contact was opened, its sequence number within that
year (seven digits, zero-padded) and a Luhn check digit over the eleven digits before it, so
one mistyped digit or two swapped neighbours are caught before anything is looked up; the
same check the application numbers use (`hotline.validators.luhn_check_digit`).

On a keypad a caller types the twelve digits and `#`; dashes and spaces are ignored when a
person types it into the desktop.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final

from hotline.validators import luhn_check_digit

__all__ = ["SEQUENCE_DIGITS", "ContactNumber", "parse_contact_number"]

SEQUENCE_DIGITS: Final = 7
_SEPARATORS: Final = re.compile(r"[\s\-#]")
_DIGITS: Final = 4 + SEQUENCE_DIGITS + 1


@dataclass(frozen=True, slots=True, order=True)
class ContactNumber:
    """One contact's number; `str()` gives the printed form ``2026-0001234-7``."""

    year: int
    sequence: int

    def __post_init__(self) -> None:
        if not 1000 <= self.year <= 9999:
            raise ValueError(f"a contact number's year has four digits, not {self.year}")
        if not 1 <= self.sequence < 10**SEQUENCE_DIGITS:
            raise ValueError(f"a contact number's sequence is 1..9999999, not {self.sequence}")

    @property
    def body(self) -> str:
        return f"{self.year:04d}{self.sequence:0{SEQUENCE_DIGITS}d}"

    @property
    def check_digit(self) -> int:
        return luhn_check_digit(self.body)

    @property
    def digits(self) -> str:
        """The twelve digits a caller keys in."""
        return f"{self.body}{self.check_digit}"

    def __str__(self) -> str:
        return f"{self.year:04d}-{self.sequence:0{SEQUENCE_DIGITS}d}-{self.check_digit}"


def parse_contact_number(raw: str) -> ContactNumber | None:
    """The contact number in `raw` (printed or keyed form), or None if it is not a valid one.

    None for anything else: wrong length, letters, non-ASCII digits, a check digit that does
    not match, sequence zero. It never says which, so a guessing caller learns nothing.
    """
    digits = _SEPARATORS.sub("", raw)
    if len(digits) != _DIGITS or not digits.isascii() or not digits.isdigit():
        return None
    if luhn_check_digit(digits[:-1]) != int(digits[-1]):
        return None
    try:
        return ContactNumber(int(digits[:4]), int(digits[4:-1]))
    except ValueError:
        return None
