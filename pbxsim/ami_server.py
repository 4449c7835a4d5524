"""The simulated PBX's Asterisk Manager Interface: an asyncio TCP server that answers like
Asterisk 22 with the transcripts' manager.conf (tests/data/asterisk/ami-*.txt, conf/manager.conf).

* Greeting ``Asterisk Call Manager/11.0.0`` with no empty line after it.
* Login: the right secret gives ``Authentication accepted``, then ``FullyBooted`` to that client
  and a ``SuccessfulAuth`` security event; a wrong secret is answered ``Authentication failed``
  after Asterisk's one-second pause, then closed (ami-login-bad-plain-secret.txt); any other
  action before login but Challenge is refused with ``Permission denied``.
* Challenge (``AuthType: MD5``) answers ``Challenge: <up to 9 digits>``, the same for the whole
  session; a Login with ``AuthType: MD5`` and ``Key: md5(challenge + secret)`` logs in, a wrong
  key is answered ``Authentication failed`` after Asterisk's one-second pause, then closed
  (manager.c ``action_challenge``, ``authenticate``, ``action_login``).
* With an ``ssl_context`` the server speaks TLS only, as Asterisk's manager TLS port.
* Ping, Command (Asterisk 22 form: ``Message: Command output follows`` and one ``Output:`` per
  line), QueueSummary, QueueStatus, CoreShowChannels (event lists), QueueAdd, QueuePause,
  QueueRemove, Originate (the call itself is run by an `Originator`, the AGI half), Events,
  Logoff, Setvar and Redirect on the channels the simulator's events announced (by name or
  uniqueid, as Asterisk 22 looks channels up; Redirect takes the channel out of its bridge
  with a ``BridgeLeave`` and moves it, but the simulator runs no dialplan at the target),
  Hangup of the Originator's calls, DeviceStateList (the softphones' cached states);
  anything else gets Asterisk's ``Invalid/unknown command`` error and a ``RequestBadFormat``
  security event.
* `AmiServer.emit` is the simulator's `EventSink`: every event goes, with its ``Event`` and
  ``Privilege`` headers, to every logged-in client allowed to read its class.

How the work is shared: `ami_core` is the server and the session actions, `ami_queue_actions`
and `ami_call_actions` the other actions, `ami_accounts` manager.conf and privileges,
`ami_session` one client, `ami_channels` the channel list, `ami_originate` the Originate seam.

A client that sends bytes that are not AMI, a message larger than ``max_message_bytes``, a header
carrying a CR or LF (an attempt to smuggle a line into what the server echoes), or that stops
reading while events pile up, is disconnected; the other clients do not notice.
"""

from __future__ import annotations

from pbxsim.ami_call_actions import CallActions
from pbxsim.ami_queue_actions import QueueActions


class AmiServer(QueueActions, CallActions):
    """The AMI half of the simulated PBX. Use ``async with AmiServer(...) as server`` or
    `start`/`close`; `port` is the bound port (pass ``port=0`` to let the OS pick)."""
