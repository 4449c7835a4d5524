"""Contact numbers: printed form, keypad form, and every way a typed one can be wrong."""

from __future__ import annotations

import pytest

from workspace.numbers import ContactNumber, parse_contact_number


def test_printed_form_has_year_sequence_and_luhn_digit() -> None:
    number = ContactNumber(2026, 1234)
    # Luhn over 20260001234, by hand: from the right, every other digit doubled starting with
    # the last: 4->8, 3, 2->4, 1, 0->0, 0, 0->0, 6, 2->4, 0, 2->4; 8+3+4+1+0+0+0+6+4+0+4 = 30
    # -> check digit 0.
    assert str(number) == "2026-0001234-0"
    assert number.digits == "202600012340"


@pytest.mark.parametrize("typed", ["2026-0001234-0", "202600012340#", " 2026 0001234 0 "])
def test_every_typed_form_parses_back(typed: str) -> None:
    assert parse_contact_number(typed) == ContactNumber(2026, 1234)


@pytest.mark.parametrize(
    "typed",
    [
        "2026-0001234-6",  # wrong check digit
        "2026-0001243-0",  # two neighbours swapped
        "2026-000123-0",  # a digit short
        "2026-00012340-0",  # a digit too many
        "2026-000I234-0",  # a letter
        "٢٠٢٦٠٠٠١٢٣٤٠",  # Arabic-Indic digits: isdigit() says yes, the keypad never sends them
        "",
        "2026-0000000-" + "0",  # sequence zero is never issued
    ],
)
def test_wrong_numbers_are_refused_without_saying_why(typed: str) -> None:
    assert parse_contact_number(typed) is None


def test_neighbour_swaps_and_single_typos_are_all_caught() -> None:
    good = ContactNumber(2026, 7_654_321).digits
    for position in range(len(good) - 1):
        swapped = good[:position] + good[position + 1] + good[position] + good[position + 2 :]
        if swapped != good:
            assert parse_contact_number(swapped) is None, swapped
        for other in "0123456789":
            typo = good[:position] + other + good[position + 1 :]
            if typo != good:
                assert parse_contact_number(typo) is None, typo


def test_out_of_range_parts_are_refused_at_construction() -> None:
    with pytest.raises(ValueError):
        ContactNumber(2026, 10_000_000)
    with pytest.raises(ValueError):
        ContactNumber(26, 1)
