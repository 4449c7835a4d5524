"""Operators: skills, states (ready, ringing, talking, wrap-up, paused) and their softphones.

- ``operators.py`` operators from ``dialplans/operators.yaml`` (validated, errors at
  file:line), the operator states and the transitions allowed between them
- ``http.py``      the operator HTTP API (login, ready, pause with reason, wrap-up done,
  logout, state list) with Russian messages for the operator's screen
- ``devices.py``   softphone registration from AMI (DeviceStateChange, ContactStatus): a
  phone that is not registered is never offered a call
"""
