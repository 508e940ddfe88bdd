"""The last line between a sandboxed process and the real providers.

With the sandbox on, the settings already point every provider base URL at the simulators. This
guard catches whatever would still try to leave: a client built from some other address, a
fetch of a provider-hosted image, a library's default endpoint. It is a Python audit hook on
name resolution and connections, so it sees every socket the process opens, whichever library
opens it: resolving a real provider's host name is refused with ``ProviderBlocked`` before any
packet leaves. An audit hook cannot be removed, so it is installed once and then armed or
disarmed (tests disarm it when they are done).
"""

from __future__ import annotations

import sys
import threading
from typing import Any

# The providers' own domains (and their CDNs): any host name ending in one of these is theirs.
PROVIDER_DOMAINS = (
    "weixin.qq.com",  # WeChat official accounts, WeCom robots, mp.weixin.qq.com articles
    "qpic.cn",  # WeChat's image CDN
    "telegram.org",
    "aliyuncs.com",
    "tencentcloudapi.com",
)


class ProviderBlocked(PermissionError):
    """A sandboxed process tried to reach a real provider."""


_lock = threading.Lock()
_installed = False
_armed = False
blocked: list[str] = []  # host names refused since the process started, for tests and logs


def is_provider_host(host: object) -> bool:
    if isinstance(host, bytes):
        host = host.decode("idna", "replace")
    if not isinstance(host, str):
        return False
    name = host.strip().rstrip(".").lower()
    return any(name == d or name.endswith("." + d) for d in PROVIDER_DOMAINS)


def _hook(event: str, args: tuple[Any, ...]) -> None:
    if not _armed:
        return
    if event == "socket.getaddrinfo":
        host = args[0] if args else None
    elif event == "socket.gethostbyname":
        host = args[0] if args else None
    elif event == "socket.connect" and len(args) > 1 and isinstance(args[1], tuple):
        host = args[1][0] if args[1] else None
    else:
        return
    if is_provider_host(host):
        blocked.append(str(host))
        raise ProviderBlocked(
            f"sandbox: {host} is a real provider; nothing is sent to real providers "
            "while GONGKAI_SANDBOX is on"
        )


def arm() -> None:
    """Refuse every connection to a real provider from now on, in this whole process."""
    global _installed, _armed
    with _lock:
        if not _installed:
            sys.addaudithook(_hook)
            _installed = True
        _armed = True


def disarm() -> None:
    global _armed
    _armed = False


def armed() -> bool:
    return _armed
