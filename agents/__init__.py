"""Operators: skills, states (ready, ringing, talking, wrap-up, paused) and their softphones.

- ``operators.py`` operators from ``dialplans/operators.yaml`` (validated, errors at
  file:line), the operator states and the transitions allowed between them
- ``http.py``      the operator HTTP API (login, ready, pause with reason, wrap-up done,
  logout, state list) with Russian messages for the operator's screen
- ``acting.py``    who may act on an operator (themselves; a supervisor with a reason) and
  the audit of every act
- ``devices.py``   softphone registration from AMI (DeviceStateChange, ContactStatus): a
  phone that is not registered is never offered a call
- ``feature_codes.py`` the same actions from the phone: *81 log in, *82[N] pause, *83 ready,
  *84 log out
- ``escalation.py`` sending a caller to an outside agency from the allow-list
  ``dialplans/agencies.yaml`` (AMI Setvar + Redirect), data and history on the SIP headers
"""
