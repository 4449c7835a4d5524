"""A protocol-level stand-in for Asterisk 22, to drive the controller without a real PBX.

Asterisk cannot run where the controller is developed and tested, so the simulator speaks its
two protocols byte for byte as the transcripts in tests/data/asterisk/ show them: it dials the
controller's FastAGI server the way ``AGI(agi://...)`` does, and serves AMI the way the manager
interface does. It is for replaying real sessions in tests, for load runs, and for rehearsing
what callers do to a hotline: press keys early, hang up mid-prompt, send hostile caller IDs.

How the parts fit:

* `model` holds what both halves share: `SimChannel` (the channel every event is about),
  `EventSink` (where events go) and `QueueService` (the queues ``Queue()`` joins).
* `callers` describes callers: the number dialled, the caller ID, a timeline of key presses
  and the moment they hang up. `scenario` reads those from YAML files, with the agents the
  queue half simulates, and reports mistakes by file and line.
* `channel` is the Asterisk side of each AGI command on one channel: the reply res_agi would
  write, the channel state it would change, the events it would raise, all timed by a clock
  that runs in real, scaled or purely simulated time.
* `fastagi` is the FastAGI client: it connects, sends the ``agi_*`` environment, feeds
  commands to `channel` and writes replies, the unsolicited ``HANGUP`` and ``AGISTATUS``.
* `runner` runs a whole scenario: one dialplan per call around the AGI, concurrency, and a
  report of every call's fate.
* The AMI half (`ami_server`, `queues`, `clock`) turns the events into manager-interface
  bytes and simulates queues and agents; the AGI half only knows it through `EventSink`,
  `QueueService` and, optionally, `clock`'s PBX-wide uniqueid counters (``run_scenario(...,
  ids=clock)``). Each call's own timing stays in `channel`'s per-call clocks.
"""
