"""Keeping raw sessions as transcripts: with ``ASTERISK_CAPTURE_DIR`` set, tests write what
crossed the wire there in the format of tests/data/asterisk/ (how its new files were made)."""

from __future__ import annotations

import os
from pathlib import Path

from wire_taps import Recording


def keep(name: str, *recordings: Recording) -> None:
    target = os.environ.get("ASTERISK_CAPTURE_DIR")
    if not target:
        return
    data = b"".join(recording.render() for recording in recordings)
    Path(target).mkdir(parents=True, exist_ok=True)
    (Path(target) / name).write_bytes(data)
