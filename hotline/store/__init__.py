"""Persistence of call records and shared call state, each behind one small interface.

`hotline.store.db` keeps the durable call log (SQLite for a single node, PostgreSQL when
several controller nodes share it) and `hotline.store.migrate` is the only way its schema is
created or changed. `hotline.store.state` holds the short-lived, cross-node call state
(per-call fields, claims, counters) in process memory or in Redis. The rest of the controller
talks to these interfaces only, so the backends can be swapped by configuration.
"""
