"""ACD: which operator answers a waiting caller, when, and what the caller hears meanwhile.

What this package owns
----------------------
- ``groups.py``      skill groups from ``dialplans/groups.yaml`` (validated, errors at file:line)
- ``acd.py``         the routing core's facade ``Acd``: pure, synchronous, clock-injected (no
                     I/O) - driven by the controller on the wall clock and by the simulator
                     (``des.py``) on a simulated one. Its module docstring is the driver API.
                     Its parts: ``model.py`` (records), ``queue.py`` (waiting callers),
                     ``selection.py`` (which operator takes whom), ``timers.py``
- ``state.py``       shared ACD state: in process, or Redis with atomic Lua claims
- ``node.py``        one controller node: the core + a store, claims, restart; degraded mode
                     in ``failover.py``, lost nodes' callers in ``lost_nodes.py``
- ``connect.py``     the FastAGI hooks: ``connect_call`` and ``operator_answered``;
                     ``announcements.py`` what a waiting caller hears
- ``metrics.py``     Prometheus figures per group (``register(acd)``) and the Redis alarm
- ``part.py``        ``AcdService``, ``CallbackService``: the ACD as a part of the running
                     controller (what the composition root builds, starts and stops)
- ``group_hours.py`` the groups' opening hours (``schedule: NAME`` -> ``NAME.yaml``)
- ``callbacks/``     calling a caller back (model, settings, store, originate, scheduler, http)
- ``admin/``         editing groups, operators and schedules while running (service,
                     yaml_edit, errors, reload, http)
- ``settings.py``    ``RoutingSettings`` (the lead wires it in as ``[routing]``), ``locate``
- ``testing.py``     a hand-driven clock and terse groups/operators for tests and what-ifs
- ``erlang.py``, ``des.py``, ``des_acd.py``, ``traffic.py``, ``staffing_cli.py`` Erlang C
                     staffing and the day simulator

How a caller reaches an operator on a real Asterisk 22
------------------------------------------------------
The caller's own FastAGI session does it. The menu calls
``await connect_call(session, node, group)``: the caller is queued, hears
``StartMusicOnHold`` (and position / expected-wait announcements at intervals) while the
session awaits the ACD's decision, and when an operator is chosen the session runs
``EXEC Dial PJSIP/1001,15,gU(hotline-acd-answered^<uniqueid>)`` on the caller's channel.
The ``U()`` subroutine runs on the operator's channel the moment they pick up and calls the
controller back (``AGI(agi://CONTROLLER:4573/acd-answered?call=...)`` -> the lead routes it
to ``operator_answered``), which marks the operator talking. When ``Dial`` returns,
``DIALSTATUS`` says ANSWER (conversation over: wrap-up starts) or NOANSWER/BUSY/CHANUNAVAIL
(the operator is paused "no answer" and the caller, still first, waits for the next one).

Why Dial from the caller's session rather than AMI Redirect or Bridge:
- One owner per call. The FastAGI session already owns the caller's channel; Dial keeps it
  there, so when the conversation ends control comes back to the same session (survey,
  transfer to tier 2, hang-up) with ``DIALSTATUS``/``ANSWEREDTIME`` in hand. A Redirect moves
  the channel out of AGI (the session ends with ``HANGUP``/``AGISTATUS``) and a separate
  controller path has to find the call again.
- No races between two control paths. With AMI Redirect/Bridge the controller must first
  Originate to the operator, wait for answer, then bridge two channels it does not own; a
  caller hanging up between those steps leaves an operator in a bridge with nobody, and an
  AMI link drop in the middle loses the call. Dial does ring, answer, bridge and hang-up
  handling inside Asterisk atomically.
- It works when AMI is down: FastAGI alone connects calls (AMI is only needed for device
  state and callbacks).
- Cost: the AGI session is busy during the conversation (one socket and one coroutine per
  call, no thread), which the FastAGI server is built for.

The "<50 ms from ready to ringing" budget
-----------------------------------------
Operator presses "ready" (HTTP) or wrap-up ends -> ``AcdNode.ready`` -> core decision
(bench/acd.py: p99 well under 0.1 ms in process with 2,000 operators, 50 groups, 5,000
waiting) -> compare-and-set + Lua claim on Redis (two round trips, p99 about 1 ms on
loopback, a few times the raw PING measured beside it) -> the caller's session future
resolves -> one AGI ``EXEC Dial`` line to Asterisk (one write) -> Asterisk sends INVITE.
The ACD's share is the decision plus claims: about 1-2 % of the budget at p99 on Redis.

Several nodes, restart, Redis down: see ``node.py``. Hooks the lead wires: ``connect_call``,
``operator_answered``, ``agents.http.add_operator_routes``, ``agents.devices.DeviceWatcher``,
``routing.metrics.register`` and ``AcdNode.run`` (the timer loop) at start-up.
"""
