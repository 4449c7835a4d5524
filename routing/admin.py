"""Editing the ACD's groups, operators and group schedules while it runs.

Two ways in, one path through: the admin API (`routing.admin_http`) and hand edits of the
files (`AcdAdmin.check`, polled like the menus' live reload, `ivr.menu.watch`). Either way the
would-be file is checked by the very validator that reads it at start-up
(`routing.groups.parse_groups`, `agents.operators.parse_operators`,
`ivr.schedule.validate_hours_file`), then checked against what is running (a group with
callers waiting, or named by a menu, an operator's skill or another group, cannot go; an
operator who is logged in cannot go), then written atomically (temporary file, fsync, rename)
and applied to the running ACD: waiting callers keep their place, calls in progress go on, an
operator ringing or talking keeps that call and new skills count from the next offer.

API edits rewrite only the entry they change: the other entries keep their text and comments.
Every accepted version of a file (and the one it replaced) is kept as the menus' versions are
(`ivr.menu.versions.VersionStore`: ``<versions_dir>/groups/<UTC time>-<sha8>.yaml``).

A hand edit that fails is refused and the last good version stays in force: each problem is
logged at ERROR as ``file:line: sentence``, ``hotline_acd_config_rejected_total{file}`` counts
it, ``hotline_acd_config_broken{file}`` stays 1 and /healthz shows ``acd_files: stale`` until a
good file arrives. API edits are serialised (one at a time, last writer wins); a hand edit not
yet picked up is part of the file an API edit starts from, so it is checked too.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import tempfile
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import yaml
from prometheus_client import Counter, Gauge
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from agents.operators import OperatorSpec, OperatorState, parse_operators
from hotline.periodic import Periodic
from ivr.menu.versions import VersionStore, digest, file_author, write_atomically
from routing.groups import SCHEDULE_NAME, Group, parse_groups
from routing.yamlfile import Doc, FileError

if TYPE_CHECKING:
    from ivr.schedule import OpenHours
    from recorder.audit import Actor, AuditLog
    from routing.part import AcdService

__all__ = ["AcdAdmin", "EditRefused"]

log = logging.getLogger("hotline.routing.admin")
T = TypeVar("T")

CONFIG_REJECTED = Counter(
    "hotline_acd_config_rejected_total",
    "Hand edits of ACD files refused (the last good version stays in force)",
    ["file"],
)
CONFIG_BROKEN = Gauge(
    "hotline_acd_config_broken", "1 while the ACD file on disk is refused", ["file"]
)

_MAX_DEPTH = 4  # JSON nesting an edit may carry (skills is the deepest: 2)
_PLAIN = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_./-]*$")
_DAY_KINDS = ("workday", "saturday", "sunday", "holiday")


class EditRefused(Exception):
    """An edit not made; `message` is Russian, `where` a field or ``file:line``."""

    def __init__(self, status: int, message: str, where: str = "", detail: str = "") -> None:
        super().__init__(message)
        self.status, self.message, self.where, self.detail = status, message, where, detail


@dataclass
class _Entry:
    """Where one entry of a file's top mapping is written: lines first..last (0-based)."""

    first: int
    last: int
    indent: int


@dataclass
class AcdAdmin:
    """The edit path for one running `AcdService` (see the module docstring)."""

    service: AcdService
    groups_file: Path
    operators_file: Path
    schedules_dir: Path
    versions: VersionStore
    menus_dir: Path | None = None  # menus naming groups (a group they name cannot go)
    audit: AuditLog | None = None  # accepted API edits are appended here (who, what)
    interval: float = 2.0
    author: Callable[[Path], str] = file_author
    broken: dict[str, str] = field(default_factory=dict)  # file -> first problem
    _applied: dict[Path, str] = field(default_factory=dict)  # file -> SHA-256 in force
    _in_force: dict[Path, bytes] = field(default_factory=dict)  # file -> bytes in force
    _lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    _poll: Periodic | None = None

    @classmethod
    def for_service(
        cls,
        service: AcdService,
        *,
        versions_dir: Path,
        menus_dir: Path | None,
        audit: AuditLog | None,
    ) -> AcdAdmin:
        """The admin of a service built from its settings (`AcdService.build`)."""
        from routing.settings import locate

        settings = service.settings
        return cls(
            service,
            groups_file=locate(settings.groups_file),
            operators_file=locate(settings.operators_file),
            schedules_dir=locate(settings.schedules_dir),
            versions=VersionStore(versions_dir),
            menus_dir=menus_dir,
            audit=audit,
            interval=settings.reload_interval,
        )

    def __post_init__(self) -> None:
        for path in (self.groups_file, self.operators_file, *self._schedule_files()):
            with contextlib.suppress(OSError):
                self._in_force[path] = path.read_bytes()
                self._applied[path] = digest(self._in_force[path])

    # --- reading ----------------------------------------------------------------------------

    @property
    def groups(self) -> Mapping[str, Group]:
        return self.service.node.acd.groups

    @property
    def operators(self) -> Mapping[str, OperatorSpec]:
        return {op_id: op.spec for op_id, op in self.service.node.acd.operators.items()}

    def describe_group(self, group: Group) -> dict[str, Any]:
        members = {
            op.id: op.spec.skills[group.id]
            for op in self.service.node.acd.operators.values()
            if group.id in op.spec.skills
        }
        return {
            "id": group.id,
            "name": group.name,
            "schedule": group.schedule,
            "wrap_up_seconds": group.wrap_up_seconds,
            "ring_seconds": group.ring_seconds,
            "max_wait_seconds": group.max_wait_seconds,
            "widen_after_seconds": group.widen_after_seconds,
            "widen_to": list(group.widen_to),
            "overflow_group": group.overflow_group,
            "skilled": dict(sorted(members.items())),
            "waiting": self.service.node.acd.waiting(group.id),
        }

    def schedule(self, name: str) -> dict[str, Any]:
        path = self._schedule_path(name)
        if not path.is_file():
            raise EditRefused(404, f"Расписание «{name}» не найдено.", "name")
        data = self._hours_data(path)
        return {
            "name": name,
            "file": str(path),
            "timezone": data.get("timezone"),
            "surge_file": data.get("surge_file"),
            "hours": data.get("hours"),
            "groups": sorted(g.id for g in self.groups.values() if g.schedule == name),
        }

    # --- groups -----------------------------------------------------------------------------

    async def put_group(
        self, group_id: str, body: Mapping[str, Any], actor: Actor, source: str
    ) -> Group:
        _check_depth(body)
        async with self._lock:
            text = _read(self.groups_file)
            new_text, block = _with_entry(self.groups_file, text, "groups", group_id, body)
            groups = self._parse(
                lambda doc: parse_groups(doc), self.groups_file, new_text, block, "Группа"
            )
            created = group_id not in self.groups
            await self._commit_groups(groups, new_text, actor, source, "group.put", group_id)
        log.info("ACD group %s %s", group_id, "created" if created else "replaced")
        return groups[group_id]

    async def delete_group(self, group_id: str, actor: Actor, source: str) -> None:
        async with self._lock:
            if group_id not in self.groups:
                raise EditRefused(404, f"Группа «{group_id}» не найдена.", "id")
            text = _read(self.groups_file)
            new_text = _without_entry(self.groups_file, text, "groups", group_id)
            self._refuse_group_in_use(group_id)
            groups = self._parse(
                lambda doc: parse_groups(doc), self.groups_file, new_text, None, "Группа"
            )
            await self._commit_groups(groups, new_text, actor, source, "group.delete", group_id)

    def _refuse_group_in_use(self, group_id: str) -> None:
        acd = self.service.node.acd
        if any(c.group == group_id for c in acd.callers.values()):
            raise EditRefused(
                409, f"В группе «{group_id}» есть абоненты: удалить её нельзя.", "waiting"
            )
        for op in acd.operators.values():
            if group_id in op.spec.skills:
                raise EditRefused(
                    409,
                    f"Группа «{group_id}» — навык оператора «{op.id}»: сначала уберите навык.",
                    f"operators.{op.id}.skills",
                )
        for other in self.groups.values():
            for name, targets in (
                ("widen_to", other.widen_to),
                ("overflow_group", (other.overflow_group,)),
            ):
                if group_id in targets:
                    raise EditRefused(
                        409,
                        f"На группу «{group_id}» ссылается группа «{other.id}» ({name}).",
                        f"groups.{other.id}.{name}",
                    )
        for place in self._menus_naming(group_id):
            raise EditRefused(409, f"Группу «{group_id}» использует голосовое меню.", place)

    def _menus_naming(self, group_id: str) -> Iterator[str]:
        """``file:line`` of every ``group: <id>`` in the menu files (a queue, a callback, a
        variable a later queue reads, the menu's group of last resort)."""
        if self.menus_dir is None:
            return
        from ivr.menu.library import menu_files

        for path in menu_files(self.menus_dir):
            try:
                root = yaml.compose(path.read_text(encoding="utf-8"), Loader=yaml.SafeLoader)
            except (OSError, UnicodeDecodeError, yaml.YAMLError):
                continue  # a broken menu serves nothing; the menu watcher reports it
            for node in _scalars_under(root, "group"):
                if node.value == group_id:
                    yield f"{path}:{node.start_mark.line + 1}"

    async def _commit_groups(
        self,
        groups: dict[str, Group],
        text: str,
        actor: Actor | None,
        source: str,
        action: str,
        target: str,
    ) -> None:
        hours = self._hours_for(groups, self.groups_file)
        self._check_groups_fit(groups, self.groups_file)
        await self._audit(actor, action, target, source, text)
        self._check_groups_fit(groups, self.groups_file)  # again: callers came while auditing
        self._write(self.groups_file, text, actor, action)
        self.service.hours.update(hours)
        await self.service.node.apply_groups(self.service.settings.timed_groups(groups))

    def _check_groups_fit(self, groups: Mapping[str, Group], path: Path) -> None:
        """The running ACD can take these groups: none it still needs is gone."""
        acd = self.service.node.acd
        for gone in sorted(acd.groups.keys() - groups.keys()):
            for op in acd.operators.values():
                if gone in op.spec.skills:
                    raise EditRefused(
                        409,
                        f"Группа «{gone}» — навык оператора «{op.id}»: удалить её нельзя.",
                        f"{self.operators_file}: {op.id}",
                    )
            if any(c.group == gone for c in acd.callers.values()):
                raise EditRefused(
                    409, f"В группе «{gone}» есть абоненты: удалить её нельзя.", f"{path}: {gone}"
                )
            for place in self._menus_naming(gone):
                raise EditRefused(409, f"Группу «{gone}» использует голосовое меню.", place)

    def _hours_for(self, groups: Mapping[str, Group], path: Path) -> dict[str, OpenHours]:
        from ivr.schedule import ScheduleError
        from routing.group_hours import load_group_hours

        try:
            return load_group_hours(groups, self.schedules_dir)
        except ScheduleError as error:
            raise EditRefused(
                422, "Расписание группы содержит ошибки.", str(error.problems[0])
            ) from None

    # --- operators --------------------------------------------------------------------------

    async def put_operator(
        self, op_id: str, body: Mapping[str, Any], actor: Actor, source: str
    ) -> OperatorSpec:
        _check_depth(body)
        async with self._lock:
            return await self._put_operator(op_id, body, actor, source, "operator.put")

    async def put_skills(
        self, op_id: str, skills: Mapping[str, Any], actor: Actor, source: str
    ) -> OperatorSpec:
        _check_depth(skills)
        async with self._lock:
            spec = self.operators.get(op_id)
            if spec is None:
                raise EditRefused(404, f"Оператор «{op_id}» не найден.", "id")
            body = {"name": spec.name, "device": spec.device, "skills": dict(skills)}
            return await self._put_operator(op_id, body, actor, source, "operator.skills")

    async def _put_operator(
        self, op_id: str, body: Mapping[str, Any], actor: Actor, source: str, action: str
    ) -> OperatorSpec:
        text = _read(self.operators_file)
        new_text, block = _with_entry(self.operators_file, text, "operators", op_id, body)
        known = set(self.groups)
        operators = self._parse(
            lambda doc: parse_operators(doc, known),
            self.operators_file,
            new_text,
            block,
            "Оператор",
        )
        await self._commit_operators(operators, new_text, actor, source, action, op_id)
        return operators[op_id]

    async def delete_operator(self, op_id: str, actor: Actor, source: str) -> None:
        async with self._lock:
            if op_id not in self.operators:
                raise EditRefused(404, f"Оператор «{op_id}» не найден.", "id")
            text = _read(self.operators_file)
            new_text = _without_entry(self.operators_file, text, "operators", op_id)
            known = set(self.groups)
            operators = self._parse(
                lambda doc: parse_operators(doc, known),
                self.operators_file,
                new_text,
                None,
                "Оператор",
            )
            await self._commit_operators(
                operators, new_text, actor, source, "operator.delete", op_id
            )

    async def _commit_operators(
        self,
        operators: dict[str, OperatorSpec],
        text: str,
        actor: Actor | None,
        source: str,
        action: str,
        target: str,
    ) -> None:
        self._check_operators_fit(operators)
        await self._audit(actor, action, target, source, text)
        self._check_operators_fit(operators)  # again: someone may have logged in meanwhile
        self._write(self.operators_file, text, actor, action)
        node = self.service.node
        for gone in sorted(node.acd.operators.keys() - operators.keys()):
            node.remove_operator(gone)
        for op_id, spec in operators.items():
            current = node.acd.operators.get(op_id)
            if current is None or current.spec != spec:
                await node.apply_operator(spec)
        self.service.operators = dict(operators)
        if self.service.devices is not None:
            self.service.devices.follow(operators.values())

    def _check_operators_fit(self, operators: Mapping[str, OperatorSpec]) -> None:
        acd = self.service.node.acd
        for gone in sorted(acd.operators.keys() - operators.keys()):
            if acd.operators[gone].state is not OperatorState.LOGGED_OUT:
                raise EditRefused(
                    409, f"Оператор «{gone}» в системе: удалить можно только после выхода.", "state"
                )

    # --- schedules --------------------------------------------------------------------------

    async def put_schedule(
        self, name: str, body: Mapping[str, Any], actor: Actor, source: str
    ) -> dict[str, Any]:
        _check_depth(body)
        path = self._schedule_path(name)
        async with self._lock:
            current = self._hours_data(path) if path.is_file() else {}
            if body.get("surge_file", current.get("surge_file")) != current.get("surge_file"):
                raise EditRefused(
                    422, "Файл режима «круглосуточно» через API не меняется.", "surge_file"
                )
            text = _render_hours(path, body, current)
            hours = self._check_hours(path, text)
            await self._audit(actor, "schedule.put", name, source, text)
            self._write(path, text, actor, "schedule.put")
            if any(g.schedule == name for g in self.groups.values()):
                self.service.hours[name] = hours
            log.info("ACD schedule %s saved", name, extra={"user": actor.user_id})
        return self.schedule(name)

    def _schedule_path(self, name: str) -> Path:
        if not SCHEDULE_NAME.match(name) or name.isdigit() or name == "calendar":
            raise EditRefused(404, f"Расписание «{name}» не найдено.", "name")
        path = self.schedules_dir / f"{name}.yaml"
        if path in (self.groups_file, self.operators_file):
            raise EditRefused(404, f"Расписание «{name}» не найдено.", "name")
        return path

    def _hours_data(self, path: Path) -> dict[str, Any]:
        """A file's content if it is an hours file (a mapping with ``hours``), else 404."""
        try:
            data = yaml.safe_load(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, yaml.YAMLError):
            data = None
        if not isinstance(data, dict) or "hours" not in data:
            raise EditRefused(404, f"Файл {path.name} не является расписанием.", "name")
        return data

    def _check_hours(self, path: Path, text: str) -> OpenHours:
        """The IVR's own validator on the would-be file (in a scratch directory beside no one),
        with its problems reported against the real path."""
        from ivr.schedule import ScheduleError, load_calendar, load_hours, validate_hours_file

        with tempfile.TemporaryDirectory() as scratch:
            trial = Path(scratch) / path.name
            trial.write_text(text, encoding="utf-8")
            problems = validate_hours_file(trial)
            if problems:
                first = problems[0]
                field_name = _hours_field(text, first.line)
                raise EditRefused(
                    422,
                    f"Расписание не сохранено: {first.message}",
                    field_name or f"{path}:{first.line}",
                    str(first).replace(str(trial), str(path)),
                )
            try:
                return load_hours(trial, load_calendar(self.schedules_dir / "calendar.yaml"))
            except ScheduleError as error:
                raise EditRefused(
                    422, "Календарь содержит ошибки.", str(error.problems[0])
                ) from None

    def _schedule_files(self) -> list[Path]:
        names = {g.schedule for g in self.groups.values()}
        found = [self.schedules_dir / f"{n}.yaml" for n in sorted(names)]
        return [*found, self.schedules_dir / "calendar.yaml"]

    # --- shared steps -----------------------------------------------------------------------

    def _parse(
        self,
        parse: Callable[[Doc], T],
        path: Path,
        text: str,
        block: tuple[int, list[str]] | None,
        what: str,
    ) -> T:
        try:
            return parse(Doc(path, text))
        except FileError as error:
            raise _refusal(error, path, block, what) from None

    async def _audit(
        self, actor: Actor | None, action: str, target: str, source: str, text: str
    ) -> None:
        """No audit entry, no edit: an audit log we cannot write to refuses the edit."""
        if actor is None or self.audit is None:
            return
        try:
            await self.audit.record(
                actor,
                f"acd.{action}",
                recording_id=None,
                source=source,
                outcome="accepted",
                detail={"target": target, "sha256": digest(text.encode("utf-8"))},
            )
        except Exception as error:  # any database error means the same here
            log.error("ACD edit refused: audit log unavailable: %s", error)
            raise EditRefused(503, "Журнал аудита недоступен: изменение не сохранено.") from None

    def _write(self, path: Path, text: str, actor: Actor | None, action: str) -> None:
        """Keep the version in force, write the new one atomically, keep it too."""
        data = text.encode("utf-8")
        kind = _version_key(path, self.groups_file, self.operators_file)
        previous = self._in_force.get(path)
        if previous is None and actor is not None:
            with contextlib.suppress(OSError):
                previous = path.read_bytes()
        if previous is not None:  # the version in force (a hand edit overwrote it on disk)
            self.versions.record(kind, previous, "in force before", "before an edit")
        if actor is not None:
            write_atomically(path, data)
        author = actor.user_id if actor is not None else self.author(path)
        self.versions.record(kind, data, author, action)
        self._applied[path], self._in_force[path] = digest(data), data
        self._mark_good(path)
        log.info(
            "ACD file %s: %s accepted",
            path.name,
            action,
            extra={"user": author, "role": actor.role if actor else "file", "action": action},
        )

    # --- hand edits -------------------------------------------------------------------------

    def start(self) -> None:
        if self._poll is None:
            self._poll = Periodic(self.check, self.interval, name="acd-file-watcher", log=log)
        self._poll.start()

    async def close(self) -> None:
        if self._poll is not None:
            await self._poll.close()

    async def check(self) -> list[str]:
        """Look once at the files; apply the ones changed by hand. Returns the files applied."""
        applied: list[str] = []
        async with self._lock:
            for path, load in (
                (self.groups_file, self._reload_groups),
                (self.operators_file, self._reload_operators),
            ):
                if await self._reload(path, load):
                    applied.append(str(path))
            for path in self._schedule_files():
                if await self._reload(path, self._reload_hours):
                    applied.append(str(path))
        return applied

    async def _reload(self, path: Path, load: Callable[[Path, str], Any]) -> bool:
        try:
            data = path.read_bytes()  # noqa: ASYNC240 - a few kilobytes, as the menu watcher
        except OSError:
            return False
        if self._applied.get(path) == digest(data):
            return False
        try:
            await load(path, data.decode("utf-8"))
        except UnicodeDecodeError:
            self._refuse(path, f"{path}:1: not UTF-8 text")
            return False
        except EditRefused as refused:
            self._refuse(path, refused.detail or f"{refused.where}: {refused.message}")
            return False
        return True

    async def _reload_groups(self, path: Path, text: str) -> None:
        groups = self._parse(lambda doc: parse_groups(doc), path, text, None, "Группа")
        await self._commit_groups(groups, text, None, "file", "hand edit", "")

    async def _reload_operators(self, path: Path, text: str) -> None:
        known = set(self.groups)
        operators = self._parse(
            lambda doc: parse_operators(doc, known), path, text, None, "Оператор"
        )
        await self._commit_operators(operators, text, None, "file", "hand edit", "")

    async def _reload_hours(self, path: Path, text: str) -> None:
        hours = self._hours_for(self.groups, path)  # also re-reads calendar.yaml
        self._write(path, text, None, "hand edit")
        self.service.hours.update(hours)

    def _refuse(self, path: Path, problem: str) -> None:
        if self.broken.get(str(path)) == problem:
            return  # logged once per distinct problem, not every look
        self.broken[str(path)] = problem
        CONFIG_REJECTED.labels(path.name).inc()
        CONFIG_BROKEN.labels(path.name).set(1)
        log.error("ACD file refused, the last good version stays in force: %s", problem)

    def _mark_good(self, path: Path) -> None:
        if self.broken.pop(str(path), None) is not None:
            CONFIG_BROKEN.labels(path.name).set(0)

    def health(self) -> str:
        """For /healthz: "ok", or "stale" while a refused hand edit waits on disk."""
        return "stale" if self.broken else "ok"


# --- YAML text surgery: one entry replaced, the rest of the file kept as written -----------


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise EditRefused(500, f"Файл {path.name} не читается.", f"{path}:1", str(error)) from None


def _entries(path: Path, text: str, top: str) -> tuple[dict[str, _Entry], int]:
    """Entries of the block mapping under `top`, and the line after the last one."""
    try:
        root = Doc(path, text).root
    except FileError as error:
        raise _refusal(error, path, None, "Файл") from None
    body = None
    if isinstance(root, MappingNode):
        for key, value in root.value:
            if isinstance(key, ScalarNode) and key.value == top:
                body = value
    if not isinstance(body, MappingNode) or body.flow_style or not body.value:
        raise EditRefused(
            422, f"Файл {path.name}: раздел «{top}» должен быть непустым блоком.", f"{path}:1"
        )
    entries: dict[str, _Entry] = {}
    for key, value in body.value:
        end = _last_mark(value)
        last = end.line - 1 if end.column == 0 and end.line > key.start_mark.line else end.line
        entries[str(key.value)] = _Entry(key.start_mark.line, last, key.start_mark.column)
    return entries, max(e.last for e in entries.values()) + 1


def _last_mark(node: Node) -> Any:
    if isinstance(node, MappingNode | SequenceNode) and not node.flow_style and node.value:
        last = node.value[-1]
        return _last_mark(last[1] if isinstance(node, MappingNode) else last)
    return node.end_mark


def _with_entry(
    path: Path, text: str, top: str, entry_id: str, body: Mapping[str, Any]
) -> tuple[str, tuple[int, list[str]]]:
    """The file with `entry_id` replaced (or added at the end), and (first line, field names
    by line) of the block written, to tell which field an error is in."""
    entries, end = _entries(path, text, top)
    lines = text.splitlines(keepends=True)
    if lines and not lines[-1].endswith("\n"):
        lines[-1] += "\n"
    indent = next(iter(entries.values())).indent
    pad = " " * indent
    block = [f"{pad}{_scalar(entry_id)}:\n"]
    names = ["id"]
    for key, value in body.items():
        block.append(f"{pad}  {_scalar(str(key))}: {_flow(value)}\n")
        names.append(str(key))
    found = entries.get(entry_id)
    first, stop = (found.first, found.last + 1) if found else (end, end)
    new = lines[:first] + block + lines[stop:]
    return "".join(new), (first, names)


def _without_entry(path: Path, text: str, top: str, entry_id: str) -> str:
    entries, _ = _entries(path, text, top)
    found = entries[entry_id]
    lines = text.splitlines(keepends=True)
    return "".join(lines[: found.first] + lines[found.last + 1 :])


def _scalar(text: str) -> str:
    """A YAML scalar that reads back as exactly this text, plain when that is safe."""
    if _PLAIN.match(text) and yaml.safe_load(text) == text:
        return text
    out = []
    for ch in text:
        if ch in '"\\':
            out.append("\\" + ch)
        elif ch.isprintable() and ch not in "\u2028\u2029\x85":
            out.append(ch)
        elif ord(ch) <= 0xFFFF:
            out.append(f"\\u{ord(ch):04x}")
        else:
            out.append(f"\\U{ord(ch):08x}")
    return '"' + "".join(out) + '"'


def _flow(value: Any) -> str:
    """A JSON value as YAML flow text; the file's validator then judges it like any file."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return repr(value) if value == value and abs(value) != float("inf") else _scalar(str(value))
    if isinstance(value, str):
        return _scalar(value)
    if isinstance(value, list):
        return "[" + ", ".join(_flow(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{_scalar(str(k))}: {_flow(v)}" for k, v in value.items()) + "}"
    return _scalar(str(value))


def _check_depth(value: Any, depth: int = 0) -> None:
    if depth > _MAX_DEPTH:
        raise EditRefused(400, "Слишком глубокая вложенность в запросе.", "body")
    if isinstance(value, Mapping):
        for item in value.values():
            _check_depth(item, depth + 1)
    elif isinstance(value, list):
        for item in value:
            _check_depth(item, depth + 1)


_LINE = re.compile(r"^(?P<file>.*?):(?P<line>\d+): (?P<message>.*)$", re.S)


def _refusal(
    error: FileError, path: Path, block: tuple[int, list[str]] | None, what: str
) -> EditRefused:
    """The validator's file:line error, pointed at the request's field when it is in the
    entry the request wrote."""
    found = _LINE.match(str(error))
    line = int(found["line"]) - 1 if found else -1
    message = found["message"] if found else str(error)
    where = f"{path}:{line + 1}"
    if block is not None and 0 <= line - block[0] < len(block[1]):
        where = block[1][line - block[0]]
    missing = re.match(r"missing field\(s\): (.*)", message)
    if missing and block is not None and where != f"{path}:{line + 1}":
        where = missing[1]
    return EditRefused(422, f"{what}: ошибка в «{where}»: {message}", where, str(error))


def _render_hours(path: Path, body: Mapping[str, Any], current: Mapping[str, Any]) -> str:
    """An hours file from the request: the old file's opening comments, then the values."""
    header: list[str] = []
    with contextlib.suppress(OSError, UnicodeDecodeError):
        for line in path.read_text(encoding="utf-8").splitlines(keepends=True):
            if not line.startswith("#"):
                break
            header.append(line)
    lines = list(header)
    for key in ("timezone", "surge_file"):
        value = body.get(key, current.get(key))
        if value is not None:
            lines.append(f"{key}: {_flow(value)}\n")
    for key in body:
        if key not in ("timezone", "surge_file", "hours"):
            lines.append(f"{_scalar(str(key))}: {_flow(body[key])}\n")
    hours = body.get("hours")
    if isinstance(hours, Mapping):
        lines.append("hours:\n")
        lines.extend(f"  {_scalar(str(k))}: {_flow(v)}\n" for k, v in hours.items())
    else:
        lines.append(f"hours: {_flow(hours)}\n")
    return "".join(lines)


def _hours_field(text: str, line: int) -> str | None:
    """The request field written on a line of a rendered hours file."""
    lines = text.splitlines()
    if not 1 <= line <= len(lines):
        return None
    written = lines[line - 1]
    key = written.strip().split(":", 1)[0].strip('"')
    if written.startswith("  "):
        return f"hours.{key}"
    return key if not written.startswith("#") else None


def _scalars_under(node: Node | None, key_name: str) -> Iterator[ScalarNode]:
    if isinstance(node, MappingNode):
        for key, value in node.value:
            if (
                isinstance(key, ScalarNode)
                and key.value == key_name
                and isinstance(value, ScalarNode)
            ):
                yield value
            yield from _scalars_under(value, key_name)
    elif isinstance(node, SequenceNode):
        for item in node.value:
            yield from _scalars_under(item, key_name)


def _version_key(path: Path, groups_file: Path, operators_file: Path) -> str:
    if path == groups_file:
        return "groups"
    if path == operators_file:
        return "operators"
    return f"schedule-{path.stem}"
