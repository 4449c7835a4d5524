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
* `channel` is the Asterisk side of each AGI command on one channel (`AgiChannel`), composed
  of the ``agi_*`` modules (core, playback, input, variables, control, applications, Queue and
  Dial), with `sounds`, `mixmonitor` and `timeline` beside them; every call is timed by a
  `hotline.clock.CallClock` that runs in real, scaled or purely simulated time.
* `dialplan` reads and runs extensions.conf; `call_dialplan` lets it drive an `AgiChannel`
  (``Newexten`` per priority, ``AGI()`` as a FastAGI session, Dial's ``U()``/``b()``
  subroutines on the dialled channel).
* `fastagi` is the FastAGI client: it connects, sends the ``agi_*`` environment, feeds
  commands to `channel` and writes replies, the unsolicited ``HANGUP`` and ``AGISTATUS``.
* `runner` runs a whole scenario: each call through extensions.conf (the shipped file unless
  the run names another), concurrency, and a report of every call's fate; `main` joins both
  halves on one clock for a scenario file.
* The AMI half (`ami_server` and the ``ami_*`` modules, `queues` and the ``queue_*`` modules,
  `originator`) turns the events into manager-interface bytes and simulates queues and agents;
  the AGI half only knows it through `EventSink`, `QueueService` and, optionally, the PBX-wide
  uniqueid counters of its `hotline.clock.EpochClock` (``run_scenario(..., ids=clock)``);
  `stamps` prints the AMI time formats.
* `status_service` is the stand-in application-status service the demo menus query.

The simulator knows nothing of the product: it imports only the standard library, PyYAML and
the core's wire formats and clock (tests/pbxsim/test_pbxsim_imports.py checks it). What drives
it with the product's settings lives in `controller.simdrive`.
"""
