"""Reading one node's YAML mapping with line numbers: each accessor either returns a checked
value or raises `FieldError` naming the line of the offending key or value."""

from __future__ import annotations

import difflib
from collections.abc import Iterable

from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from hotline.yamldoc import line_of
from ivr.menu.model import Location

DTMF_KEYS = frozenset("0123456789*#")


class FieldError(ValueError):
    def __init__(self, at: Location, message: str) -> None:
        super().__init__(message)
        self.at = at


def location(file: str, node: Node) -> Location:
    return Location(file, line_of(node))


class Fields:
    """The keys of one node mapping. `done()` rejects keys no accessor asked for."""

    def __init__(
        self,
        file: str,
        node_id: str,
        mapping: MappingNode,
        reserved: Iterable[str] = ("kind",),
        at: Location | None = None,
    ) -> None:
        """`at` is where the node is named (its id's line); by default the mapping's start."""
        self.file = file
        self.node_id = node_id
        self.at = at or location(file, mapping)
        self._values: dict[str, Node] = {}
        self._keys: dict[str, Node] = {}
        for key_node, value_node in mapping.value:
            key = str(key_node.value)
            if key in self._values:
                raise FieldError(self.loc(key_node), f"node '{node_id}': '{key}' is given twice")
            self._values[key] = value_node
            self._keys[key] = key_node
        self._used: set[str] = set(reserved)

    def loc(self, node: Node) -> Location:
        return location(self.file, node)

    def key_at(self, key: str) -> Location:
        node = self._keys.get(key)
        return self.at if node is None else self.loc(node)

    def has(self, key: str) -> bool:
        return key in self._values

    def is_mapping(self, key: str) -> bool:
        return isinstance(self._values.get(key), MappingNode)

    def _raw(self, key: str, required: bool) -> Node | None:
        self._used.add(key)
        value = self._values.get(key)
        if value is None and required:
            raise FieldError(self.at, f"node '{self.node_id}' needs '{key}'")
        return value

    def error(self, key: str, message: str) -> FieldError:
        node = self._values.get(key)
        at = self.at if node is None else self.loc(node)
        return FieldError(at, f"node '{self.node_id}': {key}: {message}")

    def text(self, key: str, default: str | None = None) -> str:
        node = self._raw(key, default is None)
        if node is None:
            assert default is not None
            return default
        if not isinstance(node, ScalarNode) or node.value == "":
            raise self.error(key, "expected a text value")
        return str(node.value)

    def optional_text(self, key: str) -> str | None:
        return self.text(key) if self.has(key) else None

    def number(self, key: str, default: float, low: float, high: float) -> float:
        node = self._raw(key, False)
        if node is None:
            return default
        try:
            value = float(node.value) if isinstance(node, ScalarNode) else None
        except ValueError:
            value = None
        if value is None:
            raise self.error(key, f"expected a number, got {_shown(node)}")
        if not low <= value <= high:
            raise self.error(key, f"must be between {low:g} and {high:g}, got {value:g}")
        return value

    def whole(self, key: str, default: int, low: int, high: int) -> int:
        value = self.number(key, default, low, high)
        if value != int(value):
            raise self.error(key, f"expected a whole number, got {value:g}")
        return int(value)

    def flag(self, key: str, default: bool) -> bool:
        node = self._raw(key, False)
        if node is None:
            return default
        if not isinstance(node, ScalarNode) or node.value.lower() not in ("true", "false"):
            raise self.error(key, f"expected true or false, got {_shown(node)}")
        return bool(node.value.lower() == "true")

    def choice(self, key: str, allowed: Iterable[str], default: str | None = None) -> str:
        allowed = tuple(allowed)
        value = self.text(key, default)
        if value not in allowed:
            raise self.error(key, f"'{value}' is not one of {', '.join(allowed)}")
        return value

    def digits(self, key: str, default: str = "") -> str:
        value = self.text(key) if self.has(key) else default
        bad = sorted(set(value) - DTMF_KEYS)
        if bad:
            raise self.error(key, f"not telephone keys: {''.join(bad)}")
        return value

    def target(self, key: str) -> tuple[str, Location]:
        node = self._raw(key, True)
        assert node is not None
        if not isinstance(node, ScalarNode) or not node.value:
            raise self.error(key, "expected the id of a node")
        return str(node.value), self.loc(node)

    def optional_target(self, key: str) -> tuple[str, Location] | None:
        return self.target(key) if self.has(key) else None

    def prompts(self, key: str, required: bool = True) -> tuple[tuple[str, Location], ...]:
        """A prompt name or a list of them."""
        node = self._raw(key, required)
        if node is None:
            return ()
        items = node.value if isinstance(node, SequenceNode) else [node]
        result = []
        for item in items:
            if not isinstance(item, ScalarNode) or not item.value:
                raise FieldError(self.loc(item), f"node '{self.node_id}': {key}: not a prompt name")
            result.append((str(item.value), self.loc(item)))
        if required and not result:
            raise self.error(key, "needs at least one prompt")
        return tuple(result)

    def mapping(self, key: str, required: bool = True) -> list[tuple[ScalarNode, Node]]:
        node = self._raw(key, required)
        if node is None:
            return []
        if not isinstance(node, MappingNode):
            raise self.error(key, "expected a mapping")
        pairs = []
        for k, v in node.value:
            if not isinstance(k, ScalarNode):
                raise FieldError(self.loc(k), f"node '{self.node_id}': {key}: keys must be text")
            pairs.append((k, v))
        return pairs

    def sequence(self, key: str) -> list[Node]:
        node = self._raw(key, True)
        if not isinstance(node, SequenceNode):
            raise self.error(key, "expected a list")
        return list(node.value)

    def done(self, known: Iterable[str] = ()) -> None:
        """Reject keys nobody read (a typo must not silently do nothing)."""
        expected = self._used | set(known)
        for key in self._values:
            if key not in expected:
                close = difflib.get_close_matches(key, sorted(expected), n=1)
                hint = f" (did you mean '{close[0]}'?)" if close else ""
                raise FieldError(
                    self.key_at(key), f"node '{self.node_id}': unknown key '{key}'{hint}"
                )


def scalar_text(node: Node) -> str | None:
    return str(node.value) if isinstance(node, ScalarNode) else None


def _shown(node: Node) -> str:
    return repr(node.value) if isinstance(node, ScalarNode) else "a " + type(node).__name__
