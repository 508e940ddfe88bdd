"""Who is asking: the client's address, seen through our own reverse proxy.

Behind nginx every request comes from 127.0.0.1; a per-address limit would then lump all users
together. The rightmost X-Forwarded-For hop not added by a trusted proxy is the client.
"""

from __future__ import annotations

from ipaddress import ip_address

from aiohttp import web

from gongkai.web.keys import SETTINGS


def client_address(request: web.Request) -> str:
    peer = request.remote or "?"
    trusted = {p.strip() for p in request.app[SETTINGS].trusted_proxies.split(",") if p.strip()}
    if peer not in trusted:
        return peer
    hops = [h.strip() for h in request.headers.get("X-Forwarded-For", "").split(",") if h.strip()]
    for hop in reversed(hops):
        try:
            ip_address(hop)
        except ValueError:
            return peer  # a malformed header: trust nothing in it
        if hop not in trusted:
            return hop
    return peer
