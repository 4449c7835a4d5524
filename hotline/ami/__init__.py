"""The controller's Asterisk Manager Interface link.

It owns the AMI wire format (`protocol`: parsing and encoding, no I/O) and the one client that
keeps the controller logged in to Asterisk (`client.AmiClient`): actions with their replies and
event lists, events dispatched by name, keepalive pings, reconnection with back-off and a
resynchronisation hook. What the events mean for queues, agents and calls is decided elsewhere.
This package imports nothing, so `hotline.ami.protocol` can be used alone.
"""
