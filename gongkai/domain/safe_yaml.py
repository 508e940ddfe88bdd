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
        try:
            return _Plain(loader, max_nodes, max_depth).build(node, 1)[0]
        except _Unusual:
            pass  # PyYAML's own way, which knows every tag, merge key and error message
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


_PREFIX = "tag:yaml.org,2002:"
_STR, _MAP, _SEQ = _PREFIX + "str", _PREFIX + "map", _PREFIX + "seq"
_SCALARS = {_PREFIX + t for t in ("null", "bool", "int", "float", "timestamp", "binary")}


class _Unusual(Exception):
    """Something ``_Plain`` leaves to PyYAML: another tag, a merge key, an unhashable key, a
    value PyYAML's constructor refuses."""


class _Plain:
    """Plain mappings, sequences and scalars built and measured in one pass.

    A county's directory file is 100,000 such nodes; PyYAML's constructor (generators per
    collection) and the budget's walk took 0.3 s of CPU for it, this takes 0.08. The budget is
    the same as ``_Budget``'s, counted the same way and refused with the same words; shared
    nodes (aliases) give the same shared objects. Anything else raises ``_Unusual`` and the
    document goes the long way, so what it returns or refuses does not change.
    """

    def __init__(self, loader: yaml.SafeLoader, max_nodes: int, max_depth: int) -> None:
        self.loader = loader
        self.constructors = loader.yaml_constructors
        self.max_nodes = max_nodes
        self.max_depth = max_depth
        self.built: dict[int, tuple[Any, int, int]] = {}  # id(node) → (value, size, height)
        self.open: set[int] = set()

    def build(self, node: yaml.Node, depth: int) -> tuple[Any, int, int]:
        """(value, nodes under it with aliases expanded, its height)."""
        if depth > self.max_depth:
            raise YAMLRefused(f"nested more than {self.max_depth} levels deep")
        key = id(node)
        known = self.built.get(key)
        if known is not None:
            if depth - 1 + known[2] > self.max_depth:
                raise YAMLRefused(f"nested more than {self.max_depth} levels deep")
            return known
        kind = node.__class__
        if kind is yaml.ScalarNode:
            done = (self._scalar(node), 1, 1)
            self.built[key] = done
            return done
        if key in self.open:
            raise YAMLRefused("an alias refers to the node that contains it")
        self.open.add(key)
        size, height = 1, 1
        value: Any
        if kind is yaml.MappingNode and node.tag == _MAP:
            value = {}
            for key_node, value_node in node.value:
                if key_node.tag != _STR and key_node.tag not in _SCALARS:
                    raise _Unusual  # a merge key (<<), a value key (=), a collection as key
                k, k_size, k_height = self.build(key_node, depth + 1)
                size, height = self._grow(size, height, k_size, k_height)
                v, v_size, v_height = self.build(value_node, depth + 1)
                size, height = self._grow(size, height, v_size, v_height)
                value[k] = v
        elif kind is yaml.SequenceNode and node.tag == _SEQ:
            value = []
            for item in node.value:
                v, v_size, v_height = self.build(item, depth + 1)
                size, height = self._grow(size, height, v_size, v_height)
                value.append(v)
        else:
            raise _Unusual
        self.open.discard(key)
        done = (value, size, height)
        self.built[key] = done
        return done

    def _grow(self, size: int, height: int, child_size: int, child_height: int) -> tuple[int, int]:
        size += child_size
        if size > self.max_nodes:
            raise YAMLRefused(
                f"too many values once aliases are expanded (more than {self.max_nodes})"
            )
        return size, max(height, child_height + 1)

    def _scalar(self, node: yaml.Node) -> Any:
        if node.tag == _STR:
            return node.value
        if node.tag not in _SCALARS:
            raise _Unusual
        try:
            return self.constructors[node.tag](self.loader, node)
        except (ValueError, OverflowError, TypeError, yaml.YAMLError):
            raise _Unusual from None  # refused the long way, in its words and order
