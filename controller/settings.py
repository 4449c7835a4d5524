"""The whole configuration of one controller: the core's sections and every part's, assembled.

This is the composition root's piece: it alone knows every section (`[agi]` ... `[log]`,
`[audit]` and `[accounts]` from the core, `[ivr]`, `[recorder]`, `[recorder_access]`,
`[routing]`, `[callbacks]`, `[workspace]`, `[reporting]` from the parts) and the top-level
keys. Reading, converting and checking them is `hotline.settings`' job.
"""

from __future__ import annotations

import socket
import types
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from hotline.accounts.settings import AccountsSettings
from hotline.settings import (
    AgiSettings,
    AmiSettings,
    AuditSettings,
    HttpSettings,
    LogSettings,
    StoreSettings,
    not_empty,
    read_settings,
)
from ivr.settings import IvrSettings, WithIvrSettings
from recorder.settings import AccessSettings, RecorderSettings, WithRecorderSettings
from reporting.settings import ReportingSettings, WithReportingSettings
from routing.callbacks.settings import CallbackSettings
from routing.settings import RoutingSettings
from workspace.settings import WorkspaceSettings


@dataclass(frozen=True)
class Settings:
    """Everything the controller is configured with."""

    agi: AgiSettings = field(default_factory=AgiSettings)
    ami: AmiSettings = field(default_factory=AmiSettings)
    http: HttpSettings = field(default_factory=HttpSettings)
    store: StoreSettings = field(default_factory=StoreSettings)
    log: LogSettings = field(default_factory=LogSettings)
    audit: AuditSettings = field(default_factory=AuditSettings)
    accounts: AccountsSettings = field(default_factory=AccountsSettings)
    ivr: IvrSettings = field(default_factory=IvrSettings)
    recorder: RecorderSettings = field(default_factory=RecorderSettings)
    recorder_access: AccessSettings = field(default_factory=AccessSettings)
    routing: RoutingSettings = field(default_factory=RoutingSettings)
    callbacks: CallbackSettings = field(default_factory=CallbackSettings)
    workspace: WorkspaceSettings = field(default_factory=WorkspaceSettings)
    reporting: ReportingSettings = field(default_factory=ReportingSettings)
    # Names this instance in logs and shared state, so several nodes can be told apart.
    node_name: str = field(default_factory=socket.gethostname, metadata={"check": not_empty})
    event_loop: Literal["uvloop", "asyncio"] = "uvloop"


# Read-only, so no module-level mutable state: table name -> the dataclass it fills.
SECTIONS: Mapping[str, type] = types.MappingProxyType(
    {
        "agi": AgiSettings,
        "ami": AmiSettings,
        "http": HttpSettings,
        "store": StoreSettings,
        "log": LogSettings,
        "audit": AuditSettings,
        "accounts": AccountsSettings,
        "ivr": IvrSettings,
        "recorder": RecorderSettings,
        "recorder_access": AccessSettings,
        "routing": RoutingSettings,
        "callbacks": CallbackSettings,
        "workspace": WorkspaceSettings,
        "reporting": ReportingSettings,
    }
)


def load_settings(path: Path | None = None, environ: Mapping[str, str] | None = None) -> Settings:
    """Read the whole configuration: the file (`path`, else `$HOTLINE_CONFIG`, else none), then
    the `HOTLINE_*` environment; raises `hotline.settings.ConfigError` on any problem."""
    return read_settings(Settings, SECTIONS, path, environ)


if TYPE_CHECKING:  # checked by mypy, never run

    def _part_views(
        settings: Settings,
    ) -> tuple[WithIvrSettings, WithRecorderSettings, WithReportingSettings]:
        """`Settings` has every section the parts' commands declare they read."""
        return settings, settings, settings
