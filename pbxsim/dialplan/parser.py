"""Reading extensions.conf into a `Dialplan`, the way Asterisk's config reader and pbx_config do.

The file format: ``;`` starts a comment (``\\;`` is a literal ``;``, ``;-- ... --;`` a block
comment), ``[name]`` starts a section, ``key => value`` (or ``key = value``) is an entry,
``#include file`` / ``#tryinclude file`` pull in another file (a relative name is relative to
the configuration directory, the main file's directory; a missing ``#include`` is an error
naming the line of the directive; glob characters are expanded). ``[general]`` is skipped,
``[globals]`` sets global variables (each value substituted with the globals before it, read
before any context, as pbx_config does), every other section is a context.

In a context: ``exten => name,priority,App(data)`` and ``same => priority,App(data)`` (the
previous ``exten``'s name); a priority is a number, ``n`` (the previous line's + 1), ``s`` (the
previous line's), ``hint``, or an existing label, optionally ``+N``, optionally with a
``(label)``; ``include => context`` searches another context after this one's extensions;
``ignorepat`` is accepted and ignored. What the simulator does not model (caller-ID matching,
switches, context templates, ``#exec``, timed includes) is refused with file:line rather than
run wrongly; so are duplicated priorities and labels, which Asterisk drops with a warning.
"""

from __future__ import annotations

import glob
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from pbxsim.dialplan.errors import DialplanError, DialplanSyntaxError, SourceLine
from pbxsim.dialplan.model import Dialplan, DialplanContext, DialplanExtension, DialplanPriority
from pbxsim.dialplan.patterns import pattern_error
from pbxsim.dialplan.substitute import substitute

_NOT_CONTEXTS: Final = ("general", "globals")
_SECTION: Final = re.compile(r"\[([^\]]*)\](.*)")
_LEADING_INT: Final = re.compile(r"\s*([+-]?\d+)")


@dataclass(frozen=True)
class _Entry:
    """One ``key => value`` line (or a section header: key is None) of the merged files."""

    source: SourceLine
    section: str
    key: str | None
    value: str


def load_dialplan(path: Path | str) -> Dialplan:
    """Parse `path` and what it includes; raises `DialplanSyntaxError` naming file:line."""
    path = Path(path)
    if not path.is_file():
        raise DialplanError(f"{path}: no such dialplan file")
    entries = _read_entries(path, path.parent, None, ())
    dialplan = Dialplan(path)
    for entry in entries:
        if entry.section.lower() == "globals" and entry.key is not None:
            _set_global(dialplan, entry)
    builder = _ContextBuilder(dialplan)
    for entry in entries:
        if entry.section.lower() not in _NOT_CONTEXTS:
            builder.add(entry)
    for context in dialplan.contexts.values():
        context.sort()
    return dialplan


# -- the file format ----------------------------------------------------------------------


def _read_entries(
    path: Path, conf_dir: Path, section: str | None, chain: tuple[Path, ...]
) -> list[_Entry]:
    """The entries of one file, includes expanded in place; `section` is the section the
    including file was in (an included file may go on with it)."""
    if path.resolve() in chain:
        raise DialplanError(f"{path}: included from itself")
    entries: list[_Entry] = []
    in_block = False
    text = path.read_text(encoding="utf-8")
    for number, raw in enumerate(text.splitlines(), start=1):
        source = SourceLine(str(path), number)
        line, in_block = _strip_comment(raw, in_block)
        line = line.strip()
        if not line:
            continue
        if line.startswith("#"):
            for included in _included_files(line, conf_dir, source):
                inner = _read_entries(included, conf_dir, section, (*chain, path.resolve()))
                entries.extend(inner)
                section = inner[-1].section if inner else section
            continue
        header = _SECTION.fullmatch(line)
        if header is not None:
            section = header.group(1).strip()
            if header.group(2).strip():
                raise DialplanSyntaxError(
                    source, f"context options {header.group(2).strip()} are not supported"
                )
            entries.append(_Entry(source, section, None, ""))
            continue
        if section is None:
            raise DialplanSyntaxError(source, f"{line!r} before any [section]")
        key, equals, value = line.partition("=")
        if not equals or not key.strip():
            raise DialplanSyntaxError(source, f"expected 'name => value', got {line!r}")
        entries.append(_Entry(source, section, key.strip(), value.removeprefix(">").strip()))
    return entries


def _strip_comment(line: str, in_block: bool) -> tuple[str, bool]:
    """The line without comments, and whether a ``;--`` block comment is still open."""
    out: list[str] = []
    at = 0
    while at < len(line):
        if in_block:
            end = line.find("--;", at)
            if end < 0:
                return "".join(out), True
            at, in_block = end + 3, False
        elif line.startswith("\\;", at):
            out.append(";")
            at += 2
        elif line.startswith(";--", at):
            at, in_block = at + 3, True
        elif line[at] == ";":
            break
        else:
            out.append(line[at])
            at += 1
    return "".join(out), in_block


def _included_files(line: str, conf_dir: Path, source: SourceLine) -> list[Path]:
    directive, *argument = line[1:].split(None, 1) or [""]
    directive = directive.lower()
    name = "".join(argument).strip().strip('"').removeprefix("<").removesuffix(">").strip()
    if directive not in ("include", "tryinclude"):
        raise DialplanSyntaxError(source, f"#{directive} is not supported")
    if not name:
        raise DialplanSyntaxError(source, f"#{directive} without a file name")
    target = Path(name) if Path(name).is_absolute() else conf_dir / name
    if glob.has_magic(str(target)):
        found = [Path(match) for match in sorted(glob.glob(str(target)))]
    else:
        found = [target] if target.is_file() else []
    if not found and directive == "include":
        raise DialplanSyntaxError(source, f"#include {name}: no such file {target}")
    return found


# -- what the entries mean ----------------------------------------------------------------


class _GlobalsLookup:
    """Substitution while loading: only the globals defined so far; no functions."""

    def __init__(self, dialplan: Dialplan) -> None:
        self._globals = dialplan.globals

    def variable(self, name: str) -> str | None:
        return self._globals.get(name)

    def function(self, name: str, args: str) -> str:
        raise DialplanError(f"function {name}() cannot be used while loading the dialplan")


def _loading_substitute(dialplan: Dialplan, text: str, source: SourceLine) -> str:
    try:
        return substitute(text, _GlobalsLookup(dialplan))
    except DialplanError as error:
        raise DialplanSyntaxError(source, str(error)) from None


def _set_global(dialplan: Dialplan, entry: _Entry) -> None:
    assert entry.key is not None
    dialplan.globals[entry.key] = _loading_substitute(dialplan, entry.value, entry.source)


class _ContextBuilder:
    """pbx_config's loop over the entries of the contexts."""

    def __init__(self, dialplan: Dialplan) -> None:
        self._dialplan = dialplan
        self._context: DialplanContext | None = None
        self._last_exten: str | None = None
        self._last_priority: int | None = None

    def add(self, entry: _Entry) -> None:
        if entry.key is None:
            self._open(entry)
            return
        key = entry.key.lower()
        if key in ("exten", "same"):
            self._priority(entry, key == "same")
        elif key == "include":
            self._include(entry)
        elif key != "ignorepat":
            raise DialplanSyntaxError(entry.source, f"{entry.key!r} is not supported in a context")

    def _open(self, entry: _Entry) -> None:
        context = self._dialplan.contexts.get(entry.section)
        if context is None:
            context = DialplanContext(entry.section, entry.source)
            self._dialplan.contexts[entry.section] = context
        self._context = context
        self._last_exten = None
        self._last_priority = None

    def _include(self, entry: _Entry) -> None:
        assert self._context is not None
        name = _loading_substitute(self._dialplan, entry.value, entry.source)
        if any(separator in name for separator in ",|"):
            raise DialplanSyntaxError(entry.source, f"timed include {name!r} is not supported")
        self._context.includes.append(name)

    def _priority(self, entry: _Entry, same: bool) -> None:
        assert self._context is not None
        if same:
            if self._last_exten is None:
                raise DialplanSyntaxError(entry.source, "'same =>' with no 'exten =>' before it")
            name, rest = self._last_exten, entry.value
        else:
            raw_name, _, rest = entry.value.partition(",")
            name = _loading_substitute(self._dialplan, raw_name.strip(), entry.source)
            _check_name(name, entry.source)
            self._last_exten = name
        extension = self._context.extension(name)
        if extension is None:
            extension = DialplanExtension(name, entry.source)
            self._context.extensions.append(extension)
        priority_text, _, application = rest.partition(",")
        number, label = self._number(priority_text.strip(), extension, entry.source)
        if number is None:
            extension.hint = application
            return
        app, data = _split_application(application, entry.source)
        _register(extension, DialplanPriority(number, label, app, data, entry.source))
        self._last_priority = number

    def _number(
        self, text: str, extension: DialplanExtension, source: SourceLine
    ) -> tuple[int | None, str | None]:
        """The priority number (None for ``hint``) and the label of a priority field."""
        label = None
        if "(" in text:
            text, _, rest = text.partition("(")
            if ")" not in rest:
                raise DialplanSyntaxError(source, "label missing its closing ')'")
            label = rest[: rest.index(")")]
        text, plus, offset = text.strip().partition("+")
        if text == "hint":
            return None, None
        if text in ("n", "next", "s", "same"):
            if self._last_priority is None:
                raise DialplanSyntaxError(source, f"priority {text!r} on the first line")
            number = self._last_priority + (1 if text in ("n", "next") else 0)
        elif (match := _LEADING_INT.match(text)) is not None:
            number = int(match.group(1))
        elif text in extension.labels:
            number = extension.labels[text]
        else:
            raise DialplanSyntaxError(source, f"invalid priority or unknown label {text!r}")
        if plus:
            match = _LEADING_INT.match(offset)
            number += int(match.group(1)) if match else 0
        if number < 1:
            raise DialplanSyntaxError(source, f"invalid priority {number}")
        return number, label


def _check_name(name: str, source: SourceLine) -> None:
    if not name:
        raise DialplanSyntaxError(source, "extension without a name")
    if "/" in name:
        raise DialplanSyntaxError(source, f"caller-ID matching ({name}) is not supported")
    problem = pattern_error(name)
    if problem is not None:
        raise DialplanSyntaxError(source, problem)


def _split_application(text: str, source: SourceLine) -> tuple[str, str]:
    """``App(data)`` -> (App, data); the data runs to the last ``)``."""
    if "(" not in text:
        app, data = text, ""
    else:
        app, _, data = text.partition("(")
        if ")" not in data:
            raise DialplanSyntaxError(source, f"no closing ')' in {text!r}")
        data = data[: data.rindex(")")]
    app = app.strip()
    if not app:
        raise DialplanSyntaxError(source, "priority without an application")
    if not re.fullmatch(r"[A-Za-z0-9_]+", app):
        raise DialplanSyntaxError(source, f"invalid application name {app!r}")
    return app, data


def _register(extension: DialplanExtension, priority: DialplanPriority) -> None:
    existing = extension.priorities.get(priority.number)
    if existing is not None:
        raise DialplanSyntaxError(
            priority.source,
            f"priority {priority.number} of {extension.name} already defined at {existing.source}",
        )
    if priority.label is not None:
        if priority.label in extension.labels:
            raise DialplanSyntaxError(
                priority.source, f"label {priority.label!r} already used in {extension.name}"
            )
        extension.labels[priority.label] = priority.number
    extension.priorities[priority.number] = priority
