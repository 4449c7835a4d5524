"""`WorkspaceSettings`: the ``[workspace]`` section (tickets, escalation, the letters' SMTP)."""

from __future__ import annotations

from dataclasses import dataclass

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

    def __post_init__(self) -> None:
        if not self.ticket_seconds > 0:
            raise ValueError("ticket_seconds must be greater than 0")
        if not 0 < self.smtp_port < 65536:
            raise ValueError("smtp_port must be 1 to 65535")
        if not self.smtp_timeout_seconds > 0:
            raise ValueError("smtp_timeout_seconds must be greater than 0")
