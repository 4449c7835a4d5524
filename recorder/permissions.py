"""Who may do what with recordings: the recorder's access rules and its refusals.

* `PERMISSIONS`: role -> allowed actions. Quality auditors, supervisors and security officers
  may list, read metadata, play, download and clip; operators never touch recordings; sampling
  is for auditors and supervisors; legal holds for security officers; purging for the retention
  job (role `system`). An unknown or absent role may do nothing.
* `AccessDenied`: a refused request (HTTP status, Russian message, audit outcome);
  `refusal_for_role` says why a role was refused.

Shared by the playback service (`recorder.playback`), the HTTP API (`recorder.http`) and the
retention job (`recorder.retention`); the roles themselves are the core's (`hotline.auth`).
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum
from types import MappingProxyType
from typing import Final

from hotline.auth import Role

__all__ = [
    "ACTION_NAMES",
    "PERMISSIONS",
    "READABLE_ACTIONS",
    "AccessDenied",
    "Action",
    "is_allowed",
    "refusal_for_role",
]


class Action(StrEnum):
    LIST = "list"
    METADATA = "metadata"
    PLAY = "play"
    DOWNLOAD = "download"
    CLIP = "clip"
    SAMPLE = "sample"
    HOLD = "hold"
    RELEASE = "release"
    PURGE = "purge"


_READERS: Final = frozenset(
    {Action.LIST, Action.METADATA, Action.PLAY, Action.DOWNLOAD, Action.CLIP}
)
PERMISSIONS: Final[Mapping[str, frozenset[Action]]] = MappingProxyType(
    {
        Role.QUALITY_AUDITOR: _READERS | {Action.SAMPLE},
        Role.SUPERVISOR: _READERS | {Action.SAMPLE},
        Role.SECURITY_OFFICER: _READERS | {Action.HOLD, Action.RELEASE},
        Role.OPERATOR: frozenset(),
        Role.ADMIN: frozenset(),  # configures the ACD; listening to calls is not their job
        Role.SYSTEM: frozenset(Action),
    }
)
# Roles a token file may grant; `system` is only ever the CLI acting on the server itself.


def is_allowed(role: str | None, action: Action) -> bool:
    """True if `role` may perform `action`; unknown, empty or absent roles may do nothing."""
    return action in PERMISSIONS.get(role or "", frozenset())


# Actions that decrypt audio: only on a verified recording whose key still exists.
READABLE_ACTIONS: Final = frozenset({Action.PLAY, Action.DOWNLOAD, Action.CLIP})


class AccessDenied(Exception):
    """A request refused (and already audited): HTTP status, Russian message, audit outcome."""

    def __init__(self, status: int, message: str, outcome: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.outcome = outcome


def refusal_for_role(role: str | None, action: Action) -> AccessDenied:
    if role == Role.OPERATOR:
        return AccessDenied(403, "Операторам доступ к записям разговоров запрещён.", "refused")
    if not role:
        return AccessDenied(403, "Для вашей учётной записи не назначена роль.", "refused")
    if role not in PERMISSIONS:
        return AccessDenied(403, f"Роль «{role}» не предусмотрена: доступ запрещён.", "refused")
    return AccessDenied(
        403, f"Роли «{role}» не разрешено действие «{ACTION_NAMES[action]}».", "refused"
    )


ACTION_NAMES: Final[Mapping[Action, str]] = MappingProxyType(
    {
        Action.LIST: "просмотр списка записей",
        Action.METADATA: "просмотр сведений о записи",
        Action.PLAY: "прослушивание",
        Action.DOWNLOAD: "скачивание",
        Action.CLIP: "выгрузка фрагмента",
        Action.SAMPLE: "выборка для контроля качества",
        Action.HOLD: "установка запрета удаления",
        Action.RELEASE: "снятие запрета удаления",
        Action.PURGE: "удаление",
    }
)
