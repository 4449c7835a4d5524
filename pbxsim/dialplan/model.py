"""A loaded dialplan: contexts of extensions of priorities, the globals, and the look-ups the
PBX core makes (pbx_find_extension with Asterisk's default matcher).

Extensions of a context are kept in Asterisk's order (`patterns.compare_extensions`); a look-up
walks them, and the first one that matches the dialled number *and has the wanted priority*
wins, so a literal extension without that priority lets a pattern's priority through, as in
Asterisk. A context's ``include => other`` contexts are searched after its own extensions.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

from pbxsim.dialplan.errors import SourceLine
from pbxsim.dialplan.patterns import extension_matches, extension_sort_key

_T = TypeVar("_T")


@dataclass(frozen=True)
class ExtenAddress:
    """A place in the dialplan: context, the extension as dialled (not the pattern), priority."""

    context: str
    exten: str
    priority: int

    def __str__(self) -> str:
        return f"{self.context},{self.exten},{self.priority}"


@dataclass(frozen=True)
class DialplanPriority:
    """One ``exten =>``/``same =>`` line: the application and its data, unsubstituted."""

    number: int
    label: str | None
    app: str
    data: str
    source: SourceLine


@dataclass
class DialplanExtension:
    """One extension name (literal or ``_`` pattern) of a context and its priorities."""

    name: str
    source: SourceLine
    priorities: dict[int, DialplanPriority] = field(default_factory=dict)
    labels: dict[str, int] = field(default_factory=dict)
    hint: str | None = None


@dataclass
class DialplanContext:
    """A ``[context]``: its extensions in Asterisk's order and the contexts it includes."""

    name: str
    source: SourceLine
    extensions: list[DialplanExtension] = field(default_factory=list)
    includes: list[str] = field(default_factory=list)

    def extension(self, name: str) -> DialplanExtension | None:
        """The extension registered under exactly `name`."""
        return next((ext for ext in self.extensions if ext.name == name), None)

    def sort(self) -> None:
        self.extensions.sort(key=lambda ext: extension_sort_key(ext.name))


@dataclass
class Dialplan:
    """Everything extensions.conf defines; built by `parser.load_dialplan`."""

    path: Path
    contexts: dict[str, DialplanContext] = field(default_factory=dict)
    globals: dict[str, str] = field(default_factory=dict)

    def find(self, context: str, exten: str, priority: int) -> DialplanPriority | None:
        """The priority a channel at (context, exten, priority) runs, or None."""
        return self._walk(context, exten, lambda ext: ext.priorities.get(priority), set())

    def find_label(self, context: str, exten: str, label: str) -> int | None:
        """The priority number of `label` in the extension that `exten` reaches."""
        return self._walk(context, exten, lambda ext: ext.labels.get(label), set())

    def exists(self, context: str, exten: str, priority: int = 1) -> bool:
        """Whether (context, exten, priority) leads anywhere (ast_exists_extension)."""
        return self.find(context, exten, priority) is not None

    def _walk(
        self,
        context: str,
        exten: str,
        pick: Callable[[DialplanExtension], _T | None],
        seen: set[str],
    ) -> _T | None:
        found = self.contexts.get(context)
        if found is None or context in seen:
            return None
        seen.add(context)
        for ext in found.extensions:
            if extension_matches(ext.name, exten):
                result = pick(ext)
                if result is not None:
                    return result
        for included in found.includes:
            result = self._walk(included, exten, pick, seen)
            if result is not None:
                return result
        return None
