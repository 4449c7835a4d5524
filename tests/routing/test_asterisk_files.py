"""The Asterisk files generated from the groups and operators (routing.asterisk_files): their
text for the shipped dialplans/, `hotline acd asterisk-files`, and the running controller
rewriting them after an admin's edit."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from pathlib import Path

import pytest

from controller.cli import main
from routing.asterisk_files import (
    MEMBERS_FILE,
    SEATS_FILE,
    member_name,
    penalty_of,
    queue_members_text,
    seats_text,
)
from routing.groups import load_groups
from routing.operators import OperatorSpec, load_operators
from tests.routing.test_admin_http import PENSIONS

DIALPLANS = Path(__file__).resolve().parents[2] / "dialplans"


def shipped() -> tuple[dict, dict]:  # type: ignore[type-arg]
    groups = load_groups(DIALPLANS / "groups.yaml")
    return groups, load_operators(DIALPLANS / "operators.yaml", set(groups))


def sections(text: str) -> dict[str, list[str]]:
    """``[name](...)`` -> the lines under it."""
    found: dict[str, list[str]] = {}
    current: list[str] = []
    for line in text.splitlines():
        if line.startswith("["):
            current = found.setdefault(line, [])
        elif line and not line.startswith(";"):
            current.append(line)
    return found


def test_every_skilled_operator_is_a_member_with_the_penalty_of_their_level() -> None:
    groups, operators = shipped()
    text = queue_members_text(groups, operators.values())
    queues = sections(text)
    assert queues["[hotline-emergency](+)"] == ["member => PJSIP/1007,0,Морозова Елена,PJSIP/1007"]
    assert queues["[hotline-documents](+)"] == [
        "member => PJSIP/1005,3,Смирнова Ольга,PJSIP/1005",
        "member => PJSIP/1006,5,Волков Дмитрий,PJSIP/1006",
        "member => PJSIP/1001,6,Иванова Анна,PJSIP/1001",
    ]
    for group_id in groups:
        skilled = [op for op in operators.values() if group_id in op.skills]
        assert len(queues.get(f"[hotline-{group_id}](+)", [])) == len(skilled)
    assert [penalty_of(level) for level in (10, 9, 1)] == [0, 1, 9]
    with pytest.raises(ValueError):
        penalty_of(0)


def test_a_group_with_no_operators_gets_no_section() -> None:
    groups, operators = shipped()
    lonely = replace(groups["general"], id="pensions", name="Пенсии")
    text = queue_members_text({**groups, "pensions": lonely}, operators.values())
    assert "hotline-pensions" not in text
    assert queue_members_text({"pensions": lonely}, operators.values()).count("[") == 0


def test_names_are_escaped_for_asterisk_and_line_breaks_refused() -> None:
    assert member_name("Иванова Анна") == "Иванова Анна"
    assert member_name('А, "Б" (В; [Г]) \\') == 'А\\, \\"Б\\" \\(В\\; \\[Г\\]\\) \\\\'
    odd = OperatorSpec("odd", "Петров, Сергей", "PJSIP/1099", {"general": 5})
    assert "member => PJSIP/1099,5,Петров\\, Сергей,PJSIP/1099" in queue_members_text(
        {"general": shipped()[0]["general"]}, [odd]
    )
    for broken in ("Петров\nСергей", "Петров\rСергей", "Петров\u2028Сергей"):
        with pytest.raises(ValueError, match="one line"):
            member_name(broken)


def test_seats_come_from_the_templates_without_passwords() -> None:
    _, operators = shipped()
    other = OperatorSpec("sip", "Другой", "SIP/2001", {"general": 5})
    remote = OperatorSpec("remote", "Удалённый", "PJSIP/2002@elsewhere", {"general": 5})
    text = seats_text([*operators.values(), other, remote])
    seats = sections(text)
    assert seats["[1001](operator-endpoint)"] == ["auth = 1001-auth", "aors = 1001"]
    assert "[1008](operator-aor)" in seats
    assert len(seats) == 2 * len(operators)  # SIP/2001 and PJSIP/2002@elsewhere are no seats
    assert not [line for line in text.splitlines() if line.startswith("password")]
    assert "operator-auth" not in "".join(seats)


def test_the_command_writes_both_files(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "asterisk"
    assert main(["acd", "asterisk-files", "--out", str(out)]) == 0
    groups, operators = shipped()
    assert (out / MEMBERS_FILE).read_text("utf-8") == queue_members_text(groups, operators.values())
    assert (out / SEATS_FILE).read_text("utf-8") == seats_text(operators.values())
    assert str(out / MEMBERS_FILE) in capsys.readouterr().out
    broken = tmp_path / "operators.yaml"
    broken.write_text("operators:\n  x:\n    name: X\n", "utf-8")
    monkeypatch.setenv("HOTLINE_ROUTING_OPERATORS_FILE", str(broken))
    assert main(["acd", "asterisk-files", "--out", str(tmp_path / "other")]) == 2
    assert "operators.yaml:3" in capsys.readouterr().err
    assert not (tmp_path / "other").exists()


async def test_the_controller_rewrites_the_files_after_an_api_edit(tmp_path: Path) -> None:
    from aiohttp import ClientSession
    from controllers import admin_environment, controller_settings, started

    environment, files = admin_environment(tmp_path, DIALPLANS)
    out = tmp_path / "asterisk"
    settings = controller_settings(
        tmp_path, {**environment, "HOTLINE_ROUTING_ASTERISK_FILES_DIR": str(out)}
    )
    async with started(settings) as controller:
        members = out / MEMBERS_FILE
        assert "member => PJSIP/1001,2,Иванова Анна" in members.read_text("utf-8")
        base = f"http://127.0.0.1:{controller.http_port}"
        auth = {"Authorization": "Bearer t0k"}
        async with ClientSession() as http:
            async with http.put(
                f"{base}/api/operators/ivanova/skills",
                json={"general": 10, "emergency": 3},
                headers=auth,
            ) as reply:
                assert reply.status == 200, await reply.text()
            text = members.read_text("utf-8")
            assert "member => PJSIP/1001,0,Иванова Анна,PJSIP/1001" in text
            assert "member => PJSIP/1001,7,Иванова Анна,PJSIP/1001" in text  # emergency
            assert "PJSIP/1001,6," not in text  # no longer in documents
            novice = {"name": "Новикова Вера", "device": "PJSIP/1010", "skills": {"tech2": 2}}
            async with http.put(
                f"{base}/api/operators/novikova", json=novice, headers=auth
            ) as reply:
                assert reply.status == 200, await reply.text()
            assert "[1010](operator-endpoint)" in (out / SEATS_FILE).read_text("utf-8")
            members.unlink()  # a group edit rewrites the files too
            async with http.put(
                f"{base}/api/groups/pensions", json=PENSIONS, headers=auth
            ) as reply:
                assert reply.status == 200, await reply.text()
            assert "hotline-pensions" not in members.read_text("utf-8")  # nobody has the skill
        # a hand edit of the operators file is followed too
        operators = files / "operators.yaml"
        operators.write_text(
            operators.read_text("utf-8").replace("{tech1: 6, tech2: 9}", "{tech1: 6}"), "utf-8"
        )
        async with asyncio.timeout(5):
            while "PJSIP/1004,1," in members.read_text("utf-8"):  # noqa: ASYNC110
                await asyncio.sleep(0.02)
        assert "PJSIP/1010,8,Новикова Вера" in members.read_text("utf-8")
