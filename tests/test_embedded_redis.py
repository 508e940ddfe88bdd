"""The embedded Redis has an owner: other processes share it and never stop it; the last one out
stops it; whatever a killed run left behind is recovered on the next start."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis as sync_redis

from gongkai.cli.embedded_redis import EmbeddedRedis, EmbeddedRedisError
from gongkai.cli.redis_process import pid_alive

ROOT = Path(__file__).resolve().parent.parent

# A process that uses the data dir's embedded Redis until told to stop (a line on stdin).
HOLDER = """
import sys
from pathlib import Path
from gongkai.cli.embedded_redis import EmbeddedRedis
r = EmbeddedRedis(Path(sys.argv[1]))
print(r.url, r.pid, r.owner, flush=True)
sys.stdin.readline()
r.close()
print("closed", flush=True)
"""


class Holder:
    def __init__(self, data_dir: Path) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-c", HOLDER, str(data_dir)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            cwd=ROOT,
        )
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline().split()
        assert line, "the holder process failed to start (see its stderr)"
        self.url, self.pid, self.owner = line[0], int(line[1]), line[2] == "True"

    def close(self) -> None:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write("\n")
        self.proc.stdin.flush()
        assert self.proc.stdout.readline().strip() == "closed"
        assert self.proc.wait(15) == 0

    def kill9(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(5)


def client(url: str) -> sync_redis.Redis:
    return sync_redis.Redis.from_url(url, socket_timeout=5)


def answers(url: str) -> bool:
    try:
        return bool(client(url).ping())
    except sync_redis.RedisError:
        return False


def gone(pid: int, socket: Path, timeout: float = 10) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not pid_alive(pid) and not socket.exists():
            return True
        time.sleep(0.05)
    return False


@pytest.fixture
def data_dir(tmp_path: Path) -> Iterator[Path]:
    d = tmp_path / "var"
    yield d
    # never leak a server, whatever the test did
    pid_file = d / "redis.pid"
    if pid_file.exists():
        pid = int(pid_file.read_text().strip() or 0)
        if pid_alive(pid):
            os.kill(pid, signal.SIGKILL)


def test_the_second_user_closing_leaves_the_first_working_and_the_owner_stops_it(
    data_dir: Path,
) -> None:
    first = EmbeddedRedis(data_dir)
    second = EmbeddedRedis(data_dir)
    assert first.owner and not second.owner
    assert first.url == second.url and first.pid == second.pid
    client(first.url).set("kept", "yes")
    second.close()
    assert client(first.url).get("kept") == b"yes"
    assert pid_alive(first.pid)
    first.close()
    assert gone(first.pid, first.socket_path)
    again = EmbeddedRedis(data_dir)  # SHUTDOWN SAVE kept the data
    try:
        assert again.owner and client(again.url).get("kept") == b"yes"
    finally:
        again.close()


def test_a_command_in_another_process_never_stops_the_running_server(data_dir: Path) -> None:
    service = EmbeddedRedis(data_dir)
    try:
        for _ in range(2):  # like `gongkai publish` run twice beside `gongkai run`
            command = Holder(data_dir)
            assert not command.owner and command.pid == service.pid
            command.close()
            assert client(service.url).ping()
        command = Holder(data_dir)
        command.kill9()  # a command killed halfway stops nothing either
        assert client(service.url).ping()
    finally:
        service.close()
    assert gone(service.pid, service.socket_path)


def test_the_owner_in_another_process_stops_it_when_it_is_the_last(data_dir: Path) -> None:
    owner = Holder(data_dir)
    assert owner.owner
    user = EmbeddedRedis(data_dir)
    assert not user.owner and user.pid == owner.pid
    user.close()
    assert answers(owner.url)
    owner.close()
    assert gone(owner.pid, user.socket_path)


def test_an_owner_leaving_first_hands_the_server_to_those_still_using_it(
    data_dir: Path,
) -> None:
    owner = Holder(data_dir)  # e.g. `gongkai worker`
    user = EmbeddedRedis(data_dir)  # e.g. `gongkai serve` beside it
    owner.close()
    assert client(user.url).ping(), "the owner stopped a server another process still used"
    user.close()  # the last one out stops it
    assert gone(owner.pid, user.socket_path)


def test_a_killed_owners_live_server_is_adopted(data_dir: Path) -> None:
    owner = Holder(data_dir)
    client(owner.url).set("survives", "1")
    owner.kill9()
    assert pid_alive(owner.pid)  # the daemonized server outlives it
    adopter = EmbeddedRedis(data_dir)
    try:
        assert adopter.owner and adopter.pid == owner.pid
        assert client(adopter.url).get("survives") == b"1"
    finally:
        adopter.close()
    assert gone(owner.pid, adopter.socket_path)


def test_a_killed_owners_dead_server_is_cleaned_up_and_started_anew(data_dir: Path) -> None:
    owner = Holder(data_dir)
    owner.kill9()
    os.kill(owner.pid, signal.SIGKILL)
    deadline = time.monotonic() + 5
    while pid_alive(owner.pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert (data_dir / "redis.pid").exists() and (data_dir / "redis.sock").exists()
    fresh = EmbeddedRedis(data_dir)
    try:
        assert fresh.owner and fresh.pid != owner.pid
        assert client(fresh.url).ping()
    finally:
        fresh.close()
    assert gone(fresh.pid, fresh.socket_path)


def test_a_hung_server_left_behind_is_replaced(data_dir: Path) -> None:
    owner = Holder(data_dir)
    os.kill(owner.pid, signal.SIGSTOP)  # answers nothing any more
    owner.kill9()
    started = time.monotonic()
    fresh = EmbeddedRedis(data_dir)
    try:
        assert time.monotonic() - started < 20
        assert fresh.owner and fresh.pid != owner.pid and not pid_alive(owner.pid)
        assert client(fresh.url).ping()
    finally:
        fresh.close()


def test_processes_starting_at_once_share_one_server(data_dir: Path) -> None:
    holders = [
        subprocess.Popen(
            [sys.executable, "-c", HOLDER, str(data_dir)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            cwd=ROOT,
        )
        for _ in range(4)
    ]
    seen = [h.stdout.readline().split() for h in holders]  # type: ignore[union-attr]
    assert len({pid for _, pid, _ in seen}) == 1
    assert [owner for _, _, owner in seen].count("True") == 1
    pid = int(seen[0][1])
    for h in holders:
        h.stdin.write("\n")  # type: ignore[union-attr]
        h.stdin.flush()  # type: ignore[union-attr]
        assert h.wait(20) == 0
    assert gone(pid, data_dir / "redis.sock")


def test_a_long_data_dir_gets_its_socket_under_tmp(tmp_path: Path) -> None:
    deep = tmp_path / ("d" * 60) / ("e" * 60)
    r = EmbeddedRedis(deep)
    try:
        assert str(r.socket_path).startswith("/tmp/gongkai-redis-")
        assert client(r.url).ping()
        other = EmbeddedRedis(deep)
        assert other.url == r.url and not other.owner
        other.close()
    finally:
        r.close()
    assert not r.socket_path.exists()


def test_a_server_that_cannot_start_is_a_clear_message(data_dir: Path) -> None:
    data_dir.mkdir(parents=True)
    (data_dir / "redis.rdb").write_bytes(b"this is not an rdb file")
    with pytest.raises(EmbeddedRedisError, match="cannot start the embedded Redis"):
        EmbeddedRedis(data_dir)
    env = {k: v for k, v in os.environ.items() if not k.startswith("GONGKAI_")}
    env["GONGKAI_DATA_DIR"] = str(data_dir)
    done = subprocess.run(
        [sys.executable, "-m", "gongkai.cli", "publish", "gongkai/demo/policy.yaml"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 1
    assert "cannot start the embedded Redis" in done.stderr
    assert "GONGKAI_REDIS_URL" in done.stderr and "Traceback" not in done.stderr


def test_with_a_redis_url_nothing_embedded_starts(tmp_path: Path) -> None:
    from gongkai.cli.runtime import redis_for
    from tests.support import settings_for

    s = settings_for(tmp_path / "var", redis_url="redis://127.0.0.1:1/0")
    with redis_for(s) as url:
        assert url == "redis://127.0.0.1:1/0"
    assert not any(p.name.startswith("redis.") for p in tmp_path.rglob("*"))
