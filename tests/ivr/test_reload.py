"""Live reload of the menu files: a good change serves new calls while calls in progress finish
on their version; a broken file never replaces the last good one and is reported with
file:line, a log line at ERROR and metrics; every accepted version is kept with its time and
author and can be rolled back to. Calls go through the real FastAGI server, driven by a raw
Asterisk peer that answers each command the way Asterisk does."""

from __future__ import annotations

import argparse
import json
import logging
import os
import pwd
import shutil
from collections.abc import AsyncIterator, Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from agi_peer import AsteriskPeer, env_bytes, eventually, metric, serving

from hotline.versions import VersionStore
from ivr.cli import add_commands
from ivr.entry import CallEntry
from ivr.menu.library import load_library
from ivr.menu.model import Services
from ivr.menu.watch import MenuWatcher
from ivr.settings import IvrSettings

DIALPLANS = Path(__file__).resolve().parents[2] / "dialplans"
NUMBER = "88009000009"


def menu_text(version: str) -> str:
    """A two-prompt menu whose prompts say which version played them."""
    return f"""\
number: "{NUMBER}"
title: проба
group: general
start: first
nodes:
  first: {{kind: play, prompts: [hotline/{version}-first], next: second}}
  second: {{kind: play, prompts: [hotline/{version}-second], next: bye}}
  bye: {{kind: hangup}}
"""


class Clock:
    """The versions' clock: one minute later at each reading."""

    def __init__(self) -> None:
        self.now = datetime(2026, 11, 27, 9, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        self.now += timedelta(minutes=1)
        return self.now


class Setup:
    def __init__(self, root: Path) -> None:
        self.dialplans = root / "dialplans"
        self.dialplans.mkdir()
        self.menu_file = self.dialplans / f"{NUMBER}.yaml"
        self.menu_file.write_text(menu_text("v1"), "utf-8")
        self.settings = IvrSettings(
            dialplans_dir=self.dialplans,
            versions_dir=root / "versions",
            general_number=NUMBER,
            reload_interval=0.01,
        )
        library, problems = load_library(self.dialplans, Services(), NUMBER)
        assert problems == []
        self.entry = CallEntry(None, "test-node", settings=self.settings, library=library)
        self.store = VersionStore(self.settings.versions_dir, Clock())
        self.watcher = MenuWatcher(self.entry, self.dialplans, self.store, 0.01)

    def serving_prompts(self) -> tuple[str, ...]:
        picked = self.entry.library.pick(NUMBER)
        assert picked is not None
        return tuple(name for node in picked[0].nodes.values() for name, _ in node.prompts())


@pytest.fixture
async def setup(tmp_path: Path) -> AsyncIterator[Setup]:
    found = Setup(tmp_path)
    yield found
    await found.watcher.close()


def me() -> str:
    return pwd.getpwuid(os.getuid()).pw_name


# --- calls over FastAGI -------------------------------------------------------------------

REPLIES = {
    "ANSWER": "200 result=0",
    "SET VARIABLE": "200 result=1",
    "STREAM FILE": "200 result=0 endpos=8000",
    "HANGUP": "200 result=1",
}


async def call(port: int) -> AsteriskPeer:
    return await AsteriskPeer.connect(
        port,
        env_bytes(
            network_script=f"hotline?did={NUMBER}",
            request=f"agi://127.0.0.1:4573/hotline?did={NUMBER}",
            extension=NUMBER,
        ),
    )


async def play_along(peer: AsteriskPeer, until: str | None = None) -> list[str]:
    """Answer the server's commands as Asterisk would; stop (without replying) at the first
    command starting with `until`, or when the server closes the call."""
    commands: list[str] = []
    while line := await peer.read_line():
        command = line.decode().rstrip("\n")
        commands.append(command)
        if until is not None and command.startswith(until):
            return commands
        reply = next(r for prefix, r in REPLIES.items() if command.startswith(prefix))
        await peer.reply(reply)
    return commands


def played(commands: list[str]) -> list[str]:
    return [c.split()[2] for c in commands if c.startswith("STREAM FILE")]


async def test_a_call_in_progress_keeps_its_version_while_a_new_call_gets_the_new_one(
    setup: Setup,
) -> None:
    await setup.watcher.check()
    async with serving({"hotline": setup.entry}) as server:
        early = await call(server.port)
        # the early caller is listening to the first prompt of version 1...
        assert played(await play_along(early, until="STREAM FILE")) == ["hotline/v1-first"]
        setup.menu_file.write_text(menu_text("v2"), "utf-8")
        report = await setup.watcher.check()
        assert [v.number for v in report.accepted] == [NUMBER] and report.rejected == []
        # ...a caller who dials now gets version 2 from the start...
        late = await call(server.port)
        assert played(await play_along(late)) == ["hotline/v2-first", "hotline/v2-second"]
        # ...and the early caller finishes on version 1.
        await early.reply(REPLIES["STREAM FILE"])
        rest = await play_along(early)
        assert played(rest) == ["hotline/v1-second"] and rest[-2] == "HANGUP"
        assert rest[-1] == "SET VARIABLE HOTLINE_DONE 1"  # the entry finished the call
        await early.close()
        await late.close()


async def test_broken_yaml_over_a_good_file_is_refused_loudly_and_the_old_menu_serves(
    setup: Setup, caplog: pytest.LogCaptureFixture
) -> None:
    await setup.watcher.check()
    rejected_before = metric("hotline_ivr_menu_rejected_total", number=NUMBER)
    good = setup.menu_file.read_bytes()
    # an editor's half-done change: an unclosed list on line 6
    setup.menu_file.write_text(menu_text("v2").replace("next: second}", "next: [second}"), "utf-8")
    with caplog.at_level(logging.ERROR, logger="ivr"):
        report = await setup.watcher.check()
    assert report.accepted == []
    (problem,) = report.rejected
    assert str(problem).startswith(f"{setup.menu_file}:6: not valid YAML")
    errors = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
    assert any(f"{setup.menu_file}:6: not valid YAML" in m for m in errors), errors
    assert metric("hotline_ivr_menu_rejected_total", number=NUMBER) == rejected_before + 1
    assert metric("hotline_ivr_menu_broken", number=NUMBER) == 1
    assert setup.serving_prompts() == ("hotline/v1-first", "hotline/v1-second")
    async with serving({"hotline": setup.entry}) as server:
        peer = await call(server.port)
        assert played(await play_along(peer)) == ["hotline/v1-first", "hotline/v1-second"]
        await peer.close()
    # refused once, not at every look; the broken bytes were never kept as a version
    assert (await setup.watcher.check()).rejected == []
    assert [v.sha256 for v in setup.store.versions(NUMBER)] == [
        setup.store.versions(NUMBER)[0].sha256
    ]
    assert setup.store.content(setup.store.versions(NUMBER)[0]) == good
    # the admin fixes the file: served, and the alarm clears
    setup.menu_file.write_text(menu_text("v3"), "utf-8")
    assert [v.number for v in (await setup.watcher.check()).accepted] == [NUMBER]
    assert setup.serving_prompts()[0] == "hotline/v3-first"
    assert metric("hotline_ivr_menu_broken", number=NUMBER) == 0


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (lambda t: t.replace("next: bye", "next: byee"), ":7: node 'second' goes to 'byee'"),
        (lambda t: t.replace("kind: hangup", "kind: hangupp"), ":8: node 'bye' has an unknown"),
        (lambda t: t.replace("second: {kind: play", "second: {kind: play, timeout: 3"), ":7:"),
        (lambda t: "", ":1: the file is empty"),
    ],
    ids=["dangling-target", "unknown-kind", "unknown-field", "emptied"],
)
async def test_each_kind_of_broken_edit_is_refused_with_file_and_line(
    setup: Setup, change: Callable[[str], str], expected: str
) -> None:
    await setup.watcher.check()
    setup.menu_file.write_text(change(menu_text("v2")), "utf-8")
    (problem, *_) = (await setup.watcher.check()).rejected
    assert str(problem).startswith(f"{setup.menu_file}{expected}"), str(problem)
    assert setup.serving_prompts()[0] == "hotline/v1-first"


async def test_bytes_that_are_not_utf8_are_refused(setup: Setup) -> None:
    await setup.watcher.check()
    setup.menu_file.write_bytes(menu_text("v2").encode("utf-8") + b"title: \xff\xfe\n")
    (problem,) = (await setup.watcher.check()).rejected
    assert str(problem) == f"{setup.menu_file}:9: not UTF-8 text"
    assert setup.serving_prompts()[0] == "hotline/v1-first"


def cli(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    add_commands(parser.add_subparsers())
    return parser.parse_args(argv)


class Settings:
    """What the commands read of hotline's Settings: the ``[ivr]`` section."""

    def __init__(self, ivr: IvrSettings) -> None:
        self.ivr = ivr


async def test_versions_are_listed_with_time_and_author_and_a_rollback_is_recorded(
    setup: Setup, capsys: pytest.CaptureFixture[str]
) -> None:
    settings = Settings(setup.settings)
    await setup.watcher.check()  # version 1: the file in service at start
    setup.menu_file.write_text(menu_text("v2"), "utf-8")
    await setup.watcher.check()  # version 2
    first, second = setup.store.versions(NUMBER)
    assert (first.saved_at, second.saved_at) == (
        "2026-11-27T09:01:00+00:00",
        "2026-11-27T09:02:00+00:00",
    )
    assert first.author == second.author == me()  # the files' owner
    assert metric("hotline_ivr_menu_version", number=NUMBER) == 2

    args = cli(["menus", "versions", NUMBER])
    assert await args.run(args, settings) == 0
    listing = capsys.readouterr().out.splitlines()
    assert listing[0] == f"{NUMBER}: 2 versions, oldest first (* = the file in dialplans)"
    assert listing[1].split() == ["1", first.id, first.saved_at, me()]
    assert listing[2].split() == ["*", "2", second.id, second.saved_at, me()]

    args = cli(["menus", "rollback", NUMBER, first.id[-8:], "--author", "ivanova"])
    assert await args.run(args, settings) == 0
    assert setup.menu_file.read_text("utf-8") == menu_text("v1")
    third = setup.store.versions(NUMBER)[-1]
    assert (third.author, third.note, third.sha256) == (
        "ivanova",
        f"rollback to {first.id}",
        first.sha256,
    )
    # the watcher puts it in service and does not record it a second time
    report = await setup.watcher.check()
    assert [v.id for v in report.accepted] == [third.id]
    assert setup.serving_prompts()[0] == "hotline/v1-first"
    assert len(setup.store.versions(NUMBER)) == 3
    assert metric("hotline_ivr_menu_version", number=NUMBER) == 3
    index = json.loads((setup.settings.versions_dir / NUMBER / "index.json").read_text("utf-8"))
    assert [entry["author"] for entry in index] == [me(), me(), "ivanova"]


async def test_rollback_to_an_unknown_or_current_version_changes_nothing(
    setup: Setup, capsys: pytest.CaptureFixture[str]
) -> None:
    settings = Settings(setup.settings)
    await setup.watcher.check()
    (only,) = setup.store.versions(NUMBER)
    args = cli(["menus", "rollback", NUMBER, "20991231"])
    assert await args.run(args, settings) == 1
    assert "no version '20991231'" in capsys.readouterr().err
    args = cli(["menus", "rollback", NUMBER, only.id])
    assert await args.run(args, settings) == 0
    assert "already version" in capsys.readouterr().out
    assert len(setup.store.versions(NUMBER)) == 1
    args = cli(["menus", "versions", "88000000000"])
    assert await args.run(args, settings) == 1


async def test_a_version_that_no_longer_passes_is_not_rolled_back(
    setup: Setup, capsys: pytest.CaptureFixture[str]
) -> None:
    # version 1 uses opening hours; once hours.yaml is gone it cannot serve any more
    shutil.copy(DIALPLANS / "calendar.yaml", setup.dialplans / "calendar.yaml")
    shutil.copy(DIALPLANS / "hours.yaml", setup.dialplans / "hours.yaml")
    with_hours = menu_text("v1").replace("start: first", "hours: hours.yaml\nstart: first")
    setup.menu_file.write_text(with_hours, "utf-8")
    await setup.watcher.check()
    setup.menu_file.write_text(menu_text("v2"), "utf-8")
    await setup.watcher.check()
    (setup.dialplans / "hours.yaml").unlink()
    first = setup.store.versions(NUMBER)[0]
    args = cli(["menus", "rollback", NUMBER, first.id])
    assert await args.run(args, Settings(setup.settings)) == 1
    assert "hours file 'hours.yaml' does not exist" in capsys.readouterr().err
    assert setup.menu_file.read_text("utf-8") == menu_text("v2")
    assert len(setup.store.versions(NUMBER)) == 2


async def test_a_broken_file_at_start_up_is_served_from_its_last_stored_version(
    tmp_path: Path,
) -> None:
    first = Setup(tmp_path)
    await first.watcher.check()  # the good file is recorded
    first.menu_file.write_text("number: [\n", "utf-8")
    # the controller restarts with the broken file on disk
    library, problems = load_library(first.dialplans, Services(), NUMBER)
    assert problems and library.pick(NUMBER) is None
    entry = CallEntry(None, "n", settings=first.settings, library=library)
    watcher = MenuWatcher(entry, first.dialplans, first.store, 0.01)
    report = await watcher.check()
    assert report.rejected and report.accepted == []
    picked = entry.library.pick(NUMBER)
    assert picked is not None and picked[0].start == "first"


async def test_removed_file_falls_back_to_the_general_menu(setup: Setup) -> None:
    other = setup.dialplans / "88009000010.yaml"
    other.write_text(menu_text("other").replace(NUMBER, "88009000010"), "utf-8")
    await setup.watcher.check()
    assert setup.entry.library.pick("88009000010")[0].number == "88009000010"  # type: ignore[index]
    other.unlink()
    report = await setup.watcher.check()
    assert report.removed == ["88009000010"]
    assert setup.entry.library.pick("88009000010")[0].number == NUMBER  # type: ignore[index]


async def test_a_second_file_claiming_a_served_number_is_refused(setup: Setup) -> None:
    await setup.watcher.check()
    (setup.dialplans / "88009000011.yaml").write_text(menu_text("dup"), "utf-8")
    (problem,) = (await setup.watcher.check()).rejected
    assert f"number {NUMBER} already has {setup.menu_file}" in str(problem)
    assert setup.serving_prompts()[0] == "hotline/v1-first"


async def test_broken_opening_hours_keep_the_old_hours(setup: Setup) -> None:
    shutil.copy(DIALPLANS / "calendar.yaml", setup.dialplans / "calendar.yaml")
    hours = setup.dialplans / "hours.yaml"
    shutil.copy(DIALPLANS / "hours.yaml", hours)
    setup.menu_file.write_text(
        menu_text("v1").replace("start: first", "hours: hours.yaml\nstart: first"), "utf-8"
    )
    await setup.watcher.check()
    served = setup.entry.library.pick(NUMBER)
    assert served is not None and served[1].hours is not None
    hours.write_text("timezone: [\n", "utf-8")
    report = await setup.watcher.check()
    assert report.rejected and str(report.rejected[0]).startswith(f"{hours}:")
    assert setup.entry.library.pick(NUMBER) == served
    shutil.copy(DIALPLANS / "hours.yaml", hours)
    hours.write_text(hours.read_text("utf-8") + "\n", "utf-8")
    assert (await setup.watcher.check()).rescheduled == [NUMBER]


async def test_the_polling_task_picks_up_a_change_by_itself(setup: Setup) -> None:
    setup.watcher.start()
    await eventually(lambda: setup.store.versions(NUMBER))
    setup.menu_file.write_text(menu_text("v2"), "utf-8")
    await eventually(lambda: setup.serving_prompts()[0] == "hotline/v2-first")
    await setup.watcher.close()


def test_settings_defaults_are_documented() -> None:
    defaults = IvrSettings()
    assert defaults.reload_interval == 2.0
    assert defaults.versions_dir.parts[-2:] == ("var", "dialplan-versions")


@pytest.fixture(autouse=True)
def _no_leftover_temporary_files(tmp_path: Path) -> Iterator[None]:
    yield
    leftovers = [p for p in tmp_path.rglob(".*.tmp*")]
    assert leftovers == []
