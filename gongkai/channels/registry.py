"""The channels by their fixed names (the contract lists them)."""

from __future__ import annotations

from importlib import import_module

from gongkai.channels.base import Channel
from gongkai.domain.catalog import CHANNEL_NAMES

# name → module path; a module defines exactly one Channel subclass named by its CHANNEL attr.
CHANNEL_MODULES: dict[str, str] = {
    "web": "gongkai.channels.web",
    "wechat_mp": "gongkai.channels.wechat_mp",
    "village_group": "gongkai.channels.village_group",
    "sms": "gongkai.channels.sms",
    "loudspeaker": "gongkai.channels.loudspeaker",
    "telegram": "gongkai.channels.telegram",
}
assert tuple(CHANNEL_MODULES) == CHANNEL_NAMES  # the contract's names, in the contract's order

_cache: dict[str, Channel] = {}


class UnknownChannel(KeyError):
    pass


def available() -> list[str]:
    """Channels whose module is present in this build."""
    names = []
    for name in CHANNEL_NAMES:
        try:
            get(name)
        except UnknownChannel:
            continue
        names.append(name)
    return names


def get(name: str) -> Channel:
    if name in _cache:
        return _cache[name]
    path = CHANNEL_MODULES.get(name)
    if path is None:
        raise UnknownChannel(name)
    try:
        module = import_module(path)
    except ModuleNotFoundError as exc:
        if exc.name == path:
            raise UnknownChannel(name) from exc
        raise
    channel = module.CHANNEL
    _cache[name] = channel
    return channel
