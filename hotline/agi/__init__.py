"""FastAGI: the connection Asterisk opens for every call that runs ``AGI(agi://...)``.

This package owns the AGI side of the controller and nothing above it (menus, queues and
recordings live in their own packages and only see `AgiSession`). It imports nothing, so
`hotline.agi.protocol` can be used alone (the simulator, tools) without the server's weight:

* `hotline.agi.protocol`: the wire format, sans-IO (environment lines, quoting, replies);
* `hotline.agi.session`: `AgiSession`, one call's commands, one at a time, with the rules of
  hang-up (the ``HANGUP`` notice is never a reply; ``511`` and later commands raise
  `CallerHungUp`);
* `hotline.agi.server`: `FastAgiServer`, the asyncio server that reads the environment, routes
  the script to a handler registered on a `Router`, enforces the limits, closes the socket after
  the handler and drains on shutdown.
"""
