"""One precedence everywhere: flag, then ROLLCALL_<FLAG>, then the config file, then the default."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from app.cli.options import OptionError, add_options, resolve

NAMES = ("db", "port", "group-prefix", "metrics", "log-format")


def parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    add_options(parser, NAMES)
    return parser.parse_args(argv)


@pytest.mark.engines("sqlite", reason="option parsing: a --db value is read, no database is opened")
def test_defaults_apply_when_nothing_is_set() -> None:
    assert resolve(parse(), NAMES, environ={}) == {
        "db": "rollcall.db", "port": 8080, "group-prefix": "rollcall", "metrics": False, "log-format": "text"}


@pytest.mark.engines("sqlite", reason="option parsing: a --db value is read, no database is opened")
def test_flag_beats_environment_beats_file_beats_default(tmp_path: Path) -> None:
    config = tmp_path / "rollcall.toml"
    config.write_text('port = 9001\ngroup-prefix = "file"\ndb = "file.db"\nmetrics = true\n')
    environ = {"ROLLCALL_PORT": "9002", "ROLLCALL_GROUP_PREFIX": "env"}
    values = resolve(parse("--config", str(config), "--port", "9003"), NAMES, environ=environ)
    assert values["port"] == 9003              # flag
    assert values["group-prefix"] == "env"     # environment over file
    assert values["db"] == "file.db"           # file over default
    assert values["metrics"] is True
    assert values["log-format"] == "text"      # default


def test_config_file_can_come_from_the_environment_and_use_underscores(tmp_path: Path) -> None:
    config = tmp_path / "rollcall.toml"
    config.write_text('group_prefix = "acme"\n')
    assert resolve(parse(), NAMES, environ={"ROLLCALL_CONFIG": str(config)})["group-prefix"] == "acme"


def test_boolean_flags_and_environment() -> None:
    assert resolve(parse("--metrics"), NAMES, environ={})["metrics"] is True
    assert resolve(parse("--no-metrics"), NAMES, environ={"ROLLCALL_METRICS": "true"})["metrics"] is False
    assert resolve(parse(), NAMES, environ={"ROLLCALL_METRICS": "yes"})["metrics"] is True


@pytest.mark.parametrize("environ,fragment", [
    ({"ROLLCALL_PORT": "eighty"}, "ROLLCALL_PORT"),
    ({"ROLLCALL_METRICS": "maybe"}, "ROLLCALL_METRICS"),
    ({"ROLLCALL_LOG_FORMAT": "xml"}, "text, json"),
])
def test_bad_environment_values_name_their_source(environ: dict[str, str], fragment: str) -> None:
    with pytest.raises(OptionError, match=fragment):
        resolve(parse(), NAMES, environ=environ)


@pytest.mark.parametrize("text,fragment", [
    ("prot = 1\n", "unknown keys: prot"),
    ("port = true\n", "not a valid port"),
    ("port = [\n", "not valid TOML"),
    ('log-format = "xml"\n', "must be one of"),
])
def test_bad_config_files_are_refused_with_the_reason(tmp_path: Path, text: str, fragment: str) -> None:
    config = tmp_path / "rollcall.toml"
    config.write_text(text)
    with pytest.raises(OptionError, match=fragment):
        resolve(parse("--config", str(config)), NAMES, environ={})


def test_a_missing_config_file_is_an_error() -> None:
    with pytest.raises(OptionError, match="cannot read"):
        resolve(parse("--config", "/nonexistent/rollcall.toml"), NAMES, environ={})


def test_the_connection_options_come_from_flags_environment_and_file(tmp_path: Path) -> None:
    names = ("max-connections", "header-timeout", "keepalive-timeout", "trusted-hosts")
    parser = argparse.ArgumentParser()
    add_options(parser, names)
    config = tmp_path / "rollcall.toml"
    config.write_text('header-timeout = 5\nkeepalive-timeout = 7.5\ntrusted-hosts = "a.example,b.example"\n')
    values = resolve(parser.parse_args(["--config", str(config)]), names, environ={"ROLLCALL_MAX_CONNECTIONS": "50"})
    assert values == {"max-connections": 50, "header-timeout": 5.0, "keepalive-timeout": 7.5,
                      "trusted-hosts": "a.example,b.example"}
    assert resolve(parser.parse_args([]), names, environ={}) == {
        "max-connections": None, "header-timeout": 10.0, "keepalive-timeout": 15.0, "trusted-hosts": None}


def test_the_hold_options_come_from_flags_environment_and_file(tmp_path: Path) -> None:
    from app.cli.serve import register as register_serve
    from app.cli.serve import settings_from

    names = ("hold", "hold-window", "hold-percent", "hold-min")
    parser = argparse.ArgumentParser()
    add_options(parser, names)
    assert resolve(parser.parse_args([]), names, environ={}) == {
        "hold": True, "hold-window": 600.0, "hold-percent": 10.0, "hold-min": 3}
    config = tmp_path / "rollcall.toml"
    config.write_text("hold = false\nhold-window = 120\nhold-percent = 2.5\n")
    values = resolve(parser.parse_args(["--config", str(config)]), names, environ={"ROLLCALL_HOLD_MIN": "10"})
    assert values == {"hold": False, "hold-window": 120.0, "hold-percent": 2.5, "hold-min": 10}
    assert resolve(parser.parse_args(["--no-hold"]), names, environ={})["hold"] is False

    commands = argparse.ArgumentParser().add_subparsers()
    register_serve(commands)
    serve = commands.choices["serve"]
    policy = settings_from(serve.parse_args(["--no-hold", "--hold-window", "60", "--hold-min", "0"])).hold_policy
    assert (policy.enabled, policy.window_seconds, policy.percent, policy.minimum) == (False, 60.0, 10.0, 0)


@pytest.mark.parametrize("argv,fragment", [
    (["--hold-window", "0"], "--hold-window must be between 0 and 604800"),
    (["--hold-percent", "101"], "--hold-percent must be between 0 and 100"),
    (["--hold-min", "-1"], "--hold-min must not be negative"),
])
def test_bad_hold_settings_are_refused_at_start(argv: list[str], fragment: str) -> None:
    from app.cli.common import CommandError
    from app.cli.serve import register as register_serve
    from app.cli.serve import settings_from

    commands = argparse.ArgumentParser().add_subparsers()
    register_serve(commands)
    with pytest.raises(CommandError, match=fragment):
        settings_from(commands.choices["serve"].parse_args(argv))
