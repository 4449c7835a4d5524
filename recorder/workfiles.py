"""The pipeline's files of one recording: their names in the work directory, the object's key
in storage, the sealing of the ciphertext, and their removal once the recording is verified.

Every name is a function of the call id (and the format), so a restarted worker finds what an
earlier run left (`recorder.pipeline`).
"""

from __future__ import annotations

import contextlib
import logging
import os
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from hotline.private import open_private
from recorder.keys import CipherSummary, encrypt_stream
from recorder.models import RecordedCall
from recorder.settings import FORMATS
from recorder.spool import spool_path

__all__ = ["KEPT_ORIGINAL", "WorkFiles", "seal_file"]

log = logging.getLogger("recorder.pipeline")

# format of a recording whose audio the encoder could not read: its bytes are kept as they were
KEPT_ORIGINAL = "original"


def seal_file(data_key: bytes, source: Path, target: Path, chunk_size: int) -> CipherSummary:
    """Encrypt `source` into the new private file `target`, fsynced: the `encrypted` row about
    to commit describes these bytes."""
    with source.open("rb") as plain, open_private(target) as sealed:
        summary = encrypt_stream(data_key, plain, sealed, chunk_size)
        sealed.flush()
        os.fsync(sealed.fileno())
    return summary


@dataclass(frozen=True)
class WorkFiles:
    spool_dir: Path
    work_dir: Path
    object_prefix: str

    def audio_path(self, call_id: str, format: str) -> Path:
        suffix = ".orig" if format == KEPT_ORIGINAL else FORMATS[format].suffix
        return self.work_dir / f"{call_id}{suffix}"

    def cipher_path(self, call_id: str) -> Path:
        return self.work_dir / f"{call_id}.enc"

    def object_key(self, call_id: str, format: str, started_at: datetime) -> str:
        suffix = ".orig" if format == KEPT_ORIGINAL else FORMATS[format].suffix
        day = started_at.strftime("%Y/%m/%d")
        return f"{self.object_prefix}{day}/{call_id}{suffix}.enc"

    def clean_up(self, row: RecordedCall) -> None:
        """Remove the spool file and the work files: only called once the row is verified."""
        call_id = row.call_id
        spooled = spool_path(self.spool_dir, call_id)
        with contextlib.suppress(FileNotFoundError):
            if spooled.stat().st_mtime > row.updated_at.timestamp():
                # written after the row was finished: a reused call id, never delete unseen audio
                log.error("spool file %s is newer than its finished recording; left", spooled)
                spooled = self.cipher_path(call_id)
        paths = [spooled, self.cipher_path(call_id)]
        paths += [self.audio_path(call_id, f) for f in (*FORMATS, KEPT_ORIGINAL)]
        for path in paths:
            path.unlink(missing_ok=True)
            path.with_name(path.name + ".part").unlink(missing_ok=True)
