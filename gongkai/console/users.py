"""Console users: argon2 password hashes, created from the CLI and checked at login.

Hashing takes a few hundred milliseconds on purpose (that is what makes a stolen table costly to
attack), so the web process runs it in a thread rather than stalling every other request.
"""

from __future__ import annotations

import asyncio

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from gongkai.storage.models import Role, User

MIN_PASSWORD_LENGTH = 8
_hasher = PasswordHasher()
# Checked when a name is unknown, so a wrong name costs as long as a wrong password and the
# response time does not tell an attacker which names exist.
_DUMMY_HASH = _hasher.hash("gongkai-not-a-real-password")


class UserError(ValueError):
    """A user cannot be created as asked; the message says why, for the CLI to print."""


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def check_password(password_hash: str, password: str) -> bool:
    try:
        return _hasher.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


async def create_user(session: AsyncSession, name: str, role: Role, password: str) -> User:
    name = name.strip()
    if not name or len(name) > 64:
        raise UserError("--name: 1 to 64 characters")
    if len(password) < MIN_PASSWORD_LENGTH:
        raise UserError(f"password: at least {MIN_PASSWORD_LENGTH} characters")
    if (await session.exec(select(User).where(User.name == name))).first() is not None:
        raise UserError(f"user {name!r} already exists")
    user = User(
        name=name,
        role=Role(role).value,
        password_hash=await asyncio.to_thread(hash_password, password),
    )
    session.add(user)
    await session.commit()
    await session.refresh(user)
    return user


async def authenticate(session: AsyncSession, name: str, password: str) -> User | None:
    """The active user with this name and password, or None (same cost either way)."""
    user = (await session.exec(select(User).where(User.name == name.strip()))).first()
    if user is None or not user.active:
        await asyncio.to_thread(check_password, _DUMMY_HASH, password)
        return None
    if not await asyncio.to_thread(check_password, user.password_hash, password):
        return None
    if _hasher.check_needs_rehash(user.password_hash):  # parameters were raised since
        user.password_hash = await asyncio.to_thread(hash_password, password)
        session.add(user)
        await session.commit()
    return user
