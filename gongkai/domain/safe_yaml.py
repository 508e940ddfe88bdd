"""YAML from people we do not control: the console's upload, ``gongkai publish FILE``, the
directory and FAQ files.

``yaml.safe_load`` refuses Python objects but not aliases: a 525-byte file whose anchors refer to
anchors ("billion laughs") loads instantly as shared references and then explodes into hundreds
of megabytes the first time anything walks it (validation, the form's JSON, a hash). Here the
document is composed into nodes first, and its size *as if every alias were expanded* is counted
(shared nodes counted once each, so the count itself stays cheap); a file over the budget, nested
too deep or referring to itself is refused before one Python object is built. Aliases within the
budget keep working, so a directory file may still share a block with ``<<: *defaults``.
"""

from __future__ import annotations

from typing import Any

import yaml

MAX_CHARS = 8 * 1024 * 1024
MAX_NODES = 1_000_000
MAX_DEPTH = 64

_Loader: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class YAMLRefused(yaml.YAMLError):
    """The document is too large, too deep or self-referring (a ``yaml.YAMLError``, so every
    caller's existing handling of unparseable files names the file the same way)."""


def load(
    text: str,
    *,
    max_chars: int = MAX_CHARS,
    max_nodes: int = MAX_NODES,
    max_depth: int = MAX_DEPTH,
) -> Any:
    """Like ``yaml.safe_load``, within the budgets (nodes counted with aliases expanded)."""
    if len(text) > max_chars:
        raise YAMLRefused(f"file too large: more than {max_chars} characters")
    loader = _Loader(text)
    try:
        try:
            node = loader.get_single_node()
        except RecursionError:
            raise YAMLRefused(f"nested more than {max_depth} levels deep") from None
        if node is None:
            return None
        _Budget(max_nodes, max_depth).measure(node, 1)
        try:
            return loader.construct_document(node)
        except (ValueError, OverflowError, TypeError) as exc:  # e.g. a timestamp 2026-13-45
            raise YAMLRefused(f"invalid value: {exc}") from None
    finally:
        loader.dispose()


class _Budget:
    def __init__(self, max_nodes: int, max_depth: int) -> None:
        self.max_nodes = max_nodes
        self.max_depth = max_depth
        self.sizes: dict[int, tuple[int, int]] = {}  # id(node) → (expanded size, height)
        self.open: set[int] = set()

    def measure(self, node: yaml.Node, depth: int) -> tuple[int, int]:
        """(nodes under ``node`` with aliases expanded, its height); raises past a budget.

        Recursion is bounded by ``max_depth``: it stops the moment the path gets deeper.
        """
        if depth > self.max_depth:
            raise YAMLRefused(f"nested more than {self.max_depth} levels deep")
        key = id(node)
        known = self.sizes.get(key)
        if known is not None:
            if depth - 1 + known[1] > self.max_depth:
                raise YAMLRefused(f"nested more than {self.max_depth} levels deep")
            return known
        if key in self.open:
            raise YAMLRefused("an alias refers to the node that contains it")
        self.open.add(key)
        size, height = 1, 1
        if isinstance(node, yaml.SequenceNode):
            children: list[yaml.Node] = list(node.value)
        elif isinstance(node, yaml.MappingNode):
            children = [part for pair in node.value for part in pair]
        else:
            children = []
        for child in children:
            child_size, child_height = self.measure(child, depth + 1)
            size += child_size
            height = max(height, child_height + 1)
            if size > self.max_nodes:
                raise YAMLRefused(
                    f"too many values once aliases are expanded (more than {self.max_nodes})"
                )
        self.open.discard(key)
        self.sizes[key] = (size, height)
        return size, height
