"""``collect``: digits checked (length, SNILS/INN/application/phone check digits) and stored;
what the caller typed shows masked in the path and logs."""

from __future__ import annotations

import pytest

COLLECT = """\
  a:
    kind: collect
    prompts: [hotline/enter-snils]
    store: snils
    length: 11
    validate: snils
    retries: 2
    invalid: hotline/invalid-snils
    next: q
    fallback: operator
  q: {kind: queue, group: social}
  operator: {kind: queue, group: general}
"""
GOOD_SNILS = "11223344595"


async def test_a_valid_number_is_stored_and_passed_to_the_operator(run_menu, path_of) -> None:
    result, channel = await run_menu(COLLECT, [GOOD_SNILS])
    assert result.variables["snils"] == GOOD_SNILS
    assert str(result.end) == "queue social"
    assert channel.variables["HOTLINE_SNILS"] == GOOD_SNILS
    # the path (printed by `hotline menus try`, logged by the engine) masks the number
    assert GOOD_SNILS not in " ".join(path_of(result))
    assert path_of(result, "input") == ["input *********95"]


@pytest.mark.parametrize("typed", ["11223344594", "1122334459", "11122233345"])
async def test_a_wrong_check_number_or_length_is_refused(run_menu, typed: str) -> None:
    result, channel = await run_menu(COLLECT, [typed, typed])
    assert "snils" not in result.variables
    assert str(result.end) == "queue general"
    assert channel.played.count("hotline/invalid-snils") == 2


async def test_a_retry_after_a_typo_succeeds(run_menu) -> None:
    result, _ = await run_menu(COLLECT, ["11223344594", GOOD_SNILS])
    assert result.variables["snils"] == GOOD_SNILS


async def test_nothing_typed_counts_as_an_attempt(run_menu, path_of) -> None:
    result, _ = await run_menu(COLLECT, ["", ""])
    assert path_of(result, "timeout", "fallback") == ["timeout", "timeout", "fallback operator"]


@pytest.mark.parametrize(
    ("kind", "good", "bad"),
    [
        ("inn", "7707083893", "7707083894"),
        ("application", "1234567897", "1234567890"),
        ("phone", "89161234567", "12345"),
    ],
)
async def test_each_validation(run_menu, kind: str, good: str, bad: str) -> None:
    nodes = COLLECT.replace("validate: snils", f"validate: {kind}").replace(
        "length: 11", "min_length: 5\n    max_length: 12"
    )
    accepted, _ = await run_menu(nodes, [good])
    refused, _ = await run_menu(nodes, [bad, bad])
    assert str(accepted.end) == "queue social" and str(refused.end) == "queue general"
