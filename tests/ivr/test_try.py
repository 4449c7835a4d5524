"""``hotline menus try``: the real engine and the shipped menus on the console channel, printing the
path; scripted (``--digits``) and interactive (stdin)."""

from __future__ import annotations

import argparse
import io

import pytest

from ivr.cli import add_commands


def parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    add_commands(parser.add_subparsers())
    return parser.parse_args(argv)


async def try_call(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, list[str]]:
    args = parse(["menus", "try", *argv])
    code = await args.run(args, None)
    return code, capsys.readouterr().out.splitlines()


async def test_workday_registration_info_then_operator(capsys) -> None:
    code, lines = await try_call(
        ["88001000001", "--at", "2026-11-27T10:00", "--digits", "2,4,0,5", "--surge", "off"], capsys
    )
    assert code == 0
    assert lines[0] == "88001000001 (общая линия) at 2026-11-27T10:00:00+03:00: open, workday"
    assert "  [password-reset] play hotline/info-password-reset" in lines
    assert "  [queue-registration] queue registration: answered" in lines
    assert "  [rate] rating 5" in lines
    assert lines[-1] == "end: hangup (answered) after queue registration"
    assert "HOTLINE_TOPIC=регистрация и вход" in lines[-2]


async def test_evening_offers_self_service_and_a_callback(capsys) -> None:
    code, lines = await try_call(
        [
            "88001000001",
            "--at",
            "2026-11-27T21:00+03:00",
            "--digits",
            "2,89161234567",
            "--surge",
            "off",
        ],
        capsys,
    )
    assert code == 0
    assert lines[0].endswith("closed, workday")
    assert "  [after-hours] play hotline/hours-info" in lines
    # the phone number is masked in the printed path, but goes with the call in full
    assert "  [ask-callback-phone] input *********67" in lines
    assert "HOTLINE_CALLBACK_PHONE=79161234567" in lines[-2]
    assert lines[-1] == "end: hangup (completed)"


async def test_emergency_number_goes_straight_to_the_on_duty_group_at_night(capsys) -> None:
    code, lines = await try_call(["88005000005", "--at", "2026-01-01T03:00"], capsys)
    assert code == 0
    assert lines[1:3] == [
        "  [welcome] play hotline/greeting-emergency",
        "  [on-duty] queue emergency: answered",
    ]
    assert lines[-1] == "end: queue emergency (answered)"


async def test_unknown_number_hears_the_general_menu(capsys) -> None:
    code, lines = await try_call(
        ["88009999999", "--at", "2026-11-27T10:00", "--digits", "0"], capsys
    )
    assert code == 0
    assert lines[0].startswith("88009999999: no menu, general line 88001000001")


async def test_interactive_reads_the_keys_from_stdin(capsys, monkeypatch) -> None:
    monkeypatch.setattr("sys.stdin", io.StringIO("9\n\n"))
    code, lines = await try_call(
        ["88002000002", "--at", "2026-11-28T10:00", "--surge", "off"], capsys
    )
    assert code == 0
    text = "\n".join(lines)
    assert "[main-menu] invalid 9" in text
    # stdin ends: the caller hangs up
    assert lines[-1] == "end: caller_hangup (hangup)"


async def test_a_bad_time_is_refused(capsys) -> None:
    args = parse(["menus", "try", "88001000001", "--at", "tomorrow"])
    assert await args.run(args, None) == 2
    assert "not an ISO date and time" in capsys.readouterr().err
