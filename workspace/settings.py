"""`WorkspaceSettings`: the ``[workspace]`` section: tickets, escalation and the letters' SMTP;
the feedback form, its attachments and the app's call intents."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

__all__ = ["WorkspaceSettings"]


@dataclass(frozen=True)
class WorkspaceSettings:
    # The back-office groups, their due times and members (workspace.backoffice); relative
    # paths as the groups file's ([routing] locate).
    backoffice_file: str = "dialplans/backoffice.yaml"
    # How often tickets are opened for unresolved contacts, escalated and their citizens told
    ticket_seconds: float = 30.0
    # Where letters go out (the citizen's, the agencies'); "" sends none (logged).
    smtp_host: str = ""
    smtp_port: int = 25
    smtp_sender: str = "hotline@localhost"
    smtp_username: str = ""
    smtp_password: str = ""  # better: HOTLINE_WORKSPACE_SMTP_PASSWORD in the environment
    smtp_timeout_seconds: float = 15.0
    # Attachments: where their ciphertext lives (a private 0700 directory), where the master
    # key that wraps their data keys lives (outside the database), and the limits.
    attachments_dir: Path = Path("var/attachments")
    attachments_keys_dir: Path = Path("var/keys")
    attachments_key_id: str = "attachments"
    max_attachment_bytes: int = 10 * 1024 * 1024
    max_attachments: int = 5
    # ClamAV: the scanner command (Debian's `clamav` package) and, when set, the signature
    # database it loads instead of its default (/var/lib/clamav, filled by freshclam).
    clamscan_command: str = "clamscan"
    clamav_database: Path | None = None
    scan_timeout_seconds: float = 120.0
    # The app's "call the hotline" button: a code lives this long, and one phone may ask for
    # this many codes an hour (counted in the shared database).
    intent_code_seconds: float = 300.0
    intents_per_phone_per_hour: int = 5
    # wrong codes keyed from one phone within the code's life before its codes are burnt
    intent_wrong_codes: int = 3
    # seconds between runs of the contacts' and attachments' retention job (0: never; then
    # run it from outside)
    retention_interval_seconds: float = 3600.0

    def __post_init__(self) -> None:
        if not self.ticket_seconds > 0:
            raise ValueError("ticket_seconds must be greater than 0")
        if not 0 < self.smtp_port < 65536:
            raise ValueError("smtp_port must be 1 to 65535")
        if not self.smtp_timeout_seconds > 0:
            raise ValueError("smtp_timeout_seconds must be greater than 0")
        for name in ("max_attachment_bytes", "max_attachments", "intents_per_phone_per_hour",
                     "intent_wrong_codes"):  # fmt: skip
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1")
        if self.retention_interval_seconds < 0:
            raise ValueError("retention_interval_seconds must be 0 (never) or more")
        for name in ("scan_timeout_seconds", "intent_code_seconds"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name} must be greater than 0")
