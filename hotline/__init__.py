"""The controller's core: the wire to Asterisk and the plumbing every part shares.

`hotline.agi` speaks FastAGI (one session per call), `hotline.ami` keeps the AMI link,
`hotline.clock` is every clock (wall, hand-driven, simulated),
`hotline.store` holds persistence and shared call state, `hotline.controller` starts and stops
the parts of one node in order, and `hotline.cli` is the single `hotline` command. Nothing
in the protocol or store code knows about menus, queues or recordings.
"""
