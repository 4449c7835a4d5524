"""Checking an uploaded file before anything keeps it: its size, its type by content, and
ClamAV.

The type comes from the file's first bytes, never from its name or the browser's claim: a
PDF starts ``%PDF-``, a JPEG ``FF D8 FF``, a PNG its 8-byte signature, and plain text is
UTF-8 without control characters other than tab and line ends. Four signatures do not need
a library (libmagic would bring a C dependency for the same four answers).

ClamAV: `clamscan` reads the file on its standard input (no plaintext copy on disk, not even
a private temporary one); exit 0 is clean, 1 names what it found, anything else (no
signature database, a crash, the time limit) refuses the file: an unchecked file is never
kept.
"""

from __future__ import annotations

import asyncio
import logging
import unicodedata
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Final

from hotline.security import SecurityCategory, security_event

__all__ = [
    "MEDIA_TITLES",
    "AttachmentRefused",
    "CheckedFile",
    "ClamScanner",
    "check_file",
    "clean_filename",
    "media_type_of",
    "size_text",
]

log = logging.getLogger(__name__)

MEDIA_TITLES: Final = MappingProxyType(
    {
        "application/pdf": "PDF",
        "image/jpeg": "JPEG",
        "image/png": "PNG",
        "text/plain": "текст",
    }
)
_MAX_NAME: Final = 120
_TEXT_CONTROLS_ALLOWED: Final = frozenset("\t\n\r")


class AttachmentRefused(Exception):
    """A file refused, with the Russian text the person who sent it reads."""

    def __init__(self, message: str, reason: str) -> None:
        super().__init__(message)
        self.message = message
        self.reason = reason  # for logs and metrics, in English: "virus", "type", "size"...


@dataclass(frozen=True)
class CheckedFile:
    name: str  # cleaned for display; never used as a path
    media_type: str
    content: bytes


def media_type_of(content: bytes) -> str | None:
    """The file's type by its first bytes (one of `MEDIA_TITLES`), or None."""
    if content.startswith(b"%PDF-"):
        return "application/pdf"
    if content.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if content.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    try:
        text = content.decode("utf-8")
    except UnicodeDecodeError:
        return None
    if any(unicodedata.category(c) == "Cc" and c not in _TEXT_CONTROLS_ALLOWED for c in text):
        return None
    return "text/plain"


def clean_filename(name: str) -> str:
    """A name fit to show: the last path component, printable characters, bounded length."""
    base = name.replace("\\", "/").rsplit("/", 1)[-1]
    printable = "".join(c for c in base if unicodedata.category(c)[0] not in "CZ" or c == " ")
    return printable.strip()[:_MAX_NAME] or "файл"


def size_text(size: int) -> str:
    """A byte count as a person reads it: "10 МБ", "64 КБ"."""
    if size >= 1024 * 1024 and size % (1024 * 1024) == 0:
        return f"{size // (1024 * 1024)} МБ"
    return f"{max(1, size // 1024)} КБ"


def check_file(name: str, content: bytes, max_bytes: int) -> CheckedFile:
    """Size and type; `AttachmentRefused` with a Russian text otherwise."""
    shown = clean_filename(name)
    if not content:
        raise AttachmentRefused(f"Файл «{shown}» пуст.", "empty")
    if len(content) > max_bytes:
        raise AttachmentRefused(f"Файл «{shown}» больше {size_text(max_bytes)}.", "size")
    media_type = media_type_of(content)
    if media_type is None:
        allowed = ", ".join(MEDIA_TITLES.values())
        raise AttachmentRefused(
            f"Файл «{shown}»: такой тип не принимается. Можно: {allowed}.", "type"
        )
    return CheckedFile(shown, media_type, content)


class ClamScanner:
    """ClamAV's `clamscan` on a file's bytes."""

    def __init__(
        self, command: str = "clamscan", database: Path | None = None, timeout: float = 120.0
    ) -> None:
        self.command = command
        self.database = database
        self.timeout = timeout

    async def scan(self, checked: CheckedFile) -> None:
        """Return when ClamAV finds the file clean; `AttachmentRefused` otherwise."""
        arguments = ["--no-summary", "--stdout", "--infected"]
        if self.database is not None:
            arguments += ["--database", str(self.database)]
        try:
            process = await asyncio.create_subprocess_exec(
                self.command,
                *arguments,
                "-",
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
            )
        except OSError as error:
            log.error("antivirus cannot start: %s", error)
            raise _unavailable() from None
        try:
            async with asyncio.timeout(self.timeout):
                out, err = await process.communicate(checked.content)
        except TimeoutError:
            process.kill()
            await process.wait()
            log.error("antivirus took longer than %s s: file refused", self.timeout)
            raise _unavailable() from None
        if process.returncode == 0:
            return
        if process.returncode == 1:
            found = out.decode(errors="replace").strip().removeprefix("stdin:").strip()
            security_event(
                SecurityCategory.BAD_INPUT, "antivirus refused an attachment", signature=found
            )
            raise AttachmentRefused(
                f"Файл «{checked.name}» не принят: антивирус обнаружил угрозу "
                f"({found.removesuffix(' FOUND')}).",
                "virus",
            )
        log.error("antivirus failed (%s): %s", process.returncode, err.decode(errors="replace"))
        raise _unavailable()


def _unavailable() -> AttachmentRefused:
    return AttachmentRefused(
        "Файлы сейчас не принимаются: проверка на вирусы недоступна. Попробуйте позже "
        "или отправьте обращение без вложений.",
        "scanner",
    )
