"""How fast are the yearly table, the office's list and the "many applicants" suggestion over
many applications? Run by hand:

    python bench/applications.py [--rows 100000] [--repeat 7]

Fills a fresh SQLite database with N applications over 2025–2027 (every applicant type,
outcome and reason; a tenth still open; subjects repeating), then times, median of the repeats:
``annual(2026)`` (section 三), the open list with working days left for 500 rows (what the
console and the deadlines board show), and ``repeated_subjects`` over a year.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import sys
import tempfile
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from sqlalchemy import insert

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from gongkai.domain.applications import REASONS, ApplicantType, Outcome, Status
from gongkai.domain.workdays import WorkCalendar
from gongkai.storage.application_queries import annual, applications, repeated_subjects
from gongkai.storage.applications import Application
from gongkai.storage.db import make_engine, make_sessionmaker, upgrade
from gongkai.web.application_present import row_of


def rows(n: int) -> list[dict]:
    rnd = random.Random(7)
    start = date(2025, 1, 1)
    out = []
    for i in range(n):
        received = start + timedelta(days=rnd.randrange(3 * 365))
        outcome = rnd.choice(list(Outcome))
        reasons = list(REASONS[outcome])
        still_open = rnd.random() < 0.1
        out.append(
            {
                "number": f"YSQ-{received.year}-{i:06d}",
                "year": received.year,
                "sequence": i,
                "code_hash": "0" * 32,
                "applicant_type": rnd.choice(list(ApplicantType)).value,
                "description": f"subject {rnd.randrange(n // 5)}",
                "purpose": "",
                "language": "zh",
                "channel": "web",
                "reply_channel": "online",
                "subject_key": f"subject{rnd.randrange(n // 5)}",
                "status": Status.handling if still_open else Status.answered,
                "handed_in_at": datetime(received.year, received.month, received.day, tzinfo=UTC),
                "handed_in_on": received,
                "received_on": received,
                "due_on": received + timedelta(days=28),
                "outcome": None if still_open else outcome.value,
                "outcome_reason": None if still_open or not reasons else rnd.choice(reasons),
                "closed_on": None if still_open else received + timedelta(days=rnd.randrange(40)),
                "attachments": [],
                "created_at": datetime.now(UTC),
                "updated_at": datetime.now(UTC),
            }
        )
    return out


async def timed(fn, repeat: int) -> float:  # type: ignore[no-untyped-def]
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        await fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times) * 1000


async def main(n: int, repeat: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite+aiosqlite:///{tmp}/bench.sqlite3"
        await upgrade(url)
        engine = make_engine(url)
        maker = make_sessionmaker(engine)
        data = rows(n)
        async with maker() as s:
            for i in range(0, n, 5000):
                await s.execute(insert(Application), data[i : i + 5000])
            await s.commit()
        cal = WorkCalendar()
        today = date(2026, 12, 5)

        async def table() -> None:
            async with maker() as s:
                await annual(s, 2026)

        async def listing() -> None:
            async with maker() as s:
                apps = await applications(s, open_only=True, limit=500)
                [row_of(a, cal, today) for a in apps]

        async def repeated() -> None:
            async with maker() as s:
                await repeated_subjects(s, since=today - timedelta(days=365), threshold=3)

        print(f"{n:,} applications (SQLite)")
        print(f"  annual table 2026 : {await timed(table, repeat):8.1f} ms")
        print(f"  open list, 500    : {await timed(listing, repeat):8.1f} ms")
        print(f"  repeated subjects : {await timed(repeated, repeat):8.1f} ms")
        await engine.dispose()


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=7)
    args = parser.parse_args()
    asyncio.run(main(args.rows, args.repeat))
