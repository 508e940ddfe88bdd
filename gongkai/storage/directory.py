"""Directory import: accounts, the region tree and the targets in it (format in the contract).

Idempotent: importing the same file twice changes nothing. Secrets and phone numbers are sealed
before they touch the database and only ever shown masked.

A county's file holds ten thousand targets, so the import works in sets, not rows: the file is
validated once, the county's rows are read in a few queries, the difference is worked out in
memory and written with one executemany per kind of change, all in one transaction. Nothing is
sealed again unless it changed (a seal is random, so resealing would rewrite every row): a
target is found by its keyed lookup digest, which covers its whole address, and an account's
stored secrets are opened and compared. An import adds and changes; it never removes or
deactivates: a target, region or account that is no longer in the file is left as it was (and
counted, so the person importing sees it), because deliveries, followers and the history refer
to them.
"""

from __future__ import annotations

import gc
import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import yaml
from sqlalchemy import or_, select
from sqlmodel.ext.asyncio.session import AsyncSession

from gongkai.domain import safe_yaml
from gongkai.domain.directory_file import (
    ACCOUNT_CHANNELS,
    DirectoryError,
    DirectoryFile,
    validate_directory,
)
from gongkai.storage.bulk import insert_rows, update_rows
from gongkai.storage.crypto import Sealer, mask_secret
from gongkai.storage.directory_report import ImportProgress, KindCounts
from gongkai.storage.directory_targets import (
    CURRENT_SEAL,
    NOT_IN_FILE,
    Walk,
    import_targets,
    wanted_targets,
)
from gongkai.storage.models import Account, DirectoryImport, Region

SECRET_FIELDS = {
    "app_secret",
    "token",
    "encoding_aes_key",
    "access_key_secret",
    "secret_key",
    "webhook_secret",
    "robot_key",
    "password",
}
_ENV_RE = re.compile(r"\$\{([A-Z_][A-Z0-9_]*)\}")  # upper case only: SMS templates use ${title}
_DIGEST_VERSION = "1"  # part of a file's digest: a new way of importing reads every file again
__all__ = [
    "ACCOUNT_CHANNELS",
    "NOT_IN_FILE",
    "SECRET_FIELDS",
    "DirectoryError",
    "ImportProgress",
    "ImportReport",
    "KindCounts",
    "expand_env",
    "import_directory",
    "import_directory_file",
    "load_directory",
    "parse_directory",
]


class _Quiet:
    def phase(self, name: str, total: int | None = None) -> None:
        pass

    def advance(self, steps: int = 1) -> None:
        pass


@dataclass
class ImportReport:
    region_counts: KindCounts = field(default_factory=KindCounts)
    account_counts: KindCounts = field(default_factory=KindCounts)
    target_counts: KindCounts = field(default_factory=KindCounts)
    warnings: list[str] = field(default_factory=list)
    same_file: bool = False  # the file of the last import, unchanged: not read again

    @property
    def regions(self) -> int:
        return self.region_counts.in_file

    @property
    def accounts(self) -> int:
        return self.account_counts.in_file

    @property
    def targets_added(self) -> int:
        return self.target_counts.added

    @property
    def targets_updated(self) -> int:
        return self.target_counts.changed

    @property
    def targets_unchanged(self) -> int:
        return self.target_counts.unchanged

    def kinds(self) -> dict[str, KindCounts]:
        return {
            "regions": self.region_counts,
            "accounts": self.account_counts,
            "targets": self.target_counts,
        }

    def changed_anything(self) -> bool:
        return any(c.added or c.changed or c.deactivated for c in self.kinds().values())

    def counts(self) -> dict[str, dict[str, int]]:
        """What a later import of the same file reports: everything in it, unchanged."""
        return {
            k: {"in_file": c.in_file, "not_in_file": c.not_in_file, "deactivated": c.deactivated}
            for k, c in self.kinds().items()
        }

    @classmethod
    def unchanged(cls, counts: dict[str, dict[str, int]], same_file: bool) -> ImportReport:
        kinds = {
            kind: KindCounts(
                unchanged=counts.get(kind, {}).get("in_file", 0),
                not_in_file=counts.get(kind, {}).get("not_in_file", 0),
                deactivated=counts.get(kind, {}).get("deactivated", 0),  # by that import
            )
            for kind in ("regions", "accounts", "targets")
        }
        return cls(kinds["regions"], kinds["accounts"], kinds["targets"], same_file=same_file)


def expand_env(text: str, environ: dict[str, str] | None = None) -> str:
    env = os.environ if environ is None else environ
    missing: list[str] = []

    def sub(m: re.Match[str]) -> str:
        name = m.group(1)
        if name not in env:
            missing.append(name)
            return ""
        return env[name]

    out = _ENV_RE.sub(sub, text)
    if missing:
        raise DirectoryError(
            "environment variables not set: "
            + ", ".join(sorted(set(missing)))
            + " (the directory file refers to them as ${NAME})"
        )
    return out


@contextmanager
def _collector_paused() -> Iterator[None]:
    """A county's file becomes some 100,000 small objects (YAML nodes, then dicts, then models)
    at once; each allocation burst makes CPython's cycle collector walk the growing heap again,
    which was half the parse time of a 10,000-village file. Nothing built here forms cycles
    that must go before the import ends, so the collector waits until then."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def _yaml(text: str, environ: dict[str, str] | None) -> Any:
    return _parse_expanded(expand_env(text, environ))


def _parse_expanded(text: str) -> Any:
    try:
        with _collector_paused():
            return safe_yaml.load(text) or {}  # aliases within a budget
    except yaml.YAMLError as exc:
        raise DirectoryError(f"cannot parse the directory file: {exc}") from None


def parse_directory(text: str, environ: dict[str, str] | None = None) -> dict[str, Any]:
    """The file as plain data, checked (refused here, before a database is opened)."""
    data = _yaml(text, environ)
    validate_directory(data)
    return data  # type: ignore[no-any-return]


def load_directory(
    text: str, environ: dict[str, str] | None = None, progress: ImportProgress | None = None
) -> DirectoryFile:
    """The file as its model, validated once: what the command line hands to the import."""
    progress = progress or _Quiet()
    progress.phase("parsing")
    data = _yaml(text, environ)
    progress.phase("validating")
    with _collector_paused():
        return validate_directory(data)


# --- the import -------------------------------------------------------------------------------


async def import_directory(
    session: AsyncSession,
    data: DirectoryFile | dict[str, Any],
    sealer: Sealer,
    progress: ImportProgress | None = None,
    *,
    deactivate_missing: bool = False,
) -> ImportReport:
    """Write the file's accounts, regions and targets in one transaction; ``data`` is the file's
    model (``load_directory``) or its parsed data (``parse_directory``)."""
    with _collector_paused():
        directory = data if isinstance(data, DirectoryFile) else validate_directory(data)
        await _one_import_at_a_time(session)
        return await _import(
            session,
            directory,
            sealer,
            progress or _Quiet(),
            digest="",
            deactivate_missing=deactivate_missing,
        )


async def import_directory_file(
    session: AsyncSession,
    text: str,
    sealer: Sealer,
    environ: dict[str, str] | None = None,
    progress: ImportProgress | None = None,
    *,
    deactivate_missing: bool = False,
) -> ImportReport:
    """Import a directory file's text: what ``gongkai directory import`` does.

    The file as read (``${NAME}`` filled in) has a keyed digest. When it is the digest of the
    last import, which left the directory as this file makes it, and nothing has written the
    directory since (every import records itself when it changes anything), importing it again
    changes nothing: the report says so without parsing the file. Otherwise the file is
    parsed, validated and imported, and its digest recorded with the import."""
    progress = progress or _Quiet()
    expanded = expand_env(text, environ)
    # deactivating what is missing is another import of the same file: not skipped after a
    # plain one, and recognised after one like it
    marks = ("deactivate missing",) if deactivate_missing else ()
    digest = sealer.lookup_key("directory file", _DIGEST_VERSION, *marks, expanded)
    for locked in (False, True):  # the lock only when there is work to do
        if locked:
            await _one_import_at_a_time(session)
        last = await _last_import(session)
        if last is not None and last.digest == digest:
            return ImportReport.unchanged(last.counts, same_file=True)
    with _collector_paused():
        progress.phase("parsing")
        data = _parse_expanded(expanded)
        progress.phase("validating")
        directory = validate_directory(data)
        return await _import(
            session,
            directory,
            sealer,
            progress,
            digest=digest,
            last=last,
            deactivate_missing=deactivate_missing,
        )


_IMPORT_LOCK = 0x676B_6469  # "gkdi": PostgreSQL's advisory lock key for directory imports


async def _one_import_at_a_time(session: AsyncSession) -> None:
    """Two imports at once would both add the same new targets (one failing on the unique
    lookup), or mix their changes and leave the last import's record describing neither. So the
    second waits until the first's transaction has ended, then reads what it wrote: PostgreSQL
    by an advisory lock, SQLite by taking its one writer's lock before the first read."""
    conn = await session.connection()
    if conn.dialect.name == "postgresql":
        await conn.exec_driver_sql(f"SELECT pg_advisory_xact_lock({_IMPORT_LOCK})")
    elif conn.dialect.name == "sqlite":
        raw = await conn.get_raw_connection()
        if not raw.driver_connection.in_transaction:  # the caller may have written already
            await conn.exec_driver_sql("BEGIN IMMEDIATE")


async def _last_import(session: AsyncSession) -> DirectoryImport | None:
    query = select(DirectoryImport).order_by(DirectoryImport.id.desc()).limit(1)  # type: ignore[union-attr]
    return (await session.exec(query)).scalars().first()  # type: ignore[call-overload]


async def _import(
    session: AsyncSession,
    directory: DirectoryFile,
    sealer: Sealer,
    progress: ImportProgress,
    digest: str,
    last: DirectoryImport | None = None,
    deactivate_missing: bool = False,
) -> ImportReport:
    walk = directory.walk()
    accounts = [(ch, e) for ch, entries in directory.accounts.by_channel().items() for e in entries]
    wanted = wanted_targets(directory, walk, sealer)
    progress.phase("writing", len(walk) + len(accounts) + len(wanted))
    report = ImportReport()

    await _check_official_account_regions(session, directory, {n.code for _, n, _ in walk})
    await _import_accounts(session, sealer, accounts, report.account_counts)
    progress.advance(len(accounts))
    left_out = await _import_regions(session, directory, walk, report.region_counts)
    progress.advance(len(walk))
    # the targets of the file's regions, and of the regions under them that it left out
    codes = [node.code for _, node, _ in walk] + sorted(left_out)
    await import_targets(
        session,
        sealer,
        wanted,
        codes,
        report.target_counts,
        progress,
        deactivate_missing=deactivate_missing,
    )
    if report.changed_anything() or (digest and (last is None or last.digest != digest)):
        session.add(DirectoryImport(digest=digest, counts=report.counts()))
    await session.commit()
    return report


async def _check_official_account_regions(
    session: AsyncSession, directory: DirectoryFile, in_file: set[str]
) -> None:
    """An official account's target lies in its county: the file's or one already stored."""
    elsewhere = {a.region for a in directory.accounts.wechat_mp} - in_file
    stored: set[str] = set()
    if elsewhere:
        conn = await session.connection()
        rows = await conn.execute(select(Region.code).where(Region.code.in_(elsewhere)))  # type: ignore[attr-defined]
        stored = set(rows.scalars())
    for account in directory.accounts.wechat_mp:
        if account.region not in in_file and account.region not in stored:
            raise DirectoryError(
                f"accounts.wechat_mp '{account.name}': region {account.region} is not in regions"
            )


def _split_secrets(fields: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    public = {k: v for k, v in fields.items() if k not in SECRET_FIELDS}
    secret = {k: v for k, v in fields.items() if k in SECRET_FIELDS}
    return public, secret


def _same_secrets(sealer: Sealer, sealed: str, secret: dict[str, Any]) -> bool:
    """Whether the stored seal holds exactly these secrets, in the current kind of seal (an
    older Fernet token, or one sealed under another key, is sealed afresh)."""
    if not sealed.startswith(CURRENT_SEAL):
        return False
    try:
        return bool(sealer.open(sealed) == secret)
    except ValueError:
        return False


async def _import_accounts(
    session: AsyncSession, sealer: Sealer, entries: list[tuple[str, Any]], counts: KindCounts
) -> None:
    """A handful of rows: the ORM, read in one query. A later entry of the same channel and
    name overwrites an earlier one, as it always has."""
    stored = {(a.channel, a.name): a for a in (await session.exec(select(Account))).scalars()}  # type: ignore[call-overload]
    seen: set[tuple[str, str]] = set()
    for channel, entry in entries:
        seen.add((channel, entry.name))
        fields = entry.model_dump(exclude_unset=True)
        public, secret = _split_secrets({k: v for k, v in fields.items() if k != "name"})
        masked = {k: mask_secret(str(v)) for k, v in secret.items()}
        acc = stored.get((channel, entry.name))
        if acc is not None and (
            acc.provider == entry.provider
            and acc.region_code == entry.region
            and acc.config == public
            and acc.secrets_masked == masked
            and _same_secrets(sealer, acc.secrets_sealed, secret)
        ):
            counts.unchanged += 1
            continue
        if acc is None:
            acc = stored[(channel, entry.name)] = Account(channel=channel, name=entry.name)
            counts.added += 1
        else:
            counts.changed += 1
        acc.provider = entry.provider
        acc.region_code = entry.region
        acc.config = public
        acc.secrets_sealed = sealer.seal(secret)
        acc.secrets_masked = masked
        session.add(acc)
    counts.not_in_file = len(set(stored) - seen)
    await session.flush()


_REGION_FIELDS = ("name", "parent_code", "path", "level", "names", "languages")


async def _import_regions(
    session: AsyncSession, directory: DirectoryFile, walk: Walk, counts: KindCounts
) -> set[str]:
    """The tree, parents first. The stored regions under the file's top regions are read by
    code prefix (a child's code extends its parent's), one query per top region. Returns the
    codes of those the file no longer lists (kept, like everything an import leaves out)."""
    R = Region.__table__  # type: ignore[attr-defined]
    roots = [node.code for node in directory.regions]
    stored: dict[str, tuple[Any, ...]] = {}
    if roots:
        query = select(R.c.code, *(R.c[f] for f in _REGION_FIELDS)).where(
            or_(*(R.c.code.startswith(code, autoescape=True) for code in roots))
        )
        conn = await session.connection()
        stored = {row[0]: tuple(row[1:]) for row in await conn.execute(query)}
    paths: dict[str, tuple[str, int]] = {}
    added: list[dict[str, Any]] = []
    changed: list[dict[str, Any]] = []
    for _where, node, parent in walk:
        parent_path, parent_level = paths[parent.code] if parent else ("/", -1)
        path = parent_path + node.code + "/"
        paths[node.code] = (path, parent_level + 1)
        row = {
            "name": node.name,
            "parent_code": parent.code if parent else None,
            "path": path,
            "level": parent_level + 1,
            "names": dict(node.names),
            "languages": list(node.languages),
        }
        old = stored.get(node.code)
        if old is None:
            added.append({"code": node.code, **row})
        elif old != tuple(row.values()):
            changed.append({**row, "code": node.code})
        else:
            counts.unchanged += 1
    counts.added, counts.changed = len(added), len(changed)
    left_out = stored.keys() - paths.keys()
    counts.not_in_file = len(left_out)
    await insert_rows(session, R, added)  # file order: a parent before its children
    await update_rows(session, R, "code", changed)
    return set(left_out)
