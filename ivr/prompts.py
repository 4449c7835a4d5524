"""The hotline's recorded prompts: Russian texts in files, synthesised to what Asterisk plays.

Texts live in `prompts/ru.yaml` (and `prompts/ru-menus.yaml` for menu-specific prompts), one
`id: text` per prompt; `hours-info` is made from dialplans/hours.yaml so the hours read to a
caller never disagree with the hours enforced. `build_prompts` speaks each text with espeak-ng
(`-v ru`) and converts it with pydub/ffmpeg to 8 kHz mono 16-bit PCM WAV in the output folder
(`var/sounds/hotline/` by default: build output, not committed). A manifest there keeps a hash of
each prompt's text and voice settings, so a rebuild only redoes prompts whose text changed, whose
file went missing, or that are new; prompts removed from the texts are deleted.

`PromptCatalog` answers "does this prompt exist" for menus and lint: a project prompt id (bare or
as `hotline/<id>`, the name Asterisk plays it by) or any file of the Asterisk core sound set.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import re
import shutil
import tempfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

import yaml
from pydub import AudioSegment

from hotline.yamldoc import (
    Problem,
    YamlFileError,
    compose,
    line_of,
    mapping_items,
    write_atomically,
)

PROMPT_FILES: Final = ("ru.yaml", "ru-menus.yaml")
HOURS_PROMPT_ID: Final = "hours-info"
PLAYBACK_FOLDER: Final = "hotline"
DEFAULT_OUTPUT_DIR: Final = Path("var/sounds/hotline")
DEFAULT_PROMPTS_DIR: Final = Path("prompts")
DEFAULT_CORE_SOUNDS_DIR: Final = Path("/usr/share/asterisk/sounds/ru_RU_f_IvrvoiceRU")
MANIFEST: Final = "manifest.json"
SAMPLE_RATE: Final = 8000
CORE_SOUND_EXTENSIONS: Final = (".wav", ".gsm", ".ulaw", ".alaw", ".sln", ".g722", ".wav16")
_ID = re.compile(r"^[a-z0-9][a-z0-9-]*$")
# Bump when the conversion changes so every prompt is rebuilt once.
_FORMAT_VERSION: Final = "1"


class PromptError(YamlFileError):
    """A prompt file that cannot be used, or a build that failed; lists every problem."""


@dataclass(frozen=True, slots=True)
class Voice:
    """espeak-ng settings; part of each prompt's hash, so changing them rebuilds everything."""

    name: str = "ru"
    words_per_minute: int = 150
    pitch: int = 50


# --- prompt texts ---------------------------------------------------------------------------


def _parse_prompt_file(path: Path, texts: dict[str, str], problems: list[Problem]) -> None:
    root = compose(path, problems)
    if root is None:
        return
    for prompt_id, key_node, value in mapping_items(root, path, problems, "подсказки"):
        line = line_of(key_node)
        if not _ID.match(prompt_id):
            message = f"идентификатор «{prompt_id}»: только латинские строчные буквы, цифры, дефис"
            problems.append(Problem(str(path), line, message))
        elif prompt_id == HOURS_PROMPT_ID:
            message = f"«{HOURS_PROMPT_ID}» собирается из dialplans/hours.yaml, здесь не задаётся"
            problems.append(Problem(str(path), line, message))
        elif prompt_id in texts:
            problems.append(Problem(str(path), line, f"подсказка «{prompt_id}» уже задана"))
        elif not isinstance(value, yaml.ScalarNode) or not str(value.value).strip():
            problems.append(
                Problem(str(path), line_of(value), f"«{prompt_id}»: нужен непустой текст")
            )
        else:
            texts[prompt_id] = " ".join(str(value.value).split())


def _prompt_files(prompts_dir: Path) -> list[Path]:
    files = [prompts_dir / name for name in PROMPT_FILES if (prompts_dir / name).exists()]
    return files or [prompts_dir / PROMPT_FILES[0]]  # reports the missing main file


def validate_prompt_files(prompts_dir: Path) -> list[Problem]:
    """Every error in the prompt text files of a folder; empty when they are fine."""
    problems: list[Problem] = []
    texts: dict[str, str] = {}
    for path in _prompt_files(Path(prompts_dir)):
        _parse_prompt_file(path, texts, problems)
    return problems


def load_prompt_texts(prompts_dir: Path, hours_text: str | None = None) -> dict[str, str]:
    """id -> text from the folder's prompt files (plus `hours-info` when the hours are given)."""
    texts: dict[str, str] = {}
    problems: list[Problem] = []
    for path in _prompt_files(Path(prompts_dir)):
        _parse_prompt_file(path, texts, problems)
    if problems:
        raise PromptError(problems)
    if hours_text is not None:
        texts[HOURS_PROMPT_ID] = hours_text
    return texts


# --- the catalog ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PromptCatalog:
    """Which prompt names a menu may play."""

    prompt_ids: frozenset[str]
    core_sounds_dir: Path

    def exists(self, name: str) -> bool:
        if self.is_project_prompt(name):
            return True
        if not name or name.startswith("/") or ".." in Path(name).parts:
            return False
        base = self.core_sounds_dir / name
        return any(base.with_name(base.name + ext).is_file() for ext in CORE_SOUND_EXTENSIONS)

    def is_project_prompt(self, name: str) -> bool:
        return name.removeprefix(f"{PLAYBACK_FOLDER}/") in self.prompt_ids

    def playback_name(self, name: str) -> str:
        """The name Asterisk plays: `hotline/<id>` for project prompts, core names unchanged."""
        bare = name.removeprefix(f"{PLAYBACK_FOLDER}/")
        return f"{PLAYBACK_FOLDER}/{bare}" if bare in self.prompt_ids else name


def load_catalog(prompts_dir: Path, core_sounds_dir: Path) -> PromptCatalog:
    """Project prompts (from the text files) and core sounds; raises PromptError if broken."""
    ids = set(load_prompt_texts(prompts_dir)) | {HOURS_PROMPT_ID}
    return PromptCatalog(frozenset(ids), Path(core_sounds_dir))


# --- the build ------------------------------------------------------------------------------


@dataclass(slots=True)
class BuildReport:
    """What one build did, by prompt id."""

    built: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)


def prompt_hash(text: str, voice: Voice) -> str:
    payload = json.dumps([_FORMAT_VERSION, voice.name, voice.words_per_minute, voice.pitch, text])
    return hashlib.sha256(payload.encode()).hexdigest()


def _read_manifest(out_dir: Path) -> dict[str, str]:
    try:
        data = json.loads((out_dir / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}  # no or broken manifest: everything is rebuilt, nothing is lost
    if not isinstance(data, dict):
        return {}
    return {str(key): str(value) for key, value in data.items()}


async def synthesise(text: str, voice: Voice, wav_path: Path, espeak: str = "espeak-ng") -> None:
    """espeak-ng's own WAV (22.05 kHz) of the text; raises PromptError when it fails."""
    process = await asyncio.create_subprocess_exec(
        espeak,
        "-v",
        voice.name,
        "-s",
        str(voice.words_per_minute),
        "-p",
        str(voice.pitch),
        "-w",
        str(wav_path),
        "--stdin",
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )
    _, stderr = await process.communicate(text.encode("utf-8"))
    if process.returncode != 0:
        detail = stderr.decode(errors="replace").strip() or f"код {process.returncode}"
        raise PromptError([Problem(str(wav_path), 1, f"espeak-ng не озвучил текст: {detail}")])


def convert_for_asterisk(source: Path, target: Path) -> None:
    """8 kHz mono 16-bit PCM WAV; ffmpeg (through pydub) does the resampling with filtering."""
    if not source.is_file() or source.stat().st_size <= 44:  # a bare header: nothing was spoken
        raise PromptError([Problem(str(source), 1, "espeak-ng не выдал звука")])
    segment = AudioSegment.from_wav(str(source))
    with tempfile.TemporaryDirectory(dir=target.parent) as scratch:
        converted = Path(scratch) / "out.wav"
        parameters = ["-ar", str(SAMPLE_RATE), "-ac", "1", "-acodec", "pcm_s16le"]
        segment.export(str(converted), format="wav", parameters=parameters)
        write_atomically(target, converted.read_bytes())


async def build_one(prompt_id: str, text: str, out_dir: Path, voice: Voice, espeak: str) -> None:
    with tempfile.TemporaryDirectory(dir=out_dir) as scratch:
        raw = Path(scratch) / "espeak.wav"
        await synthesise(text, voice, raw, espeak)
        await asyncio.to_thread(convert_for_asterisk, raw, out_dir / f"{prompt_id}.wav")


async def build_prompts(
    texts: Mapping[str, str],
    out_dir: Path = DEFAULT_OUTPUT_DIR,
    *,
    voice: Voice = Voice(),
    jobs: int | None = None,
    espeak: str = "espeak-ng",
    force: bool = False,
) -> BuildReport:
    """Build every prompt whose text, voice or file changed; raise PromptError if any failed.

    Prompts built before a failure are kept and recorded, so the next run only redoes the rest.
    """
    if shutil.which(espeak) is None:
        raise PromptError(
            [Problem(espeak, 1, "espeak-ng не установлен (apt-get install espeak-ng)")]
        )
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    old = {} if force else _read_manifest(out_dir)
    wanted = {prompt_id: prompt_hash(text, voice) for prompt_id, text in texts.items()}
    report = BuildReport()
    stale = [
        prompt_id
        for prompt_id, digest in wanted.items()
        if old.get(prompt_id) != digest or not (out_dir / f"{prompt_id}.wav").is_file()
    ]
    report.unchanged = sorted(set(wanted) - set(stale))
    limit = asyncio.Semaphore(jobs or os.cpu_count() or 1)

    async def build(prompt_id: str) -> None:
        async with limit:
            await build_one(prompt_id, texts[prompt_id], out_dir, voice, espeak)

    outcomes = await asyncio.gather(
        *(build(prompt_id) for prompt_id in stale), return_exceptions=True
    )
    manifest = {key: value for key, value in old.items() if key in wanted}
    failures: list[Problem] = []
    for prompt_id, outcome in zip(stale, outcomes, strict=True):
        if isinstance(outcome, BaseException):
            manifest.pop(prompt_id, None)
            failures.append(Problem(prompt_id, 1, f"подсказка не собрана: {outcome}"))
        else:
            manifest[prompt_id] = wanted[prompt_id]
            report.built.append(prompt_id)
    report.removed = _remove_dropped(out_dir, old, wanted)
    write_atomically(out_dir / MANIFEST, json.dumps(manifest, indent=1, sort_keys=True).encode())
    if failures:
        raise PromptError(failures)
    report.built.sort()
    return report


def _remove_dropped(out_dir: Path, old: Mapping[str, str], wanted: Iterable[str]) -> list[str]:
    dropped = sorted(set(old) - set(wanted))
    for prompt_id in dropped:
        (out_dir / f"{prompt_id}.wav").unlink(missing_ok=True)
    return dropped
