"""The README's tour, end to end, as a user runs it: `gongkai run --demo` in one terminal (on the
embedded Redis), every command of the tour in another, against the same data dir. No command may
take the service's Redis down; Ctrl-C stops the service cleanly, and its Redis with it."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import pytest

from gongkai.cli.redis_process import pid_alive
from tests.servers import free_port

ROOT = Path(__file__).resolve().parent.parent
# `python -m gongkai.cli.main` would load the CLI twice and lose the faq/telegram commands.
GONGKAI = [sys.executable, "-c", "from gongkai.cli.main import main; main()"]

CURL_ITEM = {  # the README's curl body, as it stands there
    "id": "ejhl-2026-0201",
    "kind": "notice",
    "title": "关于冬季停水检修的通知",
    "issuer": "伊金霍洛旗水务局",
    "issued_at": "2026-11-23",
    "approved_by": "王某",
    "approved_at": "2026-11-23T09:00:00+08:00",
    "secrecy_reviewed": True,
    "disclosure": "public",
    "domain": "市政服务",
    "regions": ["150627100"],
    "channels": ["web"],
    "summary": "12月1日8:00至18:00乌兰木伦镇停水检修。",
    "body": "因管网检修，2026年12月1日8:00至18:00乌兰木伦镇全镇停水，请提前储水。",
}


@dataclass
class Service:
    proc: asyncio.subprocess.Process
    base: str
    env: dict[str, str]
    data_dir: Path
    log: Path
    http: aiohttp.ClientSession

    async def healthy(self) -> None:
        """The service process is alive and /healthz (database and Redis) answers 200."""
        assert self.proc.returncode is None, f"the service died:\n{self.log.read_text()[-3000:]}"
        async with self.http.get(f"{self.base}/healthz") as resp:
            body = await resp.text()
            assert resp.status == 200, f"/healthz {resp.status}: {body}"

    async def gongkai(self, *args: str, ok: bool = True) -> str:
        """One CLI command in its own process, like a second terminal; then the health check."""
        proc = await asyncio.create_subprocess_exec(
            *GONGKAI,
            *args,
            cwd=ROOT,
            env=self.env,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        out, err = await asyncio.wait_for(proc.communicate(), 60)
        text, errors = out.decode(), err.decode()
        assert "Traceback" not in errors, errors
        if ok:
            assert proc.returncode == 0, f"gongkai {' '.join(args)}: {errors}{text}"
        else:
            assert proc.returncode == 1, f"gongkai {' '.join(args)}: {errors}{text}"
        await self.healthy()
        return text + errors

    def redis_pid(self) -> int:
        return int((self.data_dir / "redis.pid").read_text().strip())


def stopped(pid: int, socket: Path, timeout: float = 5) -> bool:
    deadline = time.monotonic() + timeout
    while pid_alive(pid) or socket.exists():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


@pytest.fixture
async def service(tmp_path: Path) -> AsyncIterator[Service]:
    port = free_port()
    data_dir = tmp_path / "var"
    env = {k: v for k, v in os.environ.items() if not k.startswith("GONGKAI_")}
    env.update(
        GONGKAI_DATA_DIR=str(data_dir),
        GONGKAI_HOST="127.0.0.1",
        GONGKAI_PORT=str(port),
        GONGKAI_PUBLIC_URL=f"http://127.0.0.1:{port}",
        GONGKAI_SANDBOX="on",  # the tour's `export GONGKAI_SANDBOX=on`; the demo turns it on anyway
        COLUMNS="200",
    )
    log = tmp_path / "run.log"
    with log.open("wb") as sink:
        proc = await asyncio.create_subprocess_exec(
            *GONGKAI, "run", "--demo", cwd=ROOT, env=env, stdout=sink, stderr=subprocess.STDOUT
        )
    base = f"http://127.0.0.1:{port}"
    timeout = aiohttp.ClientTimeout(total=10)
    async with aiohttp.ClientSession(timeout=timeout) as http:
        s = Service(proc, base, env, data_dir, log, http)
        try:
            deadline = time.monotonic() + 60
            while True:
                assert proc.returncode is None, f"gongkai run died:\n{log.read_text()[-3000:]}"
                assert time.monotonic() < deadline, f"no /healthz:\n{log.read_text()[-3000:]}"
                with contextlib.suppress(aiohttp.ClientError, asyncio.TimeoutError):
                    async with http.get(f"{base}/healthz") as resp:
                        if resp.status == 200 and "Ctrl-C stops" in log.read_text():
                            break
                await asyncio.sleep(0.1)
            yield s
        finally:
            pid_file = data_dir / "redis.pid"
            redis_pid = int(pid_file.read_text().strip() or 0) if pid_file.exists() else 0
            if proc.returncode is None:
                proc.kill()
                await proc.wait()
            if redis_pid and pid_alive(redis_pid):
                os.kill(redis_pid, signal.SIGKILL)


async def test_the_readme_tour_leaves_the_service_running_and_ctrl_c_stops_it(
    service: Service,
) -> None:
    s = service
    printed = re.search(r"publisher token for the API \(shown once\): (gk_\S+)", s.log.read_text())
    assert printed, s.log.read_text()
    redis_pid = s.redis_pid()
    socket = s.data_dir / "redis.sock"
    assert socket.exists()

    # 1. Load the directory (twice: the second changes nothing)
    out = await s.gongkai("directory", "import", "gongkai/demo/directory.yaml")
    assert "regions:" in out
    out = await s.gongkai("directory", "import", "gongkai/demo/directory.yaml")
    assert "0 added" in out

    # the token: printed by `gongkai run --demo`, or created
    token = (await s.gongkai("token", "create", "--role", "publisher", "--name", "办公室")).strip()
    assert token.startswith("gk_")

    # 2. Publish an item with curl (an aiohttp POST here), with both tokens
    for bearer, status in ((token, 201), (printed.group(1), 200)):
        async with s.http.post(
            f"{s.base}/api/v1/items",
            json=CURL_ITEM,
            headers={"Authorization": f"Bearer {bearer}"},
        ) as resp:
            assert resp.status == status, await resp.text()
            body = await resp.json()
        assert body["id"] == "ejhl-2026-0201" and "publish_due" in str(body)
    await s.healthy()

    # 3. Publish with the CLI, watching every delivery to its end: the command that used to
    # stop the service's Redis on its way out
    out = await s.gongkai("publish", "gongkai/demo/policy.yaml", "--wait")
    assert "demo-ejhl-2026-0113" in out and "summary" in out
    out = await s.gongkai("publish", "gongkai/demo/policy.yaml", "--wait")  # and again
    assert "already ingested" in out

    # 4. Preview any channel without sending
    out = await s.gongkai(
        "render",
        "gongkai/demo/policy.yaml",
        "--channel",
        "village_group",
        "--region",
        "150627100201",
    )
    assert "village_group" in out
    out = await s.gongkai("render", "gongkai/demo/policy.yaml", "--channel", "sms", "--json")
    assert json.loads(out)["channel"] == "sms"
    out = await s.gongkai(
        "render", "gongkai/demo/policy.yaml", "--channel", "loudspeaker", "--lang", "mn"
    )
    assert "loudspeaker" in out

    # 5. See the page
    for path in ("/p/demo-ejhl-2026-0113", "/p/demo-ejhl-2026-0113?lang=mn", "/feed.xml"):
        async with s.http.get(s.base + path) as resp:
            assert resp.status == 200, path

    # 6. See what arrived where: the demo's items reached every channel's simulator
    assert f"{s.base}/sandbox/" in s.log.read_text()
    async with s.http.get(f"{s.base}/sandbox/") as resp:
        assert resp.status == 200 and "nothing is sent to real providers" in await resp.text()
    deadline = time.monotonic() + 60
    while True:
        async with s.http.get(f"{s.base}/sandbox/api/messages") as resp:
            arrived = {m["channel"] for m in (await resp.json())["messages"]}
        if arrived == {"wechat_mp", "village_group", "sms", "loudspeaker", "telegram"}:
            break
        assert time.monotonic() < deadline, f"only {arrived} arrived:\n{s.log.read_text()[-3000:]}"
        await asyncio.sleep(0.5)
    async with s.http.get(f"{s.base}/sandbox/api/messages?channel=sms&target=150627100201") as resp:
        sms = (await resp.json())["messages"]
    assert sms and all(m["text"].startswith("【伊金霍洛旗政务公开】") for m in sms)

    # 7. See the delivery log
    out = await s.gongkai("deliveries", "--item", "demo-ejhl-2026-0113")
    assert "deliveries" in out
    out = await s.gongkai("deliveries", "--status", "dead", "--csv")
    assert out.splitlines()[0].startswith("id,")
    async with s.http.get(
        f"{s.base}/api/v1/deliveries?channel=sms&format=csv",
        headers={"Authorization": f"Bearer {token}"},
    ) as resp:
        assert resp.status == 200 and "csv" in resp.headers["Content-Type"]
    await s.healthy()

    # 8. Recall a mistaken item
    async with s.http.post(
        f"{s.base}/api/v1/items/ejhl-2026-0201/recall",
        headers={"Authorization": f"Bearer {token}"},
    ) as resp:
        assert resp.status == 200, await resp.text()
        assert (await resp.json())["status"] == "recalled"
    async with s.http.get(f"{s.base}/p/ejhl-2026-0201") as resp:
        assert resp.status == 410
    await s.healthy()

    # The other commands that share the embedded Redis, failing on a name the directory lacks
    out = await s.gongkai("faq", "import-wechat", "--account", "nobody", ok=False)
    assert "nobody" in out
    out = await s.gongkai("telegram", "poll", "--bot", "nobody", ok=False)
    assert "nobody" in out

    # the same Redis server all along
    assert s.redis_pid() == redis_pid and pid_alive(redis_pid)

    # Ctrl-C: a clean exit, and the embedded Redis stopped with it
    s.proc.send_signal(signal.SIGINT)
    assert await asyncio.wait_for(s.proc.wait(), 15) == 0, s.log.read_text()[-3000:]
    assert "Traceback" not in s.log.read_text()
    assert await asyncio.to_thread(stopped, redis_pid, socket), "the embedded Redis still runs"
    assert not (s.data_dir / "redis.pid").exists()
