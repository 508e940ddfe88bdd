"""The fault scenarios of tests/faults/ in their full form: 2,000 villages, by hand.

Run:  python bench/faults.py [--villages 2000] [--only kill,redis] [--database sqlite,postgres]

Each scenario starts a real redis-server (no persistence), SQLite or a throwaway PostgreSQL
cluster, two `gongkai worker` processes and a WeCom robot fake that takes 150 ms per message,
publishes one notice to every village's group, does the fault at about a third of the way and
then reads the fake's own record: villages reached, villages missing, messages sent twice
(against what was in flight at the fault), seconds from the end of the fault until every
delivery had ended, and whether the workers were still running. Exit status 1 if any failed.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.faults import scenarios


async def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--villages", type=int, default=2000)
    parser.add_argument("--only", default=",".join(scenarios.FAULTS))
    parser.add_argument("--database", default="sqlite,postgres")
    args = parser.parse_args()
    # a killed worker's connections reset mid-request: the fake's server says so at length
    logging.getLogger("aiohttp.server").setLevel(logging.CRITICAL)
    failed = 0
    for database in args.database.split(","):
        for fault in args.only.split(","):
            if fault == "postgres" and database != "postgres":
                continue
            with tempfile.TemporaryDirectory(prefix="gongkai-faults-") as tmp:
                report = await scenarios.run(fault, database, args.villages, Path(tmp))
            print(("ok    " if report.ok else "FAIL  ") + report.line(), flush=True)
            failed += not report.ok
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(asyncio.run(main()))
