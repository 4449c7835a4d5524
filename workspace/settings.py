"""`WorkspaceSettings`: the tunables of the feedback form, its attachments and the app's
call intents (the root reads them as ``[workspace]``)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

__all__ = ["WorkspaceSettings"]


@dataclass(frozen=True)
class WorkspaceSettings:
    """Tunables of the workspace's forms, files and codes."""

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
        for name in ("max_attachment_bytes", "max_attachments", "intents_per_phone_per_hour",
                     "intent_wrong_codes"):  # fmt: skip
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1")
        if self.retention_interval_seconds < 0:
            raise ValueError("retention_interval_seconds must be 0 (never) or more")
        for name in ("scan_timeout_seconds", "intent_code_seconds"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name} must be greater than 0")
