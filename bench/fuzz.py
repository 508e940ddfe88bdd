"""The API fuzzing of tests/web/test_fuzz_api.py in its long form, by hand.

Run:  python bench/fuzz.py [--examples 2000] [--scenarios 200] [--seed 1]
                          [--roles viewer,publisher,admin,anonymous] [--answers]

Starts Gongkai on a temp data dir (SQLite, embedded Redis) with the test fixtures' directory and
objects, loads the schema from its live ``/api/v1/openapi.json``, sends ``--examples`` cases per
operation and role, then ``--scenarios`` chains of requests along the document's links per role.
Prints how many requests it sent, how many got a server error (5xx or no answer), each distinct
failing request and, with ``--answers``, how often each operation answered each status. Exit
status 1 if any request failed a check.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import schemathesis

from gongkai.cli.embedded_redis import EmbeddedRedis
from gongkai.storage.models import Role
from tests.support import prepare_db, running_app, settings_for, token
from tests.web.fuzzing import fuzz_operations, fuzz_stateful, quiet_access_log, seed_objects


async def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--examples", type=int, default=2000, help="per operation and role")
    parser.add_argument("--scenarios", type=int, default=200, help="stateful chains per role")
    parser.add_argument("--seed", type=int, default=1, help="of the per-operation runs")
    parser.add_argument("--answers", action="store_true", help="count statuses per operation")
    parser.add_argument("--roles", default="viewer,publisher,admin,anonymous")
    parser.add_argument("--quiet", action="store_true", help="no progress lines")
    args = parser.parse_args()
    # handlers that raise log their tracebacks: the summary below names each failing request
    logging.getLogger("aiohttp.server").setLevel(logging.CRITICAL)
    with tempfile.TemporaryDirectory(prefix="gongkai-fuzz-") as tmp:
        redis = EmbeddedRedis(Path(tmp) / "redis")
        try:
            s = settings_for(Path(tmp) / "data")
            await prepare_db(s)
            tokens: dict[str, str | None] = {}
            for role in args.roles.split(","):
                tokens[role] = None if role == "anonymous" else await token(s, Role(role), role)
            anchors = await seed_objects(s, redis.url)
            async with running_app(s, redis.url) as client:
                base = str(client.make_url("")).rstrip("/")
                schema = await asyncio.to_thread(
                    schemathesis.openapi.from_url, f"{base}/api/v1/openapi.json"
                )
                started = time.monotonic()
                with quiet_access_log():
                    report = await asyncio.to_thread(
                        fuzz_operations,
                        schema,
                        base,
                        tokens,
                        examples=args.examples,
                        anchors=anchors,
                        seed_value=args.seed,
                        progress=None if args.quiet else lambda line: print(line, flush=True),
                    )
                    if args.scenarios:
                        chains = await asyncio.to_thread(
                            fuzz_stateful, schema, base, tokens, scenarios=args.scenarios
                        )
                        report.requests += chains.requests
                        report.findings += chains.findings
                        report.answers.update(chains.answers)
                seconds = time.monotonic() - started
        finally:
            redis.close()
    errors = report.server_errors
    print(f"\n{report.requests} requests in {seconds:.0f} s; {len(errors)} server errors; ", end="")
    print(f"{len(report.findings) - len(errors)} other nonconforming answers")
    print(
        "server errors, every request:" if errors else "",
        *(f"  {f.line()}" for f in errors),
        sep="\n",
    )
    others = [f for f in report.distinct() if not f.server_error]
    print(
        "other failures, once per operation, role and status:" if others else "",
        *(f"  {f.line()}" for f in others),
        sep="\n",
    )
    if args.answers:
        for (method, path, status), n in sorted(report.answers.items()):
            print(f"  {n:7d}  {status}  {method} {path}")
    return 1 if report.findings else 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
