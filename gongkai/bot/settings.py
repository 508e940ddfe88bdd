"""Moved to ``gongkai.config`` (settings sit on the ground floor, below every package that
reads them); this name stays until the last importer has moved."""

from gongkai.config import Settings, parse_quiet_hours

__all__ = ["Settings", "parse_quiet_hours"]
