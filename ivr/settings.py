"""Settings of the voice menus (the ``[ivr]`` section of the product's settings).

Every field has a default that works from a checkout: the menu files and prompts shipped in the
repository, the stand-in status service on its default port.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

REPOSITORY = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class IvrSettings:
    """``[ivr]``: where the menus live and what they talk to.

    dialplans_dir: the per-number menu files (``<number>.yaml``), calendar.yaml and hours.yaml.
    prompts_dir: the project's generated prompts (Asterisk plays ``hotline/<id>`` from there).
    status_url: base URL of the application-status service the ``lookup`` node calls.
    lookup_timeout: default seconds a ``lookup`` waits for that service (a node may lower it).
    general_number: the menu a number with no file of its own is sent to.
    max_steps: the most nodes one call may pass through; past it the caller goes to the
        number's operator group (a safety net under the linter's loop check).
    timezone: the hotline's clock (opening hours are Moscow time).
    queue_max_wait: seconds a caller may wait in an operator queue before Queue() gives up.
    transfer_channel: Dial() target of a ``transfer`` node; ``{number}`` is the number.
    recordings_dir: where ``record`` nodes leave callers' voice messages (on the PBX host).
    reload_interval: seconds between two looks at the menu files for changes (live reload:
        a changed file is checked, then used by new calls); 0 turns live reload off.
    versions_dir: every accepted version of each menu file, for ``hotline menus versions``
        and ``rollback`` (``<number>/<time>-<sha8>.yaml`` and ``<number>/index.json``).
    """

    dialplans_dir: Path = REPOSITORY / "dialplans"
    prompts_dir: Path = REPOSITORY / "prompts"
    status_url: str = "http://127.0.0.1:8081"
    lookup_timeout: float = 3.0
    general_number: str = "88001000001"
    max_steps: int = 200
    timezone: str = "Europe/Moscow"
    queue_max_wait: int = 1800
    transfer_channel: str = "Local/{number}@hotline-transfer"
    recordings_dir: str = "/var/spool/asterisk/hotline-messages"
    reload_interval: float = 2.0
    versions_dir: Path = REPOSITORY / "var" / "dialplan-versions"


class WithIvrSettings(Protocol):
    """What the menus' commands read of the product's settings (the composition root's
    `Settings` is one): the part names its section, not the whole."""

    @property
    def ivr(self) -> IvrSettings: ...
