"""Settings: defaults, file + environment precedence, and every kind of error."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from controller.settings import Settings, load_settings
from hotline.settings import AgiSettings, ConfigError, resolve_database_url

REPO_ROOT = Path(__file__).resolve().parent.parent


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "hotline.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_defaults_without_file_or_environment() -> None:
    settings = load_settings(environ={})
    assert settings.agi == AgiSettings()
    assert settings.agi.port == 4573
    assert settings.agi.reply_timeout == 300.0
    assert settings.ami.enabled is False
    assert settings.ami.port == 5038
    assert settings.http.port == 8080
    assert settings.store.state_backend == "memory"
    assert settings.log.level == "INFO"
    assert settings.log.format == "json"
    assert settings.node_name == socket.gethostname()
    assert settings.event_loop == "uvloop"


def test_relative_sqlite_path_resolved_against_cwd(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    url = load_settings(environ={}).store.database_url
    assert url == f"sqlite+aiosqlite:///{tmp_path}/var/hotline.sqlite3"


@pytest.mark.parametrize(
    "url",
    [
        "sqlite+aiosqlite:////abs/x.db",
        "sqlite+aiosqlite:///:memory:",
        "postgresql+asyncpg://u@h/db",
    ],
)
def test_other_database_urls_unchanged(url: str) -> None:
    assert resolve_database_url(url, Path("/cwd")) == url


def test_sqlite_query_string_kept() -> None:
    url = resolve_database_url("sqlite:///a.db?mode=ro", Path("/cwd"))
    assert url == "sqlite:////cwd/a.db?mode=ro"


def test_example_file_lists_the_defaults() -> None:
    example = load_settings(REPO_ROOT / "hotline.example.toml", environ={})
    assert example == load_settings(environ={})


def test_file_values(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        'node_name = "node-a"\n'
        'event_loop = "asyncio"\n'
        "[agi]\nport = 4600\nenv_timeout = 2\n"
        '[ami]\nenabled = true\nsecret = "s3cr3t"\n'
        '[log]\nformat = "text"\nlevel = "debug"\n',
    )
    settings = load_settings(path, environ={})
    assert settings.node_name == "node-a"
    assert settings.event_loop == "asyncio"
    assert settings.agi.port == 4600
    assert settings.agi.env_timeout == 2.0
    assert isinstance(settings.agi.env_timeout, float)
    assert settings.ami.enabled is True
    assert settings.ami.secret == "s3cr3t"
    assert settings.log.format == "text"
    assert settings.log.level == "DEBUG"


def test_environment_overrides_file(tmp_path: Path) -> None:
    path = write(tmp_path, '[agi]\nport = 4600\nhost = "0.0.0.0"\n[ami]\nsecret = "file"\n')
    env = {
        "HOTLINE_AGI_PORT": "4700",
        "HOTLINE_AMI_SECRET": "env",
        "HOTLINE_NODE_NAME": "node-b",
        "HOTLINE_AGI_MAX_LINE_BYTES": "4096",
    }
    settings = load_settings(path, environ=env)
    assert settings.agi.port == 4700
    assert settings.agi.host == "0.0.0.0"  # from the file, not overridden
    assert settings.agi.max_line_bytes == 4096
    assert settings.ami.secret == "env"
    assert settings.node_name == "node-b"


def test_hotline_config_names_the_file(tmp_path: Path) -> None:
    path = write(tmp_path, "[http]\nport = 9100\n")
    settings = load_settings(environ={"HOTLINE_CONFIG": str(path)})
    assert settings.http.port == 9100


def test_explicit_path_beats_hotline_config(tmp_path: Path) -> None:
    path = write(tmp_path, "[http]\nport = 9100\n")
    settings = load_settings(path, environ={"HOTLINE_CONFIG": str(tmp_path / "missing.toml")})
    assert settings.http.port == 9100


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("true", True),
        ("1", True),
        ("YES", True),
        ("false", False),
        ("0", False),
        ("no", False),
    ],
)
def test_environment_booleans(text: str, expected: bool) -> None:
    assert load_settings(environ={"HOTLINE_AMI_ENABLED": text}).ami.enabled is expected


def test_environment_numbers() -> None:
    env = {"HOTLINE_AMI_ACTION_TIMEOUT": "2.5", "HOTLINE_AGI_MAX_SESSIONS": "50"}
    settings = load_settings(environ=env)
    assert settings.ami.action_timeout == 2.5
    assert settings.agi.max_sessions == 50


def test_unrelated_hotline_variables_ignored() -> None:
    assert load_settings(environ={"HOTLINE_TEST_POSTGRES": "1"}) == load_settings(environ={})


def test_secret_not_in_repr() -> None:
    settings = load_settings(environ={"HOTLINE_AMI_SECRET": "hunter2-secret"})
    assert settings.ami.secret == "hunter2-secret"
    assert "hunter2-secret" not in repr(settings)
    assert "hunter2-secret" not in repr(settings.ami)
    assert "hunter2-secret" not in str(settings)


def test_secret_not_in_error_message(tmp_path: Path) -> None:
    path = write(tmp_path, "[ami]\nsecret = 123456789\n")
    with pytest.raises(ConfigError, match=r"\[ami\] secret must be a string") as info:
        load_settings(path, environ={})
    assert "123456789" not in str(info.value)


def test_settings_are_frozen() -> None:
    with pytest.raises(AttributeError):
        Settings().node_name = "x"  # type: ignore[misc]


# --- errors -----------------------------------------------------------------------------


def error_for(tmp_path: Path, text: str, env: dict[str, str] | None = None) -> str:
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        load_settings(path, environ=env or {})
    return str(info.value)


def test_syntax_error_names_file_and_line(tmp_path: Path) -> None:
    message = error_for(tmp_path, "[agi]\nport = 4573\nhost = = 1\n")
    assert str(tmp_path / "hotline.toml") in message
    assert "line 3" in message


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        load_settings(tmp_path / "nope.toml", environ={})


def test_unknown_section(tmp_path: Path) -> None:
    message = error_for(tmp_path, "[agii]\nport = 1\n")
    assert "hotline.toml" in message
    assert "unknown section [agii]" in message


def test_section_that_is_not_a_table(tmp_path: Path) -> None:
    assert "[agi] must be a table" in error_for(tmp_path, "agi = 5\n")


def test_unknown_key_in_file(tmp_path: Path) -> None:
    message = error_for(tmp_path, "[agi]\nprot = 4600\n")
    assert "hotline.toml" in message
    assert "unknown key 'prot' in section [agi]" in message


def test_unknown_top_level_key(tmp_path: Path) -> None:
    assert "unknown top-level key 'nodename'" in error_for(tmp_path, 'nodename = "x"\n')


def test_unknown_key_in_environment() -> None:
    with pytest.raises(ConfigError, match="HOTLINE_AGI_PROT: unknown key 'prot'"):
        load_settings(environ={"HOTLINE_AGI_PROT": "4600"})


@pytest.mark.parametrize(
    ("text", "key", "problem"),
    [
        ('[agi]\nport = "4573"\n', "[agi] port", "must be a whole number"),
        ("[agi]\nport = 4573.0\n", "[agi] port", "must be a whole number"),
        ("[agi]\nport = true\n", "[agi] port", "must be a whole number"),
        ('[agi]\nenv_timeout = "5"\n', "[agi] env_timeout", "must be a number"),
        ('[ami]\nenabled = "yes"\n', "[ami] enabled", "must be true or false"),
        ("[ami]\nhost = 1\n", "[ami] host", "must be a string"),
        ("node_name = 7\n", "node_name", "must be a string"),
    ],
)
def test_wrong_type_in_file(tmp_path: Path, text: str, key: str, problem: str) -> None:
    message = error_for(tmp_path, text)
    assert f"hotline.toml: {key} {problem}" in message


@pytest.mark.parametrize(
    ("name", "value", "problem"),
    [
        ("HOTLINE_AGI_PORT", "abc", "must be a whole number"),
        ("HOTLINE_AGI_REPLY_TIMEOUT", "soon", "must be a number"),
        ("HOTLINE_AMI_ENABLED", "maybe", "must be true or false"),
    ],
)
def test_wrong_type_in_environment(name: str, value: str, problem: str) -> None:
    with pytest.raises(ConfigError, match=f"Environment variable {name} {problem}"):
        load_settings(environ={name: value})


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ("[agi]\nport = 70000\n", "[agi] port"),
        ("[agi]\nport = -1\n", "[agi] port"),
        ("[http]\nport = 65536\n", "[http] port"),
        ("[ami]\nport = 0\n", "[ami] port"),  # a port we connect to: 0 is not one
    ],
)
def test_port_out_of_range(tmp_path: Path, text: str, key: str) -> None:
    assert f"{key} must be between" in error_for(tmp_path, text)


def test_listening_port_zero_allowed() -> None:
    assert load_settings(environ={"HOTLINE_AGI_PORT": "0"}).agi.port == 0


def test_port_out_of_range_in_environment() -> None:
    with pytest.raises(ConfigError, match="HOTLINE_HTTP_PORT must be between 0 and 65535"):
        load_settings(environ={"HOTLINE_HTTP_PORT": "99999"})


def test_non_positive_timeout(tmp_path: Path) -> None:
    message = error_for(tmp_path, "[agi]\nreply_timeout = 0\n")
    assert "[agi] reply_timeout must be greater than 0" in message


@pytest.mark.parametrize(
    ("text", "key", "value"),
    [
        ('[store]\nstate_backend = "mysql"\n', "[store] state_backend", "'mysql'"),
        ('[log]\nformat = "xml"\n', "[log] format", "'xml'"),
        ('[log]\nlevel = "LOUD"\n', "[log] level", "'LOUD'"),
        ('event_loop = "trio"\n', "event_loop", "'trio'"),
    ],
)
def test_unknown_choice(tmp_path: Path, text: str, key: str, value: str) -> None:
    message = error_for(tmp_path, text)
    assert f"{key} must be one of" in message
    assert value in message


def test_unknown_choice_in_environment() -> None:
    with pytest.raises(ConfigError, match="HOTLINE_STORE_STATE_BACKEND must be one of"):
        load_settings(environ={"HOTLINE_STORE_STATE_BACKEND": "mysql"})


def test_empty_node_name() -> None:
    with pytest.raises(ConfigError, match="HOTLINE_NODE_NAME must not be empty"):
        load_settings(environ={"HOTLINE_NODE_NAME": " "})


def test_reconnect_bounds_inverted(tmp_path: Path) -> None:
    message = error_for(tmp_path, "[ami]\nreconnect_min = 60.0\n")
    assert "hotline.toml: [ami] reconnect_min (60.0) must not exceed [ami] reconnect_max" in message


@pytest.mark.parametrize("text", ["inf", "nan", "-inf"])
def test_non_finite_numbers_rejected(text: str) -> None:
    with pytest.raises(ConfigError, match="HOTLINE_AGI_REPLY_TIMEOUT must be a number"):
        load_settings(environ={"HOTLINE_AGI_REPLY_TIMEOUT": text})


def test_non_finite_number_in_file(tmp_path: Path) -> None:
    assert "[agi] env_timeout must be a number" in error_for(tmp_path, "[agi]\nenv_timeout = inf\n")


def test_a_section_whose_name_has_an_underscore_is_reachable_from_the_environment() -> None:
    settings = load_settings(
        None,
        {
            "HOTLINE_RECORDER_ACCESS_TOKENS_FILE": "/etc/hotline/tokens.yaml",
            "HOTLINE_RECORDER_PURGE_INTERVAL": "60",
        },
    )
    assert settings.recorder_access.tokens_file == Path("/etc/hotline/tokens.yaml")
    assert settings.recorder.purge_interval == 60.0


def test_a_part_s_own_checks_name_its_section() -> None:
    with pytest.raises(ConfigError, match=r"\[callbacks\].*max_attempts"):
        load_settings(None, {"HOTLINE_CALLBACKS_MAX_ATTEMPTS": "0"})


@pytest.mark.parametrize("peers", ["", "10.0.0.0/33", "pbx.local", "10.0.0.1,,10.0.0.2"])
def test_agi_allowed_peers_must_be_addresses_or_networks(tmp_path: Path, peers: str) -> None:
    message = error_for(tmp_path, f'[agi]\nallowed_peers = "{peers}"\n')
    assert "[agi] allowed_peers must list IP addresses or networks" in message


def test_agi_allowed_peers_from_the_environment() -> None:
    settings = load_settings(environ={"HOTLINE_AGI_ALLOWED_PEERS": "10.20.0.11, 10.30.0.0/24"})
    assert settings.agi.allowed_peers == "10.20.0.11, 10.30.0.0/24"
