"""`RecorderSettings`: the `[recorder]` section .

Every key has a default that works on one machine with no servers (local storage under var/).
S3 credentials are read from the environment, never from the file, so the TOML can be
committed: `HOTLINE_RECORDER_S3_ACCESS_KEY` and `HOTLINE_RECORDER_S3_SECRET_KEY` (falling back
to the usual `AWS_ACCESS_KEY_ID` / `AWS_SECRET_ACCESS_KEY`).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, Protocol

from hotline.settings import AmiSettings, AuditSettings, StoreSettings

__all__ = ["FORMATS", "AudioFormat", "RecorderSettings", "S3Credentials"]


@dataclass(frozen=True)
class AudioFormat:
    """How recordings of one format are encoded: one definition read by the in-process encoder
    (`recorder.audio`), the clips' ffmpeg command (`recorder.sampling`) and bench/recorder.py."""

    suffix: str  # of the stored file and object
    container: str  # FFmpeg muxer
    codec: str  # FFmpeg encoder
    bit_rate: int | None = None  # bit/s; None: the encoder's default
    options: tuple[tuple[str, str], ...] = ()  # the encoder's own options, as `-name value`

    def ffmpeg_args(self) -> list[str]:
        """The same encoder settings as an ffmpeg command line's output options."""
        args = ["-c:a", self.codec]
        if self.bit_rate is not None:
            args += ["-b:a", str(self.bit_rate)]
        for name, value in self.options:
            args += [f"-{name}", value]
        return args


# format name (the `format` setting and a recording's row) -> how it is encoded
FORMATS: dict[str, AudioFormat] = {
    # 16 kbit/s VOIP-tuned Opus, ~2 kB/s of telephone speech. Complexity 0 and 60 ms frames:
    # about 3x faster than libopus' default complexity 10 (PyAV, measured 2026-12-06), which is
    # what lets one to two cores keep up with 1,000 recorded calls (bench/recorder.py); for
    # 8 kHz G.711-grade input the audible difference is small. "opus-hq" keeps complexity 10.
    "opus": AudioFormat(
        ".ogg",
        "ogg",
        "libopus",
        bit_rate=16_000,
        options=(("application", "voip"), ("compression_level", "0"), ("frame_duration", "60")),
    ),
    "opus-hq": AudioFormat(
        ".ogg",
        "ogg",
        "libopus",
        bit_rate=16_000,
        options=(("application", "voip"), ("compression_level", "10")),
    ),
    "mp3": AudioFormat(".mp3", "mp3", "libmp3lame", bit_rate=32_000),
    "wav": AudioFormat(".wav", "wav", "pcm_s16le"),
}


@dataclass(frozen=True)
class S3Credentials:
    access_key: str
    secret_key: str

    def __repr__(self) -> str:
        return "S3Credentials(***)"

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None) -> S3Credentials:
        env = os.environ if environ is None else environ
        return cls(
            access_key=env.get("HOTLINE_RECORDER_S3_ACCESS_KEY")
            or env.get("AWS_ACCESS_KEY_ID", ""),
            secret_key=env.get("HOTLINE_RECORDER_S3_SECRET_KEY")
            or env.get("AWS_SECRET_ACCESS_KEY", ""),
        )


@dataclass(frozen=True)
class RecorderSettings:
    """Where recordings wait, how they are encoded, where they go and how long they stay."""

    enabled: bool = True
    # run the pipeline worker inside `hotline serve`; false: run `hotline recorder run` apart
    embedded_worker: bool = True
    # seconds between retention purge runs of the controller (crypto-shredding expired calls)
    purge_interval: float = 3600.0
    # MixMonitor writes <call id>.wav here; only Asterisk and the recorder may read it
    spool_dir: Path = Path("var/recorder/spool")
    # transcoded and encrypted intermediate files (same filesystem as spool_dir is best)
    work_dir: Path = Path("var/recorder/work")
    # master key files <key_id>.v<N>.key (0600); keep OUT of backups of the database
    keys_dir: Path = Path("var/keys")
    master_key_id: str = "recorder"
    storage: Literal["local", "s3"] = "local"
    local_dir: Path = Path("var/recorder/store")
    s3_endpoint: str = ""  # e.g. http://127.0.0.1:8333; empty = AWS default
    s3_region: str = "us-east-1"
    s3_bucket: str = "recordings"
    s3_prefix: str = "recordings/"
    format: str = "opus"  # key of FORMATS
    chunk_size: int = 64 * 1024  # plaintext bytes per encrypted frame
    retention_default_days: int = 365
    # category -> days; categories not listed get retention_default_days
    retention_days: dict[str, int] = field(default_factory=dict)
    # a spool file unchanged this long is treated as finished even without an AMI event
    idle_seconds: float = 30.0
    # after Asterisk says the recording stopped, wait this long for the file to be closed
    settle_seconds: float = 1.0
    scan_interval: float = 2.0  # seconds between spool scans
    workers: int = 2  # recordings processed at once (each encodes in a thread of its own)
    retry_initial: float = 1.0  # first back-off after a storage failure, seconds
    retry_max: float = 300.0  # back-off ceiling
    # storage failing continuously this long raises the alarm (log + metric)
    storage_alarm_after: float = 60.0
    spool_alarm_free_percent: float = 15.0  # alarm when the spool filesystem has less free
    spool_alarm_free_bytes: int = 512 * 1024 * 1024  # ...or less than this many bytes free

    def __post_init__(self) -> None:
        if self.format not in FORMATS:
            raise ValueError(f"recorder.format must be one of {sorted(FORMATS)}")
        if self.storage not in ("local", "s3"):
            raise ValueError("recorder.storage must be 'local' or 's3'")
        if self.retention_default_days <= 0:
            raise ValueError("recorder.retention_default_days must be > 0")
        for name in (
            "idle_seconds",
            "scan_interval",
            "retry_initial",
            "retry_max",
            "purge_interval",
        ):
            if getattr(self, name) <= 0:
                raise ValueError(f"recorder.{name} must be > 0")
        if self.workers < 1:
            raise ValueError("recorder.workers must be >= 1")

    def retention_days_for(self, category: str) -> int:
        return self.retention_days.get(category, self.retention_default_days)

    def s3_credentials(self) -> S3Credentials:
        return S3Credentials.from_env()


@dataclass(frozen=True)
class AccessSettings:
    """The `[recorder_access]` section .

    tokens_file: the bearer-token file described in this module's docstring (keep it out of
    the repository; it holds hashes only, but it decides who may listen to calls).
    retention_file: retention categories and terms (`dialplans/retention.yaml`).
    """

    tokens_file: Path = Path("var/recorder/tokens.yaml")
    retention_file: Path = Path("dialplans/retention.yaml")


class WithRecorderSettings(Protocol):
    """What the recorder's commands read of the product's settings (the composition root's
    `Settings` is one)."""

    @property
    def store(self) -> StoreSettings: ...

    @property
    def ami(self) -> AmiSettings: ...

    @property
    def recorder(self) -> RecorderSettings: ...

    @property
    def recorder_access(self) -> AccessSettings: ...

    @property
    def audit(self) -> AuditSettings: ...
