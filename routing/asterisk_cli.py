"""``hotline acd asterisk-files --out DIR``: the queue members and PJSIP seats Asterisk must
know, generated from the groups and operators files (`routing.asterisk_files`).

The running controller rewrites the same files itself when ``[routing] asterisk_files_dir`` is
set; this command is for a deploy that copies them to the Asterisk host. A mistake in the
groups or operators file is printed as ``file:line: message`` with exit code 2.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any, Protocol

from hotline.yamldoc import YamlFileError
from routing.asterisk_files import write_asterisk_files
from routing.groups import load_groups
from routing.operators import load_operators
from routing.settings import RoutingSettings, locate


class WithRoutingSettings(Protocol):
    """What the command reads of the configuration: the ``[routing]`` section."""

    routing: RoutingSettings


def add_asterisk_files_command(actions: Any) -> None:
    """``hotline acd asterisk-files`` (added under the ``acd`` noun)."""
    files = actions.add_parser(
        "asterisk-files",
        help="write Asterisk's queue members and PJSIP seats from the groups and operators",
    )
    files.add_argument(
        "--out", type=Path, required=True, help="folder to write the two .conf files into"
    )
    files.set_defaults(run=run_asterisk_files)


async def run_asterisk_files(args: argparse.Namespace, settings: WithRoutingSettings) -> int:
    routing = settings.routing
    try:
        groups = load_groups(locate(routing.groups_file))
        operators = load_operators(locate(routing.operators_file), set(groups))
        written = write_asterisk_files(
            args.out, groups, operators.values(), routing.seats_transport
        )
    except (YamlFileError, ValueError, OSError) as error:
        print(f"hotline: {error}", file=sys.stderr)
        return 2
    for path in written:
        print(path)
    return 0
