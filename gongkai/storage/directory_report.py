"""What a directory import tells as it goes and when it is done, kind by kind: shared by the
import (``directory.py``), its targets half (``directory_targets.py``) and the command line."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


class ImportProgress(Protocol):
    """Told what the import is doing: the command line draws it, a test may record it.

    Phases, in order: ``parsing``, ``validating``, ``writing`` (a caller may add its own, as
    the command line does ``connecting`` before them); ``total`` is the number of steps
    ``advance`` will count (None when a phase cannot say: parsing and validating are one call).
    None of them when the file is the last import's, unchanged.
    """

    def phase(self, name: str, total: int | None = None) -> None: ...

    def advance(self, steps: int = 1) -> None: ...


@dataclass
class KindCounts:
    """What an import did to one kind of row. ``not_in_file``: stored rows the file does not
    list (targets in the file's regions and in regions under them it left out, regions under its
    top regions, any account); the import leaves them as they were unless told to deactivate
    the targets."""

    added: int = 0
    changed: int = 0
    unchanged: int = 0
    not_in_file: int = 0
    deactivated: int = 0  # of those not in the file (targets, with --deactivate-missing)

    @property
    def in_file(self) -> int:
        return self.added + self.changed + self.unchanged
