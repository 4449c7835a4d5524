"""Back-office work queue benchmark: the queue query over 100 000 tickets on PostgreSQL.

Measured in one run, on the same rows:

1. `TicketStore.queue` (SQLAlchemy Core, the statement the work queue page runs: open tickets
   of one group, soonest due first, joined to their contacts, 500 rows) beside the same SQL
   sent by asyncpg directly with no layer, and the supervisor's view (all groups) likewise;
2. `TicketDesk.queue`: the same plus the audit row every listing leaves (hash chain append).

The rows are checked equal before timing. Usage: .venv/bin/python bench/tickets.py [--quick]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import asyncpg  # noqa: E402
from sqlalchemy import text  # noqa: E402
from sqlalchemy.dialects import postgresql  # noqa: E402

from bench.throwaway_postgres import throwaway_schema  # noqa: E402
from hotline.audit import AuditLog  # noqa: E402
from hotline.auth import Actor  # noqa: E402
from hotline.store.db import create_engine  # noqa: E402
from hotline.store.migrate import upgrade  # noqa: E402
from workspace.backoffice import load_backoffice  # noqa: E402
from workspace.registry import ContactRegistry  # noqa: E402
from workspace.store import ContactStore  # noqa: E402
from workspace.ticket_store import TicketStore, queue_statement  # noqa: E402
from workspace.tickets import TicketDesk  # noqa: E402

GROUPS = 10
LIMIT = 500
FILL = """
INSERT INTO contacts (year, sequence, opened_at, channel, line, caller_phone, caller_name,
    identifiers, category, topic, description, group_name, state, resolution, repeat,
    search_text)
SELECT 2026, n, now() - (n % 500) * interval '1 hour', 'call', '88001000001',
    '7916' || lpad(n::text, 7, '0'), '', '{}', 'technical_fault', 'тема ' || n, '',
    'general', 'ticket', '', false, ''
FROM generate_series(1, :count) AS n;
INSERT INTO tickets (contact_id, group_name, state, escalation, opened_at, due_at, updated_at)
SELECT id, 'g' || (id % :groups),
    (ARRAY['new', 'in_progress', 'waiting_citizen', 'resolved', 'closed'])[1 + id % 5], '',
    opened_at, opened_at + interval '48 hours', opened_at
FROM contacts;
ANALYZE contacts; ANALYZE tickets;
"""


async def _timed(run: Callable[[], Awaitable[Any]], rounds: int) -> float:
    """Median seconds of one call."""
    await run()  # warm: plans cached, connections open
    samples = []
    for _ in range(rounds):
        began = time.perf_counter()
        await run()
        samples.append(time.perf_counter() - began)
    return statistics.median(samples)


def _raw_sql(groups: set[str] | None) -> tuple[str, list[Any]]:
    """The work queue's statement as asyncpg takes it: $n parameters, same rows."""
    compiled = queue_statement(groups, LIMIT).compile(
        dialect=postgresql.asyncpg.dialect(), compile_kwargs={"render_postcompile": True}
    )
    return str(compiled), [compiled.params[name] for name in compiled.positiontup or []]


async def main(quick: bool) -> None:
    count, rounds = (20_000, 20) if quick else (100_000, 50)
    async with throwaway_schema() as url:
        await upgrade(url)
        engine = create_engine(url)
        try:
            async with engine.begin() as connection:
                for statement in FILL.split(";"):
                    if statement.strip():
                        await connection.execute(
                            text(statement), {"count": count, "groups": GROUPS}
                        )
            await _report(engine, url, count, rounds)
        finally:
            await engine.dispose()


async def _report(engine: Any, url: str, count: int, rounds: int) -> None:
    store = TicketStore(engine)
    raw = await asyncpg.connect(url.replace("postgresql+asyncpg", "postgresql"))
    try:
        print(f"work queue over {count:,} tickets ({GROUPS} groups, 3/5 open), {LIMIT} rows")
        for label, groups in (("one group", {"g1"}), ("supervisor", None)):
            sql, params = _raw_sql(groups)
            ours = [r.id for r in await store.queue(groups, LIMIT)]
            theirs = [r["id"] for r in await raw.fetch(sql, *params)]
            assert ours == theirs and ours, "the two queries must return the same rows"
            layer = await _timed(lambda g=groups: store.queue(g, LIMIT), rounds)
            bare = await _timed(lambda s=sql, p=params: raw.fetch(s, *p), rounds)
            print(f"  {label:10}: TicketStore.queue {layer * 1000:7.2f} ms   raw asyncpg "
                  f"{bare * 1000:7.2f} ms   ratio {layer / bare:.2f}")  # fmt: skip
    finally:
        await raw.close()
    with tempfile.TemporaryDirectory() as directory:
        office_file = Path(directory) / "backoffice.yaml"
        office_file.write_text(
            "groups:\n  g1:\n    name: G1\n    due_hours: 48\n    members: [bench]\n"
            "categories:\n  default: g1\n"
        )
        office = load_backoffice(office_file)
    audit = AuditLog(engine)
    desk = TicketDesk(store, ContactRegistry(ContactStore(engine), audit), audit, lambda: office)
    person = Actor("bench", "back_office")
    audited = await _timed(lambda: desk.queue(actor=person, source="bench"), rounds)
    listing = await _timed(lambda: store.queue({"g1"}, LIMIT), rounds)
    print(f"  with audit: TicketDesk.queue {audited * 1000:7.2f} ms   store alone "
          f"{listing * 1000:7.2f} ms   ratio {audited / listing:.2f}")  # fmt: skip


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="20 000 tickets (a few seconds)")
    asyncio.run(main(parser.parse_args().quick))
