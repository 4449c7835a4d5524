"""Editing the ACD's groups, operators and group schedules while it runs.

Two ways in, one path through: the admin API (`routing.admin.http`) and hand edits of the
files (`AcdAdmin.check`, polled like the menus' live reload, `ivr.menu.watch`). Either way the
would-be file is checked by the very validator that reads it at start-up
(`routing.groups.parse_groups`, `routing.operators.parse_operators`,
`hotline.hours.validate_hours_file`), then checked against what is running (a group with
callers waiting, or named by a menu, an operator's skill or another group, cannot go; an
operator who is logged in cannot go), then written atomically (temporary file, fsync, rename)
and applied to the running ACD: waiting callers keep their place, calls in progress go on, an
operator ringing or talking keeps that call and new skills count from the next offer.

API edits rewrite only the entry they change: the other entries keep their text and comments.
Every accepted version of a file (and the one it replaced) is kept as the menus' versions are
(`hotline.versions.VersionStore`: ``<versions_dir>/groups/<UTC time>-<sha8>.yaml``).

A hand edit that fails is refused and the last good version stays in force
(`routing.admin.reload`); /healthz shows ``acd_files: stale`` until a good file arrives. API
edits are serialised (one at a time, last writer wins); a hand edit not yet picked up is part
of the file an API edit starts from, so it is checked too. The text surgery of the files is
`routing.admin.yaml_edit`; refusals are `routing.admin.errors.EditRefused`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hotline.versions import VersionStore, digest, file_author
from hotline.yamldoc import write_atomically
from routing.admin.errors import EditRefused, EntryBlock, parse_or_refuse
from routing.admin.reload import HandEditWatcher, mark_good
from routing.admin.yaml_edit import (
    check_depth,
    check_hours,
    hours_data,
    menus_naming,
    read_text,
    render_hours,
    with_entry,
    without_entry,
)
from routing.groups import SCHEDULE_NAME, Group, parse_groups
from routing.operators import OperatorSpec, OperatorState, is_seat_device, parse_operators
from routing.settings import locate

if TYPE_CHECKING:
    from hotline.audit import AuditLog
    from hotline.auth import Actor
    from hotline.hours import OpenHours
    from routing.part import AcdService

__all__ = ["AcdAdmin"]

log = logging.getLogger("hotline.routing.admin")


@dataclass
class AcdAdmin:
    """The edit path for one running `AcdService` (see the module docstring)."""

    service: AcdService
    groups_file: Path
    operators_file: Path
    schedules_dir: Path
    versions: VersionStore
    # The menu files, which may name groups (a group a menu names cannot go); the
    # composition root knows which files are menus.
    menu_files: Callable[[], Iterable[Path]] = tuple
    audit: AuditLog | None = None  # accepted API edits are appended here (who, what)
    interval: float = 2.0
    author: Callable[[Path], str] = file_author
    broken: dict[str, str] = field(default_factory=dict)  # file -> first problem
    applied: dict[Path, str] = field(default_factory=dict)  # file -> SHA-256 in force
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)  # one edit at a time
    _in_force: dict[Path, bytes] = field(default_factory=dict)  # file -> bytes in force
    _watcher: HandEditWatcher = field(init=False, repr=False)

    @classmethod
    def for_service(
        cls,
        service: AcdService,
        *,
        versions_dir: Path,
        menu_files: Callable[[], Iterable[Path]],
        audit: AuditLog | None,
    ) -> AcdAdmin:
        """The admin of a service built from its settings (`AcdService.build`)."""
        settings = service.settings
        return cls(
            service,
            groups_file=locate(settings.groups_file),
            operators_file=locate(settings.operators_file),
            schedules_dir=locate(settings.schedules_dir),
            versions=VersionStore(versions_dir),
            menu_files=menu_files,
            audit=audit,
            interval=settings.reload_interval,
        )

    def __post_init__(self) -> None:
        for path in (self.groups_file, self.operators_file, *self.schedule_files()):
            with contextlib.suppress(OSError):
                self._in_force[path] = path.read_bytes()
                self.applied[path] = digest(self._in_force[path])
        self._watcher = HandEditWatcher(self, self.interval)

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
            "message_deadline_minutes": group.message_deadline_minutes,
            "skilled": dict(sorted(members.items())),
            "waiting": self.service.node.acd.waiting(group.id),
        }

    def schedule(self, name: str) -> dict[str, Any]:
        path = self._schedule_path(name)
        if not path.is_file():
            raise EditRefused(404, f"Расписание «{name}» не найдено.", "name")
        data = hours_data(path)
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
        check_depth(body)
        async with self.lock:
            text = read_text(self.groups_file)
            new_text, block = with_entry(self.groups_file, text, "groups", group_id, body)
            groups = self._parsed_groups(new_text, block)
            created = group_id not in self.groups
            await self._commit_groups(groups, new_text, actor, source, "group.put", group_id)
        log.info("ACD group %s %s", group_id, "created" if created else "replaced")
        return groups[group_id]

    async def delete_group(self, group_id: str, actor: Actor, source: str) -> None:
        async with self.lock:
            if group_id not in self.groups:
                raise EditRefused(404, f"Группа «{group_id}» не найдена.", "id")
            text = read_text(self.groups_file)
            new_text = without_entry(self.groups_file, text, "groups", group_id)
            self._refuse_group_in_use(group_id)
            groups = self._parsed_groups(new_text, None)
            await self._commit_groups(groups, new_text, actor, source, "group.delete", group_id)

    def _parsed_groups(self, text: str, block: EntryBlock | None) -> dict[str, Group]:
        """The groups of `text` (the groups file as edited), or the edit refused at `block`."""
        return parse_or_refuse(
            lambda doc: parse_groups(doc), self.groups_file, text, block, "Группа"
        )

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
        for place in menus_naming(self.menu_files(), group_id):
            raise EditRefused(409, f"Группу «{group_id}» использует голосовое меню.", place)

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
        for listener in self.service.groups_changed:
            listener(groups)

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
            for place in menus_naming(self.menu_files(), gone):
                raise EditRefused(409, f"Группу «{gone}» использует голосовое меню.", place)

    def _hours_for(self, groups: Mapping[str, Group], path: Path) -> dict[str, OpenHours]:
        from hotline.yamldoc import YamlFileError
        from routing.group_hours import load_group_hours

        try:
            return load_group_hours(groups, self.schedules_dir)
        except YamlFileError as error:
            raise EditRefused(
                422, "Расписание группы содержит ошибки.", str(error.problems[0])
            ) from None

    # --- operators --------------------------------------------------------------------------

    async def put_operator(
        self, op_id: str, body: Mapping[str, Any], actor: Actor, source: str
    ) -> OperatorSpec:
        check_depth(body)
        _check_device(body.get("device"))
        async with self.lock:
            return await self._put_operator(op_id, body, actor, source, "operator.put")

    async def put_skills(
        self, op_id: str, skills: Mapping[str, Any], actor: Actor, source: str
    ) -> OperatorSpec:
        check_depth(skills)
        async with self.lock:
            spec = self.operators.get(op_id)
            if spec is None:
                raise EditRefused(404, f"Оператор «{op_id}» не найден.", "id")
            body = {"name": spec.name, "device": spec.device, "skills": dict(skills)}
            return await self._put_operator(op_id, body, actor, source, "operator.skills")

    async def _put_operator(
        self, op_id: str, body: Mapping[str, Any], actor: Actor, source: str, action: str
    ) -> OperatorSpec:
        text = read_text(self.operators_file)
        new_text, block = with_entry(self.operators_file, text, "operators", op_id, body)
        operators = self._parsed_operators(new_text, block)
        await self._commit_operators(operators, new_text, actor, source, action, op_id)
        return operators[op_id]

    async def delete_operator(self, op_id: str, actor: Actor, source: str) -> None:
        async with self.lock:
            if op_id not in self.operators:
                raise EditRefused(404, f"Оператор «{op_id}» не найден.", "id")
            text = read_text(self.operators_file)
            new_text = without_entry(self.operators_file, text, "operators", op_id)
            operators = self._parsed_operators(new_text, None)
            await self._commit_operators(
                operators, new_text, actor, source, "operator.delete", op_id
            )

    def _parsed_operators(self, text: str, block: EntryBlock | None) -> dict[str, OperatorSpec]:
        """The operators of `text` (the operators file as edited), each skill a known group,
        or the edit refused at `block`."""
        known = set(self.groups)
        return parse_or_refuse(
            lambda doc: parse_operators(doc, known), self.operators_file, text, block, "Оператор"
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
        for listener in self.service.operators_changed:
            listener(operators.values())

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
        check_depth(body)
        path = self._schedule_path(name)
        async with self.lock:
            current = hours_data(path) if path.is_file() else {}
            if body.get("surge_file", current.get("surge_file")) != current.get("surge_file"):
                raise EditRefused(
                    422, "Файл режима «круглосуточно» через API не меняется.", "surge_file"
                )
            text = render_hours(path, body, current)
            hours = check_hours(path, text, self.schedules_dir)
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

    def schedule_files(self) -> list[Path]:
        names = {g.schedule for g in self.groups.values()}
        found = [self.schedules_dir / f"{n}.yaml" for n in sorted(names)]
        return [*found, self.schedules_dir / "calendar.yaml"]

    # --- shared steps -----------------------------------------------------------------------

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
        self.applied[path], self._in_force[path] = digest(data), data
        mark_good(self.broken, path)
        log.info(
            "ACD file %s: %s accepted",
            path.name,
            action,
            extra={"user": author, "role": actor.role if actor else "file", "action": action},
        )

    # --- hand edits (routing.admin.reload) -------------------------------------------------

    def start(self) -> None:
        self._watcher.start()

    async def close(self) -> None:
        await self._watcher.close()

    async def check(self) -> list[str]:
        """Look once at the files; apply the ones changed by hand. Returns the files applied."""
        return await self._watcher.check()

    async def apply_groups_file(self, path: Path, text: str) -> None:
        """The groups file as edited by hand (the caller holds `lock`)."""
        groups = parse_or_refuse(lambda doc: parse_groups(doc), path, text, None, "Группа")
        await self._commit_groups(groups, text, None, "file", "hand edit", "")

    async def apply_operators_file(self, path: Path, text: str) -> None:
        """The operators file as edited by hand (the caller holds `lock`)."""
        known = set(self.groups)
        operators = parse_or_refuse(
            lambda doc: parse_operators(doc, known), path, text, None, "Оператор"
        )
        await self._commit_operators(operators, text, None, "file", "hand edit", "")

    async def apply_hours_file(self, path: Path, text: str) -> None:
        """A schedule (or the calendar) as edited by hand (the caller holds `lock`)."""
        hours = self._hours_for(self.groups, path)  # also re-reads calendar.yaml
        self._write(path, text, None, "hand edit")
        self.service.hours.update(hours)

    def health(self) -> str:
        """For /healthz: "ok", or "stale" while a refused hand edit waits on disk."""
        return "stale" if self.broken else "ok"


def _check_device(device: object) -> None:
    """A device the ACD would dial as something else than an operator's own PJSIP seat is a
    bad request (400), refused before the file is touched; other shapes (no device, not a
    text) are the file validator's to explain."""
    if isinstance(device, str) and not is_seat_device(device):
        raise EditRefused(
            400,
            "Устройство оператора: только его место PJSIP, например PJSIP/1001 (латинские "
            "буквы, цифры, «_» и «-» после PJSIP/). Другие адреса набора "
            "(Local/..., @, &, запятые, скобки) не допускаются.",
            "device",
        )


def _version_key(path: Path, groups_file: Path, operators_file: Path) -> str:
    if path == groups_file:
        return "groups"
    if path == operators_file:
        return "operators"
    return f"schedule-{path.stem}"
