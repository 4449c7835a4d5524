"""Admin commands of the voice menus' resources: `hotline prompts build`,
`hotline hours surge`."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from hotline.hours import (
    DEFAULT_CALENDAR_PATH,
    DEFAULT_HOURS_PATH,
    DEFAULT_SURGE_PATH,
    SurgeSwitch,
    load_calendar,
    load_hours,
)
from hotline.yamldoc import YamlFileError
from ivr.hours_speech import describe_hours_ru
from ivr.prompts import (
    DEFAULT_OUTPUT_DIR,
    DEFAULT_PROMPTS_DIR,
    PromptError,
    build_prompts,
    load_prompt_texts,
)


async def cmd_prompts(args: argparse.Namespace, settings: Any) -> int:
    try:
        calendar = load_calendar(args.calendar)
        hours = load_hours(args.hours, calendar, lambda: False)
        texts = load_prompt_texts(args.prompts_dir, describe_hours_ru(hours))
        report = await build_prompts(texts, args.output, force=args.force, jobs=args.jobs)
    except (YamlFileError, PromptError) as error:
        print(error)
        return 1
    print(
        f"подсказки в {args.output}: собрано {len(report.built)}, без изменений "
        f"{len(report.unchanged)}, удалено {len(report.removed)}"
    )
    for prompt_id in report.built:
        print(f"  собрана: {prompt_id}")
    return 0


async def cmd_surge(args: argparse.Namespace, settings: Any) -> int:
    switch = SurgeSwitch(args.surge_file)
    try:
        if args.action == "on":
            switch.on()
        elif args.action == "off":
            switch.off()
    except OSError as error:
        print(f"не удалось записать {switch.path}: {error}")
        return 1
    state = "включён: линия работает круглосуточно" if switch.is_on() else "выключен: работают часы"
    print(f"режим круглосуточной работы {state} ({switch.path})")
    return 0


def add_commands(commands: Any) -> None:
    """``hotline prompts build`` and ``hotline hours surge on|off|status``."""
    prompts = commands.add_parser("prompts", help="the menus' Russian prompts")
    prompt_actions = prompts.add_subparsers(dest="prompts_action", metavar="ACTION", required=True)
    build = prompt_actions.add_parser(
        "build", help="speak the prompts with espeak-ng into 8 kHz WAV files"
    )
    build.add_argument("--prompts-dir", type=Path, default=DEFAULT_PROMPTS_DIR)
    build.add_argument("--output", type=Path, default=DEFAULT_OUTPUT_DIR)
    build.add_argument("--calendar", type=Path, default=DEFAULT_CALENDAR_PATH)
    build.add_argument("--hours", type=Path, default=DEFAULT_HOURS_PATH)
    build.add_argument("--force", action="store_true", help="rebuild every prompt")
    build.add_argument("--jobs", type=int, default=None, help="how many to speak at once")
    build.set_defaults(run=cmd_prompts)

    hours = commands.add_parser("hours", help="the hotline's opening hours")
    hours_actions = hours.add_subparsers(dest="hours_action", metavar="ACTION", required=True)
    surge = hours_actions.add_parser("surge", help="the 24/7 surge mode: on, off, status")
    surge.add_argument("action", choices=("on", "off", "status"))
    surge.add_argument("--surge-file", type=Path, default=DEFAULT_SURGE_PATH)
    surge.set_defaults(run=cmd_surge)
