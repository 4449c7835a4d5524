"""Callbacks: the ACD calls a caller back instead of keeping them on hold.

- ``model.py``      the callback row (table ``callbacks``), its states, `CallbackRefused`
- ``settings.py``   `CallbackSettings` (``[callbacks]``)
- ``store.py``      `CallbackStore`: the table; bookings under the rate limits, claims,
                    leases and take-backs
- ``numbers.py``    the numbers a callback may call (``dialplans/callback-numbers.yaml``)
- ``originate.py``  `CallbackDialler`: AMI Originate of the operator's leg, then the
                    citizen's, following the operator's leg until it hangs up
- ``live_legs.py``  `CallbackLegs`: before a citizen whose last call's result the AMI link
                    lost is dialled again, is a leg of that call still up?
- ``scheduler.py``  `CallbackScheduler`: requests, due callbacks, claims, one per node
- ``http.py``       ``/api/callbacks`` for services and staff, with access policies and audit
                    (`add_callback_routes`)

How the whole works is in `routing.callbacks.scheduler`'s docstring.
"""
