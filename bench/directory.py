"""Directory import benchmark: `gongkai directory import` of a county of 10,000 village targets.

Run by hand:  python bench/directory.py [--runs 3] [--targets 10000] [--database sqlite,postgres]

Five cases, each the whole command as a county's operator runs it (a fresh process: start-up,
migrations checked, parsing, validating, writing):

- flat:      10,000 village-group targets in one village (bench/fanout.py's county), a fresh
             database;
- towns:     100 towns × 100 villages, one target each (10,101 regions), a fresh database;
- unchanged: the towns county imported again as it is (known by its digest: not read again);
- re-read:   the same county with a comment added, so it is parsed, validated and compared
             row by row, and changes nothing;
- 1% changed: the towns county again with 100 targets' options changed.

SQLite always; PostgreSQL when its binaries are installed (a throwaway cluster on a loopback
port, a fresh database per run). Prints each run's wall time and the CPU the command used, then
the medians. The goal (issue #14): a county in under 2 s, a re-import that changes nothing in
under 1 s.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.fanout import directory_yaml  # noqa: E402  (the fan-out's county, as it imports it)

COUNTY = "150627"


def towns_yaml(targets: int, changed_every: int = 0) -> str:
    """Towns of 100 villages, one village WeChat group per village; with ``changed_every`` set,
    every that-many-th village's target has an option the earlier file did not."""
    lines = ["regions:", f'  - code: "{COUNTY}"', "    name: 伊金霍洛旗", "    children:"]
    for t in range((targets + 99) // 100):
        town = f"{COUNTY}{100 + t:03d}"
        lines += [f'      - code: "{town}"', f"        name: 第{t + 1}镇", "        children:"]
        for v in range(min(100, targets - t * 100)):
            code = f"{town}{200 + v:03d}"
            n = t * 100 + v
            option = (
                ", quiet_hours: '22:00-07:00'" if changed_every and n % changed_every == 0 else ""
            )
            lines += [
                f'          - code: "{code}"',
                f"            name: 第{t + 1}镇第{v + 1}村",
                "            targets:",
                f"              - {{channel: village_group, robot_key: robot-{code}{option}}}",
            ]
    return "\n".join(lines) + "\n"


def run_import(path: Path, env: dict[str, str]) -> tuple[float, float, str]:
    """(wall seconds, CPU seconds of the command, its last line)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "gongkai.cli", "directory", "import", str(path)],
        env=env,
        capture_output=True,
        text=True,
    )
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode:
        raise SystemExit(f"directory import failed:\n{done.stderr}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu, done.stdout.strip().splitlines()[-1]


async def _create_database(server_url: str, name: str) -> None:
    from sqlalchemy import text

    from gongkai.storage.db import make_engine

    engine = make_engine(server_url)
    async with engine.connect() as conn:
        await conn.execution_options(isolation_level="AUTOCOMMIT")
        await conn.execute(text(f"CREATE DATABASE {name}"))
    await engine.dispose()


def fresh_env(tmp: Path, pg_server: str | None) -> dict[str, str]:
    """A data dir of its own and, on PostgreSQL, a database of its own."""
    data_dir = tmp / uuid.uuid4().hex[:8]
    data_dir.mkdir()
    env = {
        **os.environ,
        "GONGKAI_DATA_DIR": str(data_dir),
        "GONGKAI_SECRET_KEY": "bench",
        "GONGKAI_LOG_LEVEL": "WARNING",
    }
    if pg_server:
        name = f"dir_{uuid.uuid4().hex[:8]}"
        asyncio.run(_create_database(pg_server, name))
        env["GONGKAI_DATABASE_URL"] = pg_server.rsplit("/", 1)[0] + "/" + name
    return env


def bench(database: str, pg_server: str | None, runs: int, targets: int, tmp: Path) -> None:
    files = {
        "flat": directory_yaml(targets),
        "towns": towns_yaml(targets),
        "changed": towns_yaml(targets, changed_every=100),
        "re-read": towns_yaml(targets) + "# the same county, another file\n",
    }
    paths = {}
    for name, body in files.items():
        paths[name] = tmp / f"{name}.yaml"
        paths[name].write_text(body, encoding="utf-8")
    results: dict[str, list[tuple[float, float]]] = {}

    def record(case: str, measure: Callable[[], tuple[float, float, str]]) -> None:
        wall, cpu, last = measure()
        results.setdefault(case, []).append((wall, cpu))
        print(f"  {database:<8} {case:<11} {wall:6.2f} s wall, {cpu:5.2f} s CPU   ({last})")

    for _ in range(runs):
        record("flat", lambda: run_import(paths["flat"], fresh_env(tmp, pg_server)))
        env = fresh_env(tmp, pg_server)
        record("towns", lambda: run_import(paths["towns"], env))  # noqa: B023
        record("unchanged", lambda: run_import(paths["towns"], env))  # noqa: B023
        record("re-read", lambda: run_import(paths["re-read"], env))  # noqa: B023
        record("1% changed", lambda: run_import(paths["changed"], env))  # noqa: B023
    for case, figures in results.items():
        wall = statistics.median(w for w, _ in figures)
        cpu = statistics.median(c for _, c in figures)
        print(f"{database:<8} {case:<11} median of {len(figures)}: {wall:.2f} s ({cpu:.2f} s CPU)")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--targets", type=int, default=10_000)
    ap.add_argument("--database", default="sqlite,postgres")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="gongkai-bench-dir-") as tmp:
        for database in args.database.split(","):
            if database == "sqlite":
                bench("sqlite", None, args.runs, args.targets, Path(tmp))
                continue
            from tests.servers import PgServer

            try:
                server = PgServer()
            except RuntimeError:
                print("postgres: pg_ctl not found, skipped")
                continue
            server.start()
            try:
                bench("postgres", server.url, args.runs, args.targets, Path(tmp))
            finally:
                server.close()


if __name__ == "__main__":
    main()
