"""Prompts: file:line errors in texts, espeak-ng -> 8 kHz mono 16-bit WAV, only changes rebuilt."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import stat
import wave
from pathlib import Path

import pytest

from ivr.prompts import (
    DEFAULT_CORE_SOUNDS_DIR,
    HOURS_PROMPT_ID,
    MANIFEST,
    PromptError,
    build_prompts,
    load_catalog,
    load_prompt_texts,
    validate_prompt_files,
)

ROOT = Path(__file__).resolve().parent.parent
TEXTS = {"hello": "Здравствуйте!", "wait": "Пожалуйста, подождите.", "bye": "До свидания!"}


def build(texts: dict[str, str], out: Path, **options: object):  # type: ignore[no-untyped-def]
    return asyncio.run(build_prompts(texts, out, **options))  # type: ignore[arg-type]


def mtimes(out: Path) -> dict[str, int]:
    return {path.stem: path.stat().st_mtime_ns for path in out.glob("*.wav")}


def assert_asterisk_wav(path: Path) -> None:
    with wave.open(str(path)) as audio:
        assert audio.getcomptype() == "NONE"  # PCM
        assert audio.getnchannels() == 1
        assert audio.getsampwidth() == 2
        assert audio.getframerate() == 8000
        assert audio.getnframes() > 8000 * 0.3  # some speech, not a bare header
        frames = audio.readframes(audio.getnframes())
    assert any(frames), "silence only"


def test_build_then_rebuild_only_what_changed(tmp_path: Path) -> None:
    out = tmp_path / "sounds"
    report = build(TEXTS, out, jobs=2)
    assert report.built == ["bye", "hello", "wait"]
    for prompt_id in TEXTS:
        assert_asterisk_wav(out / f"{prompt_id}.wav")
    before = mtimes(out)

    again = build(TEXTS, out)
    assert (again.built, again.unchanged) == ([], ["bye", "hello", "wait"])
    assert mtimes(out) == before

    changed = build({**TEXTS, "wait": "Оставайтесь на линии."}, out)
    assert changed.built == ["wait"]
    after = mtimes(out)
    assert after["hello"] == before["hello"] and after["bye"] == before["bye"]
    assert after["wait"] != before["wait"]

    dropped = build({"hello": TEXTS["hello"]}, out)
    assert dropped.removed == ["bye", "wait"]
    assert sorted(mtimes(out)) == ["hello"]


def test_missing_file_or_broken_manifest_is_rebuilt(tmp_path: Path) -> None:
    out = tmp_path / "sounds"
    build(TEXTS, out)
    (out / "hello.wav").unlink()
    assert build(TEXTS, out).built == ["hello"]
    (out / MANIFEST).write_text("{not json")
    assert build(TEXTS, out).built == ["bye", "hello", "wait"]
    assert json.loads((out / MANIFEST).read_text()).keys() == TEXTS.keys()


def test_a_failing_prompt_loses_none_of_the_others(tmp_path: Path) -> None:
    fake = tmp_path / "espeak-flaky"
    fake.write_text(
        "#!/bin/sh\n"
        'text=$(cat)\ncase "$text" in *СБОЙ*) echo "synthesis failed" >&2; exit 3;; esac\n'
        'printf "%s" "$text" | exec espeak-ng "$@"\n'
    )
    fake.chmod(fake.stat().st_mode | stat.S_IEXEC)
    out = tmp_path / "sounds"
    texts = {**TEXTS, "broken": "СБОЙ"}
    with pytest.raises(PromptError, match=r"broken.*synthesis failed"):
        build(texts, out, espeak=str(fake))
    assert sorted(mtimes(out)) == ["bye", "hello", "wait"]
    texts["broken"] = "Теперь без ошибки."
    assert build(texts, out, espeak=str(fake)).built == ["broken"]
    assert not [name for name in os.listdir(out) if name.startswith(".")]  # no temporary leftovers


def test_no_espeak_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(PromptError, match="не установлен"):
        build(TEXTS, tmp_path, espeak="/nonexistent/espeak-ng")


def write_prompts(folder: Path, main: str, menus: str | None = None) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "ru.yaml").write_text(main, encoding="utf-8")
    if menus is not None:
        (folder / "ru-menus.yaml").write_text(menus, encoding="utf-8")
    return folder


@pytest.mark.parametrize(
    ("main", "menus", "where", "fragment"),
    [
        ("ok: Да\nBad_Id: Нет\n", None, "ru.yaml:2", "латинские строчные"),
        ("ok: Да\nok: Нет\n", None, "ru.yaml:2", "duplicate key"),
        ("ok: Да\n", "other: Нет\nok: Снова\n", "ru-menus.yaml:2", "уже задана"),
        ("ok: Да\nempty: ''\n", None, "ru.yaml:2", "непустой текст"),
        ("ok: Да\nlist: [1, 2]\n", None, "ru.yaml:2", "непустой текст"),
        (f"{HOURS_PROMPT_ID}: Часы\n", None, "ru.yaml:1", "hours.yaml"),
        ("ok: Да\nbroken: [\n", None, "ru.yaml:3", "not valid YAML"),
        ("- Да\n", None, "ru.yaml:1", "must be a mapping"),
    ],
)
def test_broken_prompt_files_point_at_line(
    tmp_path: Path, main: str, menus: str | None, where: str, fragment: str
) -> None:
    folder = write_prompts(tmp_path / "prompts", main, menus)
    problems = validate_prompt_files(folder)
    assert problems
    assert str(problems[0]).startswith(f"{folder / where.split(':')[0]}:{where.split(':')[1]}: ")
    assert fragment in problems[0].message
    with pytest.raises(PromptError):
        load_prompt_texts(folder)


def test_catalog(tmp_path: Path) -> None:
    folder = write_prompts(tmp_path / "prompts", "greeting: Привет\n", "menu-main: Главное меню\n")
    catalog = load_catalog(folder, DEFAULT_CORE_SOUNDS_DIR)
    for name in (
        "greeting",
        "hotline/greeting",
        "menu-main",
        HOURS_PROMPT_ID,
        "digits/5",
        "vm-goodbye",
    ):
        assert catalog.exists(name), name
    for name in (
        "nope",
        "hotline/nope",
        "digits/1f",
        "../ru_RU_f_IvrvoiceRU/beep",
        "/etc/passwd",
        "",
    ):
        assert not catalog.exists(name), name
    assert catalog.playback_name("greeting") == "hotline/greeting"
    assert catalog.playback_name("digits/5") == "digits/5"


def test_shipped_prompts_are_valid_and_cover_the_hotline() -> None:
    assert validate_prompt_files(ROOT / "prompts") == []
    catalog = load_catalog(ROOT / "prompts", DEFAULT_CORE_SOUNDS_DIR)
    for prompt_id in (
        "greeting-general",
        "greeting-emergency",
        "invalid-input",
        "please-wait",
        "callback-offer",
        "rating-request",
        "thank-you",
    ):
        assert catalog.exists(prompt_id), prompt_id


def run_command(*argv: str) -> int:
    from ivr.prompts_cli import add_commands

    parser = argparse.ArgumentParser()
    add_commands(parser.add_subparsers())
    args = parser.parse_args(list(argv))
    return int(asyncio.run(args.run(args, None)))


def test_prompts_command_includes_hours_and_reports_errors(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = write_prompts(tmp_path / "prompts", "hello: Здравствуйте\n")
    out = tmp_path / "out"
    common = [
        "--calendar",
        str(ROOT / "dialplans/calendar.yaml"),
        "--hours",
        str(ROOT / "dialplans/hours.yaml"),
    ]
    assert (
        run_command("prompts", "build", "--prompts-dir", str(folder), "--output", str(out), *common)
        == 0
    )
    assert sorted(mtimes(out)) == ["hello", HOURS_PROMPT_ID]
    assert_asterisk_wav(out / f"{HOURS_PROMPT_ID}.wav")
    capsys.readouterr()
    write_prompts(folder, "hello: Здравствуйте\nbad id: x\n")
    assert (
        run_command("prompts", "build", "--prompts-dir", str(folder), "--output", str(out), *common)
        == 1
    )
    assert f"{folder / 'ru.yaml'}:2:" in capsys.readouterr().out


def test_changed_hours_rebuild_only_the_hours_prompt(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = write_prompts(tmp_path / "prompts", "hello: Здравствуйте\n")
    out = tmp_path / "out"
    hours = tmp_path / "hours.yaml"
    hours.write_text((ROOT / "dialplans/hours.yaml").read_text())
    common = ["--calendar", str(ROOT / "dialplans/calendar.yaml"), "--hours", str(hours)]
    command = ["prompts", "build", "--prompts-dir", str(folder), "--output", str(out), *common]
    assert run_command(*command) == 0
    before = mtimes(out)
    hours.write_text(hours.read_text().replace('"08:00-20:00"', '"09:00-21:00"'))
    capsys.readouterr()
    assert run_command(*command) == 0
    assert "собрано 1, без изменений 1" in capsys.readouterr().out
    after = mtimes(out)
    assert after["hello"] == before["hello"]
    assert after[HOURS_PROMPT_ID] != before[HOURS_PROMPT_ID]
