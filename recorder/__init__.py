"""Recorder: every answered call recorded, encrypted, shipped to storage and purged on time.

Modules:

* `keys`: master key files (outside the database), per-recording data keys, the framed
  AES-256-GCM stream format, crypto-shredding (`destroy`).
* `models`: the `recordings` table (migration 0003_recordings) and `RecordingStore`.
* `storage`: one interface, a local directory and S3-compatible object storage; `verify`.
* `pipeline`: spool watcher and the idempotent steps spool -> transcode -> encrypt -> upload ->
  verify -> delete spool file; back-off and alarms; `mixmonitor_args` for the controller.
* `settings`: `RecorderSettings` (the `[recorder]` section); `metrics`: its Prometheus metrics.
* `cli`: `hotline recorder run | keygen | rewrap` and `watch_ami` (finished recordings from AMI).
* `agi`: `StartRecording`, the hook that runs MixMonitor when the controller answers a call.
* `service`: `RecorderService`, what `hotline serve` runs for recordings (hook, `/recordings`
  API, periodic purge, embedded worker fed by the controller's AMI link).
* `audit`, `access`, `sampling`, `retention`, `audit_cli`: the audit log, role-based access and
  playback, quality sampling and clips, retention purge and legal hold.
"""
