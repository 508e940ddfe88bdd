"""The targets part of a directory import: what the file wants, what is stored, the difference.

A target is found by its keyed lookup digest, which covers its whole address: the same address
in the same region and account is the same target, whose options and masked label may change;
another address (a new robot key, a rewritten phone list) is another target.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select
from sqlmodel.ext.asyncio.session import AsyncSession

from gongkai.domain.directory_file import (
    DirectoryFile,
    LoudspeakerTarget,
    RegionNode,
    SmsTarget,
    TargetEntry,
    TelegramTarget,
    VillageGroupTarget,
)
from gongkai.storage.bulk import insert_rows, update_rows
from gongkai.storage.crypto import Sealer, mask_phone, mask_secret
from gongkai.storage.directory_report import ImportProgress, KindCounts
from gongkai.storage.models import Target

CURRENT_SEAL = "g1:"  # Sealer's AES-GCM prefix; anything else is an older Fernet token
CHUNK = 2000  # rows per read (bound parameters) and per progress step
NOT_IN_FILE = "not in the directory file (import --deactivate-missing)"
Walk = list[tuple[str, RegionNode, RegionNode | None]]


def chunks(values: list[Any], size: int = CHUNK) -> Iterator[list[Any]]:
    for start in range(0, len(values), size):
        yield values[start : start + size]


@dataclass(slots=True)
class _WantedTarget:
    region_code: str
    channel: str
    account: str | None
    address: dict[str, Any]
    masked: str
    options: dict[str, Any]
    lookup: str = ""


@dataclass(slots=True)
class _StoredTarget:
    id: int | None  # None: added by this import
    options: dict[str, Any]
    masked: str
    current_seal: bool
    active: bool = True
    inactive_reason: str | None = None


def _target_address(t: TargetEntry) -> tuple[dict[str, Any], str]:
    """The sealed address and how it is shown, as the import has always written them."""
    if isinstance(t, VillageGroupTarget | LoudspeakerTarget) and t.robot_key is not None:
        return {"robot_key": t.robot_key}, "robot " + mask_secret(t.robot_key)
    if isinstance(t, SmsTarget | LoudspeakerTarget) and t.phones is not None:
        masked = ", ".join(mask_phone(p) for p in t.phones[:3]) + (
            f" (+{len(t.phones) - 3})" if len(t.phones) > 3 else ""
        )
        return {"phones": t.phones}, masked
    if isinstance(t, TelegramTarget):
        return {"chat_id": t.chat_id}, f"chat {t.chat_id}"
    raise AssertionError(f"a {t.channel} target without an address")  # the model refuses it


def wanted_targets(directory: DirectoryFile, walk: Walk, sealer: Sealer) -> list[_WantedTarget]:
    """Every target of the file in file order, then one per official account (as before)."""
    wanted = [
        _WantedTarget(node.code, t.channel, t.account, *_target_address(t), t.options())
        for _where, node, _parent in walk
        for t in node.targets
    ]
    for account in directory.accounts.wechat_mp:
        wanted.append(
            _WantedTarget(
                account.region,
                "wechat_mp",
                account.name,
                {},
                "official account " + account.name,
                {},
            )
        )
    for w in wanted:
        w.lookup = sealer.lookup_key(
            w.channel, w.region_code, w.account or "", json.dumps(w.address, sort_keys=True)
        )
    return wanted


async def import_targets(
    session: AsyncSession,
    sealer: Sealer,
    wanted: list[_WantedTarget],
    region_codes: list[str],
    counts: KindCounts,
    progress: ImportProgress,
    *,
    deactivate_missing: bool = False,
) -> None:
    """Found by lookup digest: the same address in the same region and account is the same
    target, whose options and masked label may change; another address is another target.

    With ``deactivate_missing`` the targets of the file's regions that it no longer lists (a
    robot key replaced, a phone list rewritten) are deactivated, saying why; one the file lists
    again is active again. A target deactivated for another reason (a provider refused its
    key) stays as it is."""
    stored = await _stored_targets(session, wanted, region_codes)
    in_region_only = set(stored)
    added: dict[str, dict[str, Any]] = {}
    changed: dict[int, dict[str, Any]] = {}
    for chunk in chunks(wanted):
        for w in chunk:
            in_region_only.discard(w.lookup)
            known = stored.get(w.lookup)
            if known is None:
                added[w.lookup] = {
                    "region_code": w.region_code,
                    "channel": w.channel,
                    "account_name": w.account,
                    "address_sealed": sealer.seal(w.address),
                    "address_masked": w.masked,
                    "lookup": w.lookup,
                    "options": w.options,
                    "active": True,
                    "inactive_reason": None,
                }
                stored[w.lookup] = _StoredTarget(None, w.options, w.masked, True)
                counts.added += 1
                continue
            back = not known.active and known.inactive_reason == NOT_IN_FILE
            if (
                known.options == w.options
                and known.masked == w.masked
                and known.current_seal
                and not back
            ):
                counts.unchanged += 1
                continue
            # the file names it twice: the later entry wins, as it always has
            counts.changed += 1
            known.options, known.masked = w.options, w.masked
            if known.id is None:
                added[w.lookup].update(options=w.options, address_masked=w.masked)
                continue
            row: dict[str, Any] = {"options": w.options, "address_masked": w.masked}
            if back:  # listed again after an import left it out
                known.active, known.inactive_reason = True, None
                row.update(active=True, inactive_reason=None)
            if not known.current_seal:
                known.current_seal = True
                row["address_sealed"] = sealer.seal(w.address)
            changed.setdefault(known.id, {}).update(row)
        progress.advance(len(chunk))
    counts.not_in_file = len(in_region_only)
    T = Target.__table__  # type: ignore[attr-defined]
    await insert_rows(session, T, list(added.values()))  # ids in file order, as before
    for columns in {tuple(sorted(r)) for r in changed.values()}:  # one executemany per shape
        rows = [{**r, "id": i} for i, r in changed.items() if tuple(sorted(r)) == columns]
        await update_rows(session, T, "id", rows)
    if deactivate_missing:
        gone = [
            {"id": t.id, "active": False, "inactive_reason": NOT_IN_FILE}
            for lookup in in_region_only
            if (t := stored[lookup]).active and t.id is not None
        ]
        counts.deactivated = len(gone)
        await update_rows(session, T, "id", gone)


async def _stored_targets(
    session: AsyncSession, wanted: list[_WantedTarget], region_codes: list[str]
) -> dict[str, _StoredTarget]:
    """The stored targets of the file's regions (so those the file no longer lists can be
    counted), and any other the file names (an official account's county kept from before)."""
    T = Target.__table__  # type: ignore[attr-defined]
    columns = (
        T.c.lookup,
        T.c.id,
        T.c.options,
        T.c.address_masked,
        func.substr(T.c.address_sealed, 1, len(CURRENT_SEAL)),
        T.c.active,
        T.c.inactive_reason,
    )
    stored: dict[str, _StoredTarget] = {}
    conn = await session.connection()

    async def read(where: Any) -> None:
        for lookup, id_, options, masked, seal, active, reason in await conn.execute(
            select(*columns).where(where)
        ):
            stored[lookup] = _StoredTarget(
                id_, options, masked, seal == CURRENT_SEAL, bool(active), reason
            )

    for chunk in chunks(region_codes):
        await read(T.c.region_code.in_(chunk))
    in_regions = set(region_codes)
    others = [w.lookup for w in wanted if w.region_code not in in_regions]
    for chunk in chunks(others):
        await read(T.c.lookup.in_(chunk))
    return stored
