"""Recorder: every answered call recorded, encrypted, shipped to storage and purged on time.

Modules, by role (the same file names in every part):

* `part`: `RecorderService`, what the composition root builds, starts and stops for recordings
  (hook, `/recordings` API, periodic purge, embedded worker fed by the controller's AMI link).
* `http`: the `/recordings` HTTP API. `settings`: `RecorderSettings` (the `[recorder]` section)
  and `AccessSettings`. `cli`: `hotline recorder run | keygen | rewrap` and `watch_ami`
  (finished recordings from AMI); `recordings_cli`: `hotline recordings ...`.

Modules, by job:

* `keys`: master key files (outside the database), per-recording data keys, the framed
  AES-256-GCM stream format, crypto-shredding (`destroy`).
* `models`: the `recordings` table (migration 0003_recordings), `RecordedCall` and
  `RecordingStore`.
* `storage`: one interface, a local directory and S3-compatible object storage; `verify`.
* `spool`: MixMonitor's spool files (`mixmonitor_args`); `audio`: encoding in process (PyAV:
  FFmpeg's libraries, libopus), in a worker thread, no process per recording;
  `alarms`: the storage and spool alarms and the back-off.
* `pipeline`: the spool watcher and the idempotent steps spool -> transcode -> encrypt ->
  upload -> verify -> delete spool file.
* `agi`: `StartRecording`, the hook that runs MixMonitor when the controller answers a call.
* `permissions`: who may do what with recordings; `playback`: authorised, audited, decrypted
  reading; `sampling`: quality samples and clips (cut by an ffmpeg process); `retention`: the
  purge and legal holds.

Bearer tokens (`hotline.auth`) and the audit log (`hotline.audit`) are the core's.
"""
