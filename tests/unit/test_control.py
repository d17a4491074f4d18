"""The thin client's parsing and the socket's name: what decides whether `cadence preview`
asks a daemon, and which one."""

from __future__ import annotations

from pathlib import Path

import pytest

from cadence.cli.quick import parse_preview
from cadence.config_file import ConfigMissing, config_file
from cadence.runtime import control


def test_plain_preview_forms_parse_to_a_request() -> None:
    config, request = parse_preview(
        [
            "-c",
            "x.yaml",
            "preview",
            "c-1",
            "--days=3",
            "--at",
            "2026-11-23T12:00:00Z",
            "--format",
            "json",
            "--render",
        ]
    ) or (None, {})
    assert config == Path("x.yaml")
    assert request == {
        "command": "preview",
        "customer": "c-1",
        "days": 3,
        "at": "2026-11-23T12:00:00Z",
        "format": "json",
        "render": True,
    }
    parsed = parse_preview(["--config=y.yaml", "preview", "c-2"])
    assert parsed is not None and parsed[0] == Path("y.yaml")
    assert parsed[1]["days"] == 14 and parsed[1]["format"] == "table"


@pytest.mark.parametrize(
    "argv",
    [
        [],
        ["run"],
        ["preview"],  # no customer: Typer says so
        ["preview", "c-1", "--help"],
        ["preview", "c-1", "--rules", "other"],  # rules not live: done by the command
        ["preview", "c-1", "c-2"],
        ["preview", "c-1", "--days"],
        ["preview", "c-1", "--days", "many"],
        ["-c"],
        ["--verbose", "preview", "c-1"],
    ],
)
def test_anything_else_goes_to_the_full_command_line(argv: list[str]) -> None:
    assert parse_preview(argv) is None


def test_the_socket_follows_what_settings_are_made_of(tmp_path: Path) -> None:
    file = tmp_path / "cadence.yaml"
    file.write_text("database_url: sqlite:///a.db\n")
    base = control.socket_path(file, {}, "/somewhere")
    # the config file's own path decides, not the folder the command runs in
    assert control.socket_path(file, {"HOME": "/x"}, "/elsewhere") == base
    assert control.socket_path(file, {"CADENCE_CONFIG": str(file)}, "/elsewhere") == base
    # a CADENCE_ variable changes the settings, and makes relative paths follow the cwd
    env = {"CADENCE_DATABASE_URL": "sqlite:///b.db"}
    assert control.socket_path(file, env, "/somewhere") != base
    assert control.socket_path(file, env, "/somewhere") != control.socket_path(file, env, "/x")
    # variables that set no key are read elsewhere (the unsubscribe secret) or are ours
    for name in ("CADENCE_UNSUBSCRIBE_SECRET", "CADENCE_RUNTIME_DIR", "CADENCE_NO_DAEMON_PREVIEW"):
        assert control.socket_path(file, {name: "x"}, "/elsewhere").name == base.name
    assert control.socket_path(file, {"cadence_daemon__tick": "5s"}, "/somewhere") != base
    # an edited file: the daemon's settings are older than the file, so not that daemon
    file.write_text("database_url: sqlite:///a.db\n# edited\n")
    assert control.socket_path(file, {}, "/somewhere") != base
    # no file: defaults are relative to the cwd
    assert control.socket_path(None, {}, "/a") != control.socket_path(None, {}, "/b")


def test_only_a_private_folder_of_ours_is_trusted(tmp_path: Path) -> None:
    mine = tmp_path / "mine"
    assert control.private_dir(mine, create=True)
    assert oct(mine.stat().st_mode & 0o777) == oct(0o700)
    shared = tmp_path / "shared"
    shared.mkdir(mode=0o755)
    shared.chmod(0o755)
    assert not control.private_dir(shared, create=False)
    link = tmp_path / "link"
    link.symlink_to(mine)
    assert not control.private_dir(link, create=False)
    assert not control.private_dir(tmp_path / "absent", create=False)


def test_no_daemon_means_no_answer(tmp_path: Path) -> None:
    folder = tmp_path / "run"
    control.private_dir(folder, create=True)
    assert control.ask(folder / "none.sock", {"command": "preview"}) is None
    stale = folder / "stale.sock"
    stale.write_text("")  # a file where a socket should be
    assert control.ask(stale, {"command": "preview"}) is None


def test_a_named_config_that_is_missing_is_reported_by_name(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with pytest.raises(ConfigMissing, match=r"nope\.yaml: no such config file"):
        config_file(tmp_path / "nope.yaml", {})
    with pytest.raises(ConfigMissing, match="named by CADENCE_CONFIG"):
        config_file(None, {"CADENCE_CONFIG": str(tmp_path / "nope.yaml")})
    monkeypatch.chdir(tmp_path)  # the default: ./cadence.yaml, only if it exists
    assert config_file(None, {}) is None
    (tmp_path / "cadence.yaml").write_text("")
    assert config_file(None, {}) == Path("cadence.yaml")


def test_the_keys_that_make_settings_are_the_settings_keys() -> None:
    from cadence.config import Settings

    assert set(Settings.model_fields) == control.SETTINGS_KEYS


def test_the_socket_folder_can_be_named(tmp_path: Path) -> None:
    env = {"CADENCE_RUNTIME_DIR": str(tmp_path / "run"), "XDG_RUNTIME_DIR": "/nope"}
    assert control.socket_path(None, env, "/").parent == tmp_path / "run"
