"""The core's settings and the loader every settings file goes through.

The core owns its own sections (`[agi]`, `[ami]`, `[http]`, `[store]`, `[log]`) and the generic
machinery: a TOML file, then `HOTLINE_*` environment variables on top, then validation.  It
does not know the whole configuration: whoever assembles it (the composition root) passes the
top-level settings class and its table name -> section dataclass mapping to `read_settings`.

The file is optional; every key has a default (see `hotline.example.toml`, which lists them all).
An environment variable `HOTLINE_<SECTION>_<KEY>` (e.g. `HOTLINE_AGI_PORT=4600`) or, for the
top-level keys, `HOTLINE_<KEY>` (e.g. `HOTLINE_NODE_NAME`) overrides the file, so a container or a
systemd unit can change one value without editing it.  `HOTLINE_CONFIG` names the file.

Mistakes fail at start-up with `ConfigError`, one plain sentence naming the file (or the
variable) and the key: a typo in a key silently falling back to a default is how a hotline ends
up listening on the wrong port at 3 a.m.  A field's check is a function in its metadata
(`{"check": ...}`) that returns what is wrong with a value of the right type, or None.
"""

from __future__ import annotations

import contextlib
import dataclasses
import ipaddress
import math
import os
import tomllib
import typing
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from ipaddress import IPv4Network, IPv6Network, ip_network
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, TypeVar

if TYPE_CHECKING:
    from _typeshed import DataclassInstance

ENV_PREFIX = "HOTLINE_"
ENV_CONFIG_FILE = "HOTLINE_CONFIG"

# The whole settings class the composition root assembles (a dataclass).
S = TypeVar("S", bound="DataclassInstance")

# A check takes a value already of the right type and returns what is wrong with it, or None.
Check = Callable[[Any], str | None]


class ConfigError(Exception):
    """The configuration cannot be used; the message says where and why, in one sentence."""


def _between(low: float, high: float) -> Check:
    def check(value: Any) -> str | None:
        return None if low <= value <= high else f"must be between {low} and {high}, got {value}"

    return check


def _positive(value: Any) -> str | None:
    return None if value > 0 else f"must be greater than 0, got {value}"


def not_empty(value: Any) -> str | None:
    """A check for text settings that must say something (a name, a URL)."""
    return None if value.strip() else "must not be empty"


def _networks(value: Any) -> str | None:
    """A check for a comma-separated list of IP addresses and networks (``10.0.0.0/24``)."""
    try:
        parse_networks(value)
    except ValueError as exc:
        return f"must list IP addresses or networks separated by commas ({exc})"
    return None


def parse_networks(text: str) -> tuple[IPv4Network | IPv6Network, ...]:
    """``"127.0.0.0/8, ::1"`` as networks; a bare address is a network of one. An empty list
    is refused: a server nobody may reach is a mistake, not a setting."""
    return tuple(ip_network(part.strip(), strict=False) for part in text.split(","))


def _checked(default: Any, check: Check) -> Any:
    """A dataclass field whose value `read_settings` validates with `check`."""
    return field(default=default, metadata={"check": check})


# Listening sockets accept port 0 (the OS picks a free one: handy for tests and the simulator);
# the AMI port is one we connect to, so it must be a real one.
_LISTEN_PORT = _between(0, 65535)
_CONNECT_PORT = _between(1, 65535)


@dataclass(frozen=True)
class AgiSettings:
    """The FastAGI server Asterisk connects to, one TCP connection per call."""

    host: str = "127.0.0.1"
    port: int = _checked(4573, _LISTEN_PORT)
    max_line_bytes: int = _checked(8192, _positive)  # longer lines are a protocol error
    env_timeout: float = _checked(5.0, _positive)  # to receive the whole AGI environment
    reply_timeout: float = _checked(300.0, _positive)  # per command; RECORD FILE runs long
    max_sessions: int = _checked(10000, _positive)  # calls beyond this are refused
    drain_timeout: float = _checked(30.0, _positive)  # SIGTERM grace for calls with an operator
    # Who may open FastAGI sessions: the PBXs' addresses or networks, comma-separated.
    allowed_peers: str = _checked("127.0.0.0/8, ::1", _networks)
    # Sessions one peer address may hold at once, so one client cannot take every slot.
    max_sessions_per_peer: int = _checked(5000, _positive)


@dataclass(frozen=True)
class AmiSettings:
    """The Asterisk Manager Interface link (optional: the AGI side works without it)."""

    enabled: bool = False
    host: str = "127.0.0.1"
    port: int = _checked(5038, _CONNECT_PORT)
    username: str = "hotline"
    # Kept out of repr (hence out of log lines) and out of error messages.
    secret: str = field(default="", repr=False, metadata={"secret": True})
    action_timeout: float = _checked(10.0, _positive)
    ping_interval: float = _checked(10.0, _positive)
    reconnect_min: float = _checked(0.5, _positive)  # first back-off delay after a lost link
    reconnect_max: float = _checked(30.0, _positive)  # back-off ceiling
    # "challenge": Asterisk's MD5 challenge, the secret never crosses the wire. "plain" sends
    # it in clear: only over TLS or a trusted network, and only if Asterisk refuses MD5.
    login: Literal["challenge", "plain"] = "challenge"
    # AMI over TLS (manager.conf tlsenable, port 5039 by default: set `port` too). The
    # certificate is checked against tls_ca_file (empty: the system's CAs) and, unless
    # tls_check_hostname is off, against tls_server_name (empty: `host`).
    tls: bool = False
    tls_ca_file: str = ""
    tls_check_hostname: bool = True
    tls_server_name: str = ""


@dataclass(frozen=True)
class HttpSettings:
    """The controller's HTTP server (`/healthz`, `/metrics`, the parts' pages and APIs).

    With a certificate and key it serves HTTPS only. Without, it serves plain HTTP and only on
    a loopback address, unless `allow_plain_http` says a TLS proxy in front encrypts instead.
    """

    host: str = "127.0.0.1"
    port: int = _checked(8080, _LISTEN_PORT)
    # PEM files; the key must be readable by the controller's user alone (checked at start).
    tls_cert_file: str = ""
    tls_key_file: str = ""
    # Plain HTTP on a non-loopback address: only behind a TLS-terminating proxy.
    allow_plain_http: bool = False

    # Seconds a client has to send a complete request head; also how long an idle
    # keep-alive connection stays open (see hotline.web): longer than Prometheus's 15 s
    # scrape interval, so a scrape never races the close of its idle connection.
    header_timeout: float = _checked(20.0, _positive)
    max_connections: int = _checked(2048, _positive)  # beyond this: 503 and closed
    # Connections one address may hold; behind a reverse proxy or NAT every client shares one.
    max_connections_per_peer: int = _checked(512, _positive)

    def __post_init__(self) -> None:
        if bool(self.tls_cert_file) != bool(self.tls_key_file):
            raise ValueError("tls_cert_file and tls_key_file must be set together")
        if not self.tls and not self.allow_plain_http and not is_loopback(self.host):
            raise ValueError(
                f"host {self.host!r} is reachable from other machines, but no certificate is "
                "set: set tls_cert_file and tls_key_file, bind to 127.0.0.1, or (behind a TLS "
                "proxy only) set allow_plain_http = true"
            )

    @property
    def tls(self) -> bool:
        """Whether the server speaks HTTPS."""
        return bool(self.tls_cert_file)

    @property
    def scheme(self) -> str:
        return "https" if self.tls else "http"


@dataclass(frozen=True)
class StoreSettings:
    """Persistence (SQLAlchemy URL) and where the shared per-call state lives."""

    # `read_settings` makes a relative SQLite path absolute against the current directory, so
    # the database does not move if the process changes directory later.
    database_url: str = _checked("sqlite+aiosqlite:///var/hotline.sqlite3", not_empty)
    state_backend: Literal["memory", "redis"] = "memory"
    redis_url: str = "redis://127.0.0.1:6379/0"


@dataclass(frozen=True)
class AuditSettings:
    """The audit chain's key and its anchors (`hotline.audit`, `hotline.audit_anchors`).

    The key file `<keys_dir>/<key_id>.vN.key` keys the chain (`hotline keys rotate --kind
    audit` creates it); keep the directory out of the database's backups. With
    `anchor_bucket` set, the controller exports the chain's head every
    `anchor_interval_minutes` to that S3 bucket (object lock, compliance mode, kept
    `anchor_retention_days`) and verifies the chain every `verify_interval_minutes`;
    credentials come from `HOTLINE_ANCHOR_S3_ACCESS_KEY` / `HOTLINE_ANCHOR_S3_SECRET_KEY`
    (a key that may put objects, never delete them or change their retention).
    """

    keys_dir: Path = Path("var/keys")
    key_id: str = "audit"
    # keys older than this are reported as expiring (`hotline_key_expiry_seconds`): rotate them
    key_max_age_days: int = _checked(365, _positive)
    anchor_bucket: str = ""  # empty: no export (verify then relies on --anchor)
    anchor_endpoint: str = ""  # e.g. http://127.0.0.1:8333; empty = AWS default
    anchor_region: str = "us-east-1"
    anchor_prefix: str = "audit-anchors/"
    anchor_retention_days: int = _checked(1830, _positive)
    anchor_interval_minutes: float = _checked(5.0, _positive)
    verify_interval_minutes: float = _checked(60.0, _positive)
    # how many of the newest anchors `verify` compares with the chain
    anchor_check_count: int = _checked(100, _positive)


@dataclass(frozen=True)
class LogSettings:
    """Log level and line format (see `hotline.logs`)."""

    level: Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"] = "INFO"
    format: Literal["json", "text"] = "json"


def is_loopback(host: str) -> bool:
    """127.0.0.0/8, ::1 or ``localhost``; an empty host or 0.0.0.0 is every interface."""
    if host.strip().lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip().strip("[]")).is_loopback
    except ValueError:
        return False  # a host name may resolve to anything: treat it as reachable


_TRUE = frozenset({"true", "1", "yes", "on"})
_FALSE = frozenset({"false", "0", "no", "off"})


@dataclass(frozen=True)
class _Raw:
    """A value not yet validated, with where it came from, for messages.

    `source` is the file or the variable; `origin` adds the key, e.g. "x.toml: [agi] port".
    """

    value: Any
    source: str
    origin: str
    from_env: bool


@dataclass(frozen=True)
class _Layout:
    """What the loader fills: the whole settings class, its sections and its top-level keys."""

    settings_class: type
    sections: Mapping[str, type]
    top_level_keys: tuple[str, ...]


def read_settings(
    settings_class: type[S],
    sections: Mapping[str, type],
    path: Path | None = None,
    environ: Mapping[str, str] | None = None,
) -> S:
    """Fill `settings_class` from the file (`path`, else `$HOTLINE_CONFIG`, else none) and the
    environment.

    `settings_class` is a dataclass with one field per name in `sections` (table name -> the
    dataclass it fills) and its own top-level keys (every other field).  The core's sections
    (`agi`, `ami`, `store`, ...) get the core's own checks; the parts' sections bring theirs.

    Environment values are strings and are converted: whole numbers, numbers, and booleans
    from true/false, 1/0, yes/no (or on/off), case-insensitively.
    Raises `ConfigError` on any problem: unreadable file, TOML syntax (the message carries the
    line), unknown section or key, wrong type, value out of range, unknown choice.
    """
    top_level = tuple(f.name for f in dataclasses.fields(settings_class) if f.name not in sections)
    layout = _Layout(settings_class, sections, top_level)
    env = os.environ if environ is None else environ
    if path is None and env.get(ENV_CONFIG_FILE):
        path = Path(env[ENV_CONFIG_FILE])
    raw: dict[str | None, dict[str, _Raw]] = {None: {}, **{name: {} for name in sections}}
    if path is not None:
        _merge(raw, _read_file(path, layout))
    _merge(raw, _read_env(env, layout))
    settings: S = settings_class(**_build(raw, layout))
    return settings


def _merge(into: dict[str | None, dict[str, _Raw]], new: dict[str | None, dict[str, _Raw]]) -> None:
    for section, values in new.items():
        into[section].update(values)


def _read_file(path: Path, layout: _Layout) -> dict[str | None, dict[str, _Raw]]:
    try:
        with path.open("rb") as handle:
            document = tomllib.load(handle)
    except FileNotFoundError:
        raise ConfigError(f"Configuration file {path} does not exist.") from None
    except OSError as exc:
        raise ConfigError(f"Configuration file {path} cannot be read: {exc.strerror}.") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        # tomllib's message ends with "(at line N, column M)".
        raise ConfigError(f"Configuration file {path} is not valid TOML: {exc}.") from None
    return _split_document(document, path, layout)


def _split_document(
    document: dict[str, Any], path: Path, layout: _Layout
) -> dict[str | None, dict[str, _Raw]]:
    out: dict[str | None, dict[str, _Raw]] = {None: {}}
    for key, value in document.items():
        if key in layout.sections:
            if not isinstance(value, dict):
                raise ConfigError(f"{path}: [{key}] must be a table, not a single value.")
            out[key] = {
                k: _Raw(v, str(path), f"{path}: [{key}] {k}", False) for k, v in value.items()
            }
        elif key in layout.top_level_keys:
            out[None][key] = _Raw(value, str(path), f"{path}: {key}", False)
        elif isinstance(value, dict):
            known = ", ".join(f"[{name}]" for name in layout.sections)
            raise ConfigError(f"{path}: unknown section [{key}] (known: {known}).")
        else:
            raise ConfigError(f"{path}: unknown top-level key {key!r}.")
    return out


def _read_env(env: Mapping[str, str], layout: _Layout) -> dict[str | None, dict[str, _Raw]]:
    """Pick the `HOTLINE_*` variables that name a setting.

    A variable under a known section with an unknown key (`HOTLINE_AGI_PROT`) is an error, like
    in the file.  Other `HOTLINE_*` variables are left alone: tools and tests around the
    controller use that prefix too.
    """
    out: dict[str | None, dict[str, _Raw]] = {}
    for name, value in env.items():
        if not name.startswith(ENV_PREFIX) or name == ENV_CONFIG_FILE:
            continue
        rest = name[len(ENV_PREFIX) :].lower()
        where: str | None = None
        if rest in layout.top_level_keys:
            where, key = None, rest
        else:
            found = _env_section(rest, layout.sections)
            if found is None:
                continue
            where, key = found
        source = f"Environment variable {name}"
        out.setdefault(where, {})[key] = _Raw(value, source, source, True)
    return out


def _env_section(rest: str, sections: Mapping[str, type]) -> tuple[str, str] | None:
    """Split `recorder_access_tokens_file` into section and key. Section names may contain an
    underscore themselves, so the longest section that fits wins."""
    for section in sorted(sections, key=len, reverse=True):
        if rest.startswith(section + "_") and len(rest) > len(section) + 1:
            return section, rest[len(section) + 1 :]
    return None


def _build(raw: dict[str | None, dict[str, _Raw]], layout: _Layout) -> dict[str, Any]:
    """The keyword arguments of the settings class: every section built, then the top level."""
    sections = {name: _build_section(cls, raw[name], name) for name, cls in layout.sections.items()}
    top = _validate_values(layout.settings_class, raw[None], None, skip=set(layout.sections))
    _check_core_sections(sections, raw)
    return sections | top


def _build_section(cls: type, values: dict[str, _Raw], section: str) -> Any:
    try:
        return cls(**_validate_values(cls, values, section))
    except ValueError as error:  # a section's own check of itself (__post_init__)
        raise ConfigError(f"[{section}]: {error}.") from None


def _validate_values(
    cls: type, values: dict[str, _Raw], section: str | None, skip: set[str] | None = None
) -> dict[str, Any]:
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls) if f.name not in (skip or set())}
    out: dict[str, Any] = {}
    for key, raw in values.items():
        if key not in fields:
            where = f"section [{section}]" if section else "the top level"
            raise ConfigError(f"{raw.source}: unknown key {key!r} in {where}.")
        try:
            value = _coerce(raw, hints[key])
        except ConfigError:
            if fields[key].metadata.get("secret"):
                raise ConfigError(f"{raw.origin} must be a string.") from None
            raise
        check: Check | None = fields[key].metadata.get("check")
        problem = check(value) if check else None
        if problem:
            raise ConfigError(f"{raw.origin} {problem}.")
        out[key] = value
    return out


def _coerce(raw: _Raw, hint: Any) -> Any:
    """Return `raw.value` as type `hint`; environment strings are converted, file values checked."""
    if typing.get_origin(hint) is Literal:
        return _coerce_choice(raw, typing.get_args(hint))
    if hint is bool:
        return _coerce_bool(raw)
    if hint is int:
        return _coerce_number(raw, int, "a whole number")
    if hint is float:
        return _coerce_number(raw, float, "a number")
    if typing.get_origin(hint) is dict:
        return _coerce_table(raw, typing.get_args(hint)[1])
    if not isinstance(raw.value, str):
        raise ConfigError(f"{raw.origin} must be a string, got {raw.value!r}.")
    if hint is Path:
        return Path(raw.value)
    return raw.value


def _coerce_table(raw: _Raw, value_hint: Any) -> dict[str, Any]:
    """A TOML table of name = value; only a file can give one."""
    if not isinstance(raw.value, dict):
        raise ConfigError(f"{raw.origin} must be a table in the configuration file.")
    return {
        str(key): _coerce(_Raw(value, raw.source, f"{raw.origin}.{key}", False), value_hint)
        for key, value in raw.value.items()
    }


def _coerce_choice(raw: _Raw, choices: tuple[str, ...]) -> str:
    value = raw.value
    if isinstance(value, str):
        # Log levels are upper case, everything else lower: accept either spelling.
        for choice in choices:
            if value.strip().lower() == choice.lower():
                return choice
    allowed = ", ".join(repr(c) for c in choices)
    raise ConfigError(f"{raw.origin} must be one of {allowed}, got {value!r}.")


def _coerce_bool(raw: _Raw) -> bool:
    value = raw.value
    if raw.from_env and isinstance(value, str):
        if value.strip().lower() in _TRUE:
            return True
        if value.strip().lower() in _FALSE:
            return False
    elif isinstance(value, bool):
        return value
    raise ConfigError(f"{raw.origin} must be true or false, got {value!r}.")


def _coerce_number(raw: _Raw, kind: type[int] | type[float], what: str) -> int | float:
    value = raw.value
    if raw.from_env and isinstance(value, str):
        with contextlib.suppress(ValueError):
            value = kind(value.strip())
    # bool is an int subclass in Python, but `port = true` is a mistake, not 1.
    if isinstance(value, int) and not isinstance(value, bool):
        return kind(value)
    # inf and nan parse (in TOML too) but make no sense as a timeout or a count.
    if isinstance(value, float) and kind is float and math.isfinite(value):
        return value
    raise ConfigError(f"{raw.origin} must be {what}, got {raw.value!r}.")


def _check_core_sections(sections: dict[str, Any], raw: dict[str | None, dict[str, _Raw]]) -> None:
    """The core's checks across keys of one section, and its one rewrite (the database URL)."""
    ami = sections.get("ami")
    if isinstance(ami, AmiSettings) and ami.reconnect_min > ami.reconnect_max:
        given = raw["ami"].get("reconnect_min") or raw["ami"].get("reconnect_max")
        source = given.source if given else "Settings"
        raise ConfigError(
            f"{source}: [ami] reconnect_min ({ami.reconnect_min}) must not exceed "
            f"[ami] reconnect_max ({ami.reconnect_max})."
        )
    store = sections.get("store")
    if isinstance(store, StoreSettings):
        database_url = resolve_database_url(store.database_url)
        sections["store"] = dataclasses.replace(store, database_url=database_url)


def resolve_database_url(url: str, cwd: Path | None = None) -> str:
    """Make a relative SQLite file path absolute (against `cwd`, default the current directory).

    `sqlite+aiosqlite:///var/x.sqlite3` (three slashes) is relative; four slashes is absolute.
    Other databases and in-memory SQLite are returned unchanged.
    """
    scheme, sep, rest = url.partition(":///")
    if not sep or not scheme.startswith("sqlite"):
        return url
    file_part, query_sep, query = rest.partition("?")
    if not file_part or file_part == ":memory:" or file_part.startswith("/"):
        return url
    absolute = (cwd or Path.cwd()) / file_part
    return f"{scheme}:///{absolute}{query_sep}{query}"
