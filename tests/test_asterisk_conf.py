"""asterisk-conf/: asterisklint passes, a broken copy fails, the pieces agree with each other."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
CONF = ROOT / "asterisk-conf"
LINT = Path(sys.executable).parent / "asterisklint"


def lint(folder: Path) -> subprocess.CompletedProcess[str]:
    environment = {key: value for key, value in os.environ.items() if key != "ALINT_IGNORE"}
    return subprocess.run(
        [str(LINT), "dialplan-check", str(folder / "extensions.conf")],
        capture_output=True,
        text=True,
        env=environment,
        cwd=folder,
        timeout=60,
    )


def test_asterisklint_passes_without_a_warning() -> None:
    result = lint(CONF)
    assert result.returncode == 0, result.stdout + result.stderr
    assert (result.stdout + result.stderr).strip() == ""


@pytest.mark.parametrize(
    ("old", "new", "code"),
    [
        ("Queue(${FALLBACK_QUEUE}", "Queu(${FALLBACK_QUEUE}", "E_APP_MISSING"),
        ("?controller-down,${EXTEN},1)", "?controler-down,${EXTEN},1)", "E_DP_GOTO_NOCONTEXT"),
        ("Goto(fallback,1)", "Goto(fallbak,1)", "W_DP_GOTO_CONTEXT_NOEXTEN"),
        ("AGISTATUS=${AGISTATUS}", "AGISTATUS=${AGISTATUS", "W_APP_BALANCE"),
        ("static=yes", "static = yes", "W_WSH_VARSET"),
    ],
)
def test_a_broken_copy_fails(tmp_path: Path, old: str, new: str, code: str) -> None:
    broken = tmp_path / "asterisk-conf"
    shutil.copytree(CONF, broken)
    dialplan = broken / "extensions.conf"
    text = dialplan.read_text()
    assert old in text
    dialplan.write_text(text.replace(old, new, 1))
    result = lint(broken)
    assert result.returncode != 0
    assert code in result.stdout + result.stderr


def sections(path: Path) -> list[str]:
    return re.findall(r"^\[([^\]]+)\]", path.read_text(), flags=re.MULTILINE)


def test_every_operator_group_has_a_queue() -> None:
    groups = yaml.safe_load((ROOT / "dialplans" / "groups.yaml").read_text())["groups"]
    queues = set(sections(CONF / "queues.conf"))
    missing = [group for group in groups if f"hotline-{group}" not in queues]
    assert not missing, f"queues.conf lacks {missing}"


def test_fallback_covers_every_number_with_an_existing_queue() -> None:
    dialplan = (CONF / "extensions.conf").read_text()
    controller_down = dialplan.split("[controller-down]")[1].split("\n[")[0]
    fallback = dict(re.findall(r"exten => (\w+),1,Set\(FALLBACK_QUEUE=([\w-]+)\)", controller_down))
    queues = set(sections(CONF / "queues.conf"))
    assert set(fallback.values()) <= queues
    numbers = {path.stem for path in (ROOT / "dialplans").glob("8800*.yaml")}
    assert numbers <= set(fallback), f"no fallback queue for {numbers - set(fallback)}"
    assert "exten => _X.,1,Set(FALLBACK_QUEUE=hotline-general)" in controller_down
    inbound = dialplan.split("[from-pstn]")[1].split("\n[")[0]
    # A call the controller finished ends (whatever AGISTATUS says: a failed command makes it
    # FAILURE); any other is retried within the budget, then the fallback queue.
    assert inbound.index('$["${HOTLINE_DONE}" = "1"]?done') < inbound.index("(handback)")
    assert "$[${EPOCH} >= ${HOTLINE_REENTRY_UNTIL}]?controller-down" in inbound


def test_ami_user_and_music_on_hold() -> None:
    manager = (CONF / "manager.conf").read_text()
    assert "[hotline]" in manager and "bindaddr = 127.0.0.1" in manager
    assert "musicclass=default" in (CONF / "queues.conf").read_text()
    assert "[default]" in (CONF / "musiconhold.conf").read_text()


# Applications whose module does not load (or does nothing useful) without its own file.
CONFIG_OF_APPLICATION = {
    "ConfBridge": "confbridge.conf",
    "Queue": "queues.conf",
    "MusicOnHold": "musiconhold.conf",
}


def test_every_application_the_dialplan_runs_has_its_config_shipped() -> None:
    dialplan = (CONF / "extensions.conf").read_text()
    exten = re.findall(r"^\s*exten\s*=>\s*[^,]+,[^,]+,(\w+)\(", dialplan, re.M)
    same = re.findall(r"^\s*same\s*=>\s*[^,]+,(\w+)\(", dialplan, re.M)
    used = {*exten, *same}
    assert "ConfBridge" in used
    missing = [
        f"{app} needs {conf}"
        for app, conf in CONFIG_OF_APPLICATION.items()
        if app in used and not (CONF / conf).is_file()
    ]
    assert missing == []
    assert "[general]" in (CONF / "confbridge.conf").read_text()


def test_the_ami_user_may_write_only_what_the_controller_uses() -> None:
    manager = (CONF / "manager.conf").read_text().split("[hotline]")[1]
    write = re.search(r"^write\s*=\s*(.+)$", manager, re.M)
    assert write is not None
    classes = {c.strip() for c in write.group(1).split(",")}
    assert classes == {"call", "originate"}  # no system, command or config write


def test_every_context_the_controller_dials_into_exists() -> None:
    contexts = set(sections(CONF / "extensions.conf"))
    example = (ROOT / "hotline.example.toml").read_text()
    transfer = re.search(r'^transfer_channel = "Local/\{number\}@([\w-]+)"', example, re.M)
    assert transfer is not None and transfer.group(1) in contexts
    for context in ("hotline-callback-out", "hotline-escalate-out", "hotline-acd-answered"):
        assert context in contexts


def test_the_trunk_the_dialplan_dials_through_is_a_pjsip_endpoint() -> None:
    dialplan = (CONF / "extensions.conf").read_text()
    trunk = re.search(r"^HOTLINE_TRUNK=(\S+)", dialplan, re.M)
    assert trunk is not None
    pjsip = (CONF / "pjsip.conf").read_text()
    blocks = re.findall(rf"^\[{trunk.group(1)}\]\n(.*?)(?=^\[|\Z)", pjsip, re.M | re.S)
    types = {m for block in blocks for m in re.findall(r"^type = (\w+)", block, re.M)}
    assert {"endpoint", "aor", "identify"} <= types


def test_the_generated_files_are_included_after_what_they_extend() -> None:
    """queues.conf ends with the generated members (their ``(+)`` adds to queues defined
    before); pjsip.conf includes the generated seats and the host-only passwords after the
    templates they use. ``#tryinclude``: a host without them yet still loads the rest."""
    queues = (CONF / "queues.conf").read_text()
    include = '#tryinclude "hotline-queue-members.conf"'
    assert queues.rstrip().endswith(include)
    assert queues.index("[hotline-emergency]") < queues.index(include)
    pjsip = (CONF / "pjsip.conf").read_text()
    seats = pjsip.index('#tryinclude "hotline-seats.conf"')
    passwords = pjsip.index('#tryinclude "hotline-seats-auth.conf"')
    assert pjsip.index("[operator-auth](!)") < seats < passwords
    assert not re.search(r"(?m)^password", pjsip)
