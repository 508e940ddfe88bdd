"""Golden files: what a renderer produced last time a person checked it."""

from __future__ import annotations

import difflib
import os
from pathlib import Path

import pytest

GOLDEN = Path(__file__).resolve().parent / "data" / "golden"


def assert_golden(name: str, actual: str) -> None:
    """Compare with ``tests/data/golden/<name>``; ``GONGKAI_UPDATE_GOLDEN=1`` rewrites it."""
    path = GOLDEN / name
    if os.environ.get("GONGKAI_UPDATE_GOLDEN") == "1":
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(actual, encoding="utf-8")
    assert path.exists(), f"no golden file {path}: run with GONGKAI_UPDATE_GOLDEN=1"
    expected = path.read_text(encoding="utf-8")
    if actual != expected:
        diff = "\n".join(
            difflib.unified_diff(
                expected.splitlines(), actual.splitlines(), "golden", "rendered", lineterm=""
            )
        )
        pytest.fail(
            f"{name} differs from the golden file (GONGKAI_UPDATE_GOLDEN=1 rewrites):\n{diff}"
        )
