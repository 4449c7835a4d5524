"""The core: the wire to Asterisk and the plumbing every part of the product shares.

It owns FastAGI (`hotline.agi`: the wire format, one session per call, the server) and the AMI
link (`hotline.ami`: the wire format and the client that stays logged in), persistence and
shared call state (`hotline.store`), structured logs with personal data masked
(`hotline.logs`), every clock (`hotline.clock`: wall, hand-driven, simulated), the core's
settings and the loader every settings file goes through (`hotline.settings`), the
operations endpoint and its metrics (`hotline.web`, `hotline.metrics`) and the one polling
loop for file watchers (`hotline.periodic`).

The core knows no feature: it never imports the parts (`ivr`, `routing`, `agents`,
`recorder`) nor the composition root that wires them together; the parts import the core.
(`controller.settings`, `controller.node` and `controller.cli` are the composition root's pieces
still housed here, on their way to `controller/`.) The wire-format modules
(`hotline.agi.protocol`, `hotline.ami.protocol`) need the standard library only, so the PBX
simulator and tools can use them alone.
"""
