"""Check digits of SNILS, INN, application and phone numbers, with values worked out by hand."""

from __future__ import annotations

import pytest

from hotline.validators import VALIDATORS, luhn_check_digit, snils_check_number


@pytest.mark.parametrize(
    ("raw", "normalized"),
    [
        ("11223344595", "11223344595"),  # 9+8+14+12+15+12+12+8+5 = 95
        ("112-233-445 95", "11223344595"),
        ("12345678964", "12345678964"),  # sum 165, 165 mod 101 = 64
        ("91010101000", "91010101000"),  # sum 101 -> 00
        ("91010100100", "91010100100"),  # sum 100 -> 00
        ("00100199800", "00100199800"),  # up to 001-001-998: no check number
        ("00100199877", "00100199877"),
        ("00100201017", "00100201017"),  # first checked block: 7 + 8 + 2 = 17
    ],
)
def test_valid_snils(raw: str, normalized: str) -> None:
    verdict = VALIDATORS["snils"](raw)
    assert verdict
    assert verdict.normalized == normalized


@pytest.mark.parametrize(
    "raw",
    [
        "11223344594",  # wrong check number
        "12345678946",  # check digits swapped
        "00100201071",
        "1122334459",  # 10 digits
        "112233445950",
        "1122334459a",
        "",
        "٠١٢٣٤٥٦٧٨٩٠",  # Arabic-Indic digits are digits to Python, not to a keypad
        "00100299969",  # 999 in a row is never issued (the check number itself is right: 69)
    ],
)
def test_invalid_snils(raw: str) -> None:
    verdict = VALIDATORS["snils"](raw)
    assert not verdict
    assert verdict.reason


def test_snils_check_number_wraps_mod_101() -> None:
    assert snils_check_number("123456789") == 64
    assert snils_check_number("910101010") == 0
    assert snils_check_number("112233445") == 95


@pytest.mark.parametrize(
    "raw",
    [
        "7707083893",  # 14+28+0+21+0+72+12+48+72 = 267; 267 mod 11 = 3
        "500100732259",  # n11: 148 mod 11 = 5; n12: 141 mod 11 = 9
    ],
)
def test_valid_inn(raw: str) -> None:
    assert VALIDATORS["inn"](raw).normalized == raw


@pytest.mark.parametrize(
    "raw",
    ["7707083894", "500100732258", "500100732249", "77070838931", "770708389", "77070838x3"],
)
def test_invalid_inn(raw: str) -> None:
    assert not VALIDATORS["inn"](raw)


def test_application_luhn() -> None:
    # 123456789: doubled from the right 9->9, 7->5, 5->1, 3->6, 1->2; plus 8+6+4+2 = 43 -> 7
    assert luhn_check_digit("123456789") == 7
    assert VALIDATORS["application"]("1234567897")
    assert not VALIDATORS["application"]("1234567898")
    assert not VALIDATORS["application"]("2134567897")  # swapped neighbours are caught
    assert not VALIDATORS["application"]("123456789")
    assert VALIDATORS["application"](
        "0000000000"
    )  # all zeros passes Luhn; the lookup says not found


@pytest.mark.parametrize(
    ("raw", "normalized"),
    [
        ("89161234567", "79161234567"),
        ("79161234567", "79161234567"),
        ("9161234567", "79161234567"),
        ("+7 (916) 123-45-67", "79161234567"),
        ("88001000001", "78001000001"),
    ],
)
def test_valid_phone(raw: str, normalized: str) -> None:
    assert VALIDATORS["phone"](raw).normalized == normalized


@pytest.mark.parametrize(
    "raw", ["69161234567", "4951234567", "916123456", "791612345678", "7916abc4567", ""]
)
def test_invalid_phone(raw: str) -> None:
    assert not VALIDATORS["phone"](raw)


def test_every_validator_rejects_hostile_input_without_raising() -> None:
    for name, validate in VALIDATORS.items():
        for hostile in ("\x00" * 11, "1" * 10_000, "１２３４５６７８９０１", "*#*#"):
            assert not validate(hostile), name
