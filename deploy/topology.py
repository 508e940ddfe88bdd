"""The production topology on this one machine, no containers: PostgreSQL, Redis, two
``gongkai serve`` and three ``gongkai worker`` processes, configured from ``systemd/env.example``
exactly as the units are (only the addresses point at the local servers), then one notice
published through the API to 500 village groups (a local WeCom robot fake stands in for WeCom).

Run:  python deploy/topology.py [--villages 500] [--keep]

It prints what it started, the publish, each process's state, and the operator's view from
``/metrics``: deliveries by status, the oldest undelivered row's age, expired leases and
reconciled rows. ``--keep`` leaves everything running until Ctrl-C, to look around.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import aiohttp

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.faults.cluster import (  # noqa: E402  (the repository root is on the path now)
    Faults,
    county_directory,
    notice,
    robot,
    until,
)
from tests.servers import PgServer, RedisServer, free_port  # noqa: E402


def env_file(path: Path) -> dict[str, str]:
    out = {}
    for line in path.read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#") and "=" in line:
            key, value = line.split("=", 1)
            out[key] = value
    return out


def spawn(words: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(words, env=env, stdout=log.open("wb"), stderr=subprocess.STDOUT)


async def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--villages", type=int, default=500)
    parser.add_argument("--keep", action="store_true")
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="gongkai-topology-"))
    redis, pg = RedisServer(), PgServer()
    redis.start()
    pg.start()
    procs: list[tuple[str, subprocess.Popen[bytes]]] = []
    try:
        async with robot(Faults(latency=0.05)) as (robot_url, state):
            env = {k: v for k, v in os.environ.items() if not k.startswith("GONGKAI_")}
            env.update(env_file(ROOT / "deploy" / "systemd" / "env.example"))
            env.update(
                GONGKAI_DATABASE_URL=pg.url,
                GONGKAI_REDIS_URL=redis.url,
                GONGKAI_SECRET_KEY="topology-demo-secret-key",
                GONGKAI_DATA_DIR=str(tmp),
                GONGKAI_WECOM_API_BASE=robot_url,
                GONGKAI_QUIET_HOURS="off",
                PYTHONPATH=str(ROOT),
            )
            gongkai = [sys.executable, "-m", "gongkai.cli"]

            def cli(*words: str, stdin: str | None = None) -> str:
                done = subprocess.run(
                    [*gongkai, *words], env=env, input=stdin, capture_output=True, text=True
                )
                if done.returncode:
                    raise SystemExit(f"gongkai {' '.join(words)} failed:\n{done.stderr}")
                return done.stdout

            print(cli("db", "upgrade").strip())
            directory = tmp / "directory.yaml"
            directory.write_text(county_directory(args.villages))
            print(cli("directory", "import", str(directory)).strip().splitlines()[-1])
            token = cli("token", "create", "--role", "publisher", "--name", "topology").split()[-1]
            ports = [free_port(), free_port()]
            for port in ports:
                env_port = {**env, "GONGKAI_PORT": str(port)}
                p = spawn([*gongkai, "serve"], env_port, tmp / f"serve-{port}.log")
                procs.append((f"serve :{port}", p))
            for n in range(3):
                p = spawn([*gongkai, "worker"], env, tmp / f"worker-{n}.log")
                procs.append((f"worker {n + 1}", p))
            async with aiohttp.ClientSession() as http:

                async def serving() -> bool:
                    for port in ports:
                        try:
                            async with http.get(f"http://127.0.0.1:{port}/healthz") as r:
                                if r.status != 200:
                                    return False
                        except aiohttp.ClientError:
                            return False
                    return True

                await until(serving, 60, every=0.2)
                print(f"started: {', '.join(name for name, _ in procs)} (logs in {tmp})")
                item = notice("topology-2026-0001")
                began = time.monotonic()
                async with http.post(
                    f"http://127.0.0.1:{ports[0]}/api/v1/items",
                    json=item,
                    headers={"Authorization": f"Bearer {token}"},
                ) as r:
                    body = await r.json()
                    planning = body.get("planning", {}).get("status")
                    print(f"POST /api/v1/items → {r.status}, planning {planning}")

                async def ended() -> bool:
                    url = f"http://127.0.0.1:{ports[1]}/api/v1/items/{item['id']}"
                    async with http.get(url, headers={"Authorization": f"Bearer {token}"}) as r:
                        return (await r.json()).get("status") == "published"

                took = await until(ended, 300, every=0.5)
                print(
                    f"published: {len({m.key for m in state.messages})} of {args.villages} "
                    f"village groups reached, {len(state.messages)} messages, "
                    f"in {took:.1f} s ({time.monotonic() - began:.1f} s from the POST)"
                )
                async with http.get(f"http://127.0.0.1:{ports[1]}/metrics") as r:
                    for line in (await r.text()).splitlines():
                        if line.startswith(
                            ("gongkai_deliveries{", "gongkai_oldest", "gongkai_worker_events")
                        ):
                            print("  " + line)
            for name, p in procs:
                print(f"{name}: {'running' if p.poll() is None else f'exited {p.returncode}'}")
            if args.keep:
                print(
                    json.dumps({"serve": [f"http://127.0.0.1:{p}" for p in ports], "token": token})
                )
                print("Ctrl-C stops everything.")
                stop = asyncio.Event()
                asyncio.get_running_loop().add_signal_handler(signal.SIGINT, stop.set)
                await stop.wait()
    finally:
        for _, p in procs:
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        for _, p in procs:
            try:
                p.wait(15)
            except subprocess.TimeoutExpired:
                p.kill()
        redis.close()
        pg.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(asyncio.run(main()))
