"""Sealing at rest: what a leaked database shows, and what still opens after an upgrade."""

from __future__ import annotations

import base64
import hashlib
import json

import pytest
from cryptography.fernet import Fernet

from gongkai.storage.crypto import Sealer


def test_sealed_value_hides_the_number_and_opens_again() -> None:
    sealer = Sealer("county-key")
    token = sealer.seal({"phones": ["13800000000"]})
    assert "13800000000" not in token
    assert token != sealer.seal({"phones": ["13800000000"]})  # a fresh nonce each time
    assert sealer.open(token) == {"phones": ["13800000000"]}


def test_values_sealed_by_an_older_release_still_open() -> None:
    """Before AES-GCM, values were Fernet tokens under the same secret key."""
    digest = hashlib.sha256(b"gongkai-at-rest:county-key").digest()
    old = Fernet(base64.urlsafe_b64encode(digest)).encrypt(
        json.dumps({"robot_key": "robot-1"}).encode()
    )
    assert Sealer("county-key").open(old.decode()) == {"robot_key": "robot-1"}


@pytest.mark.parametrize("secret", ["another-key", "county-key"])
def test_wrong_key_or_tampering_is_refused_with_the_reason(secret: str) -> None:
    token = Sealer("county-key").seal({"robot_key": "robot-1"})
    if secret == "county-key":  # flip one byte of the ciphertext
        raw = bytearray(base64.urlsafe_b64decode(token[3:]))
        raw[-1] ^= 1
        token = token[:3] + base64.urlsafe_b64encode(bytes(raw)).decode()
    with pytest.raises(ValueError, match="GONGKAI_SECRET_KEY"):
        Sealer(secret).open(token)
