"""Prometheus metrics of the recorder (served on the controller's `/metrics`).

Labels are small closed sets; never a call id.
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

RECORDINGS = Counter(
    "hotline_recorder_recordings_total",
    "Recordings by how the pipeline finished them",
    ["outcome"],  # verified | kept_original (transcoding failed, original stored encrypted)
)
STAGE_SECONDS = Histogram(
    "hotline_recorder_stage_seconds",
    "Time spent per pipeline stage",
    ["stage"],  # transcode | encrypt | upload | verify
    buckets=(0.01, 0.05, 0.1, 0.5, 1, 2, 5, 15, 60, 300),
)
STORAGE_FAILURES = Counter(
    "hotline_recorder_storage_failures_total", "Storage operations that failed and will be retried"
)
STORAGE_ALARM = Gauge(
    "hotline_recorder_storage_alarm", "1 while storage has been failing longer than allowed"
)
SPOOL_FILES = Gauge("hotline_recorder_spool_files", "Recordings waiting in the spool directory")
SPOOL_BYTES = Gauge("hotline_recorder_spool_bytes", "Bytes waiting in the spool directory")
SPOOL_FREE_BYTES = Gauge(
    "hotline_recorder_spool_free_bytes", "Free bytes on the spool filesystem (for non-root)"
)
SPOOL_ALARM = Gauge(
    "hotline_recorder_spool_alarm", "1 while the spool filesystem is below its free-space threshold"
)
FAILURES = Counter(
    "hotline_recorder_failures_total",
    "Pipeline steps that failed for a reason other than storage being down",
    ["stage"],
)
RECORDING_STARTS = Counter(
    "hotline_recorder_starts_total",
    "Answered calls by whether MixMonitor started",
    ["outcome"],  # started | failed | no_application | bad_call_id
)
