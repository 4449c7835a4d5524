"""Check digits of what callers key in: SNILS, INN, application numbers, phone numbers.

Shared by the menus (what a caller keys in) and the ACD (callback numbers and applications).

Callers use a keypad, so every validator takes a string of digits (a stray space, dash or the
terminator `#` is tolerated and dropped) and answers with a `Validation`: truthy when the input is
valid, with the normalised value to pass on to the operator and, when invalid, a reason in Russian
the menu may log or read.

Formats:
- snils: 11 digits, the last two a check number over the first nine (weights 9..1; sum < 100 is the
  check itself, 100 and 101 give 00, larger sums are taken mod 101 first). Numbers up to
  001-001-998 were issued before the check existed and are exempt. A digit repeated three times
  in a row is never issued, so such a number is rejected too.
- inn: 10 digits (legal entity, one check digit) or 12 digits (individual, two check digits),
  each check digit = (weighted sum mod 11) mod 10.
- application: this hotline's own format: 10 digits, the last a Luhn check digit over the first
  nine, so one mistyped digit or two swapped neighbours are caught before the status lookup.
- contact: a contact number of the registry as keyed in: 12 digits (year, 7-digit sequence, a
  Luhn check digit over the eleven before it); `workspace.numbers` prints and parses it.
- phone: a Russian number as 11 digits starting with 7 or 8, or 10 digits starting with 9 (a
  mobile number without the country code); normalised to 11 digits starting with 7.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass

_IGNORED = re.compile(r"[\s\-#()+]")


@dataclass(frozen=True, slots=True)
class Validation:
    """The verdict on one input; truthy when the input is valid."""

    ok: bool
    normalized: str = ""
    reason: str = ""

    def __bool__(self) -> bool:
        return self.ok


def _valid(normalized: str) -> Validation:
    return Validation(True, normalized=normalized)


def _invalid(reason: str) -> Validation:
    return Validation(False, reason=reason)


def _digits_of(raw: str) -> str | None:
    """The digits of the input with separators dropped, or None if anything else is there."""
    cleaned = _IGNORED.sub("", raw)
    if not cleaned.isascii() or not cleaned.isdigit():
        return None
    return cleaned


def snils_check_number(first_nine: str) -> int:
    """The two-digit check number of a SNILS from its first nine digits."""
    total = sum(
        int(digit) * weight for digit, weight in zip(first_nine, range(9, 0, -1), strict=True)
    )
    if total > 101:
        total %= 101
    return 0 if total in (100, 101) else total


def validate_snils(raw: str) -> Validation:
    digits = _digits_of(raw)
    if digits is None or len(digits) != 11:
        return _invalid("СНИЛС состоит из 11 цифр")
    body, check = digits[:9], int(digits[9:])
    if int(body) <= 1001998:
        return _valid(digits)  # issued before check numbers existed
    if re.search(r"(\d)\1\1", body):
        return _invalid("в СНИЛС не бывает трёх одинаковых цифр подряд")
    if snils_check_number(body) != check:
        return _invalid("контрольное число СНИЛС не совпадает")
    return _valid(digits)


_INN10_WEIGHTS = (2, 4, 10, 3, 5, 9, 4, 6, 8)
_INN11_WEIGHTS = (7, 2, 4, 10, 3, 5, 9, 4, 6, 8)
_INN12_WEIGHTS = (3, 7, 2, 4, 10, 3, 5, 9, 4, 6, 8)


def inn_check_digit(digits: str, weights: tuple[int, ...]) -> int:
    """One INN check digit over the leading digits with the given weights."""
    total = sum(int(digit) * weight for digit, weight in zip(digits, weights, strict=True))
    return total % 11 % 10


def validate_inn(raw: str) -> Validation:
    digits = _digits_of(raw)
    if digits is None or len(digits) not in (10, 12):
        return _invalid("ИНН состоит из 10 цифр у организации или 12 цифр у гражданина")
    if len(digits) == 10:
        ok = inn_check_digit(digits[:9], _INN10_WEIGHTS) == int(digits[9])
    else:
        ok = inn_check_digit(digits[:10], _INN11_WEIGHTS) == int(digits[10]) and inn_check_digit(
            digits[:11], _INN12_WEIGHTS
        ) == int(digits[11])
    return _valid(digits) if ok else _invalid("контрольные цифры ИНН не совпадают")


def luhn_check_digit(body: str) -> int:
    """The Luhn digit that makes `body + digit` pass the Luhn test."""
    total = 0
    for position, char in enumerate(reversed(body)):
        value = int(char)
        if position % 2 == 0:  # doubled: these sit right before the check digit, every other
            value = value * 2 - 9 if value > 4 else value * 2
        total += value
    return (10 - total % 10) % 10


def validate_application(raw: str) -> Validation:
    digits = _digits_of(raw)
    if digits is None or len(digits) != 10:
        return _invalid("номер заявления состоит из 10 цифр")
    if luhn_check_digit(digits[:9]) != int(digits[9]):
        return _invalid("в номере заявления ошибка: контрольная цифра не совпадает")
    return _valid(digits)


def validate_contact(raw: str) -> Validation:
    digits = _digits_of(raw)
    if digits is None or len(digits) != 12:
        return _invalid("номер обращения состоит из 12 цифр")
    if luhn_check_digit(digits[:11]) != int(digits[11]) or int(digits[4:11]) == 0:
        return _invalid("в номере обращения ошибка: контрольная цифра не совпадает")
    return _valid(digits)


def validate_phone(raw: str) -> Validation:
    digits = _digits_of(raw)
    if digits is None:
        return _invalid("номер телефона состоит только из цифр")
    if len(digits) == 11 and digits[0] in "78":
        return _valid("7" + digits[1:])
    if len(digits) == 10 and digits[0] == "9":
        return _valid("7" + digits)
    return _invalid("номер телефона: 11 цифр с 7 или 8 в начале или 10 цифр с 9 в начале")


Validator = Callable[[str], Validation]

VALIDATORS: Mapping[str, Validator] = {
    "snils": validate_snils,
    "inn": validate_inn,
    "application": validate_application,
    "phone": validate_phone,
    "contact": validate_contact,
}
