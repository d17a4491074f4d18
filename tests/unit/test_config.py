"""Configuration: where it is found, what wins, how paths resolve, and how errors read."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from cadence.config import ConfigError, Settings, iter_keys, load_settings

REPO = Path(__file__).resolve().parents[2]


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def test_defaults_without_any_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    settings = load_settings(environ={})
    assert settings.source is None
    assert settings.database_url == f"sqlite:///{tmp_path.resolve()}/cadence.db"
    assert settings.rules_dir == tmp_path.resolve() / "rules"
    assert settings.templates_dir == tmp_path.resolve() / "templates"
    assert settings.transport.kind == "file"
    assert settings.transport.file.dir == tmp_path.resolve() / "outbox"
    assert settings.transport.smtp.port == 25
    assert settings.transport.sendgrid.api_key_env == "SENDGRID_API_KEY"
    assert settings.sender.email == "success@vendor.test"
    assert settings.sender.reply_to is None
    assert settings.unsubscribe.secret_env == "CADENCE_UNSUBSCRIBE_SECRET"
    assert settings.http.listen == "127.0.0.1:8787"
    assert (settings.http.host, settings.http.port) == ("127.0.0.1", 8787)
    assert settings.daemon.tick == timedelta(seconds=30)
    assert settings.daemon.lease == timedelta(minutes=5)
    assert settings.daemon.claim_batch == 500


def test_example_file_documents_exactly_the_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(REPO)  # the example's relative paths resolve against its own folder
    example = load_settings(REPO / "config.example.yaml", environ={})
    defaults = load_settings(environ={})
    assert example.model_dump() == defaults.model_dump()


def test_example_file_names_every_key() -> None:
    text = (REPO / "config.example.yaml").read_text()
    for key in iter_keys():
        assert f"{key.rsplit('.', 1)[-1]}:" in text, key


def test_file_is_found_by_argument_then_env_then_cwd(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    write(tmp_path / "cadence.yaml", "default_timezone: Europe/Berlin\n")
    named = write(tmp_path / "named.yaml", "default_timezone: Asia/Tokyo\n")
    given = write(tmp_path / "given.yaml", "default_timezone: Australia/Sydney\n")
    assert load_settings(environ={}).default_timezone == "Europe/Berlin"
    env = {"CADENCE_CONFIG": str(named)}
    assert load_settings(environ=env).default_timezone == "Asia/Tokyo"
    assert load_settings(given, environ=env).default_timezone == "Australia/Sydney"
    assert load_settings(given, environ=env).source == given


def test_environment_wins_over_the_file(tmp_path: Path) -> None:
    config = write(
        tmp_path / "cadence.yaml",
        "transport:\n  kind: smtp\n  smtp: {host: mail.test, port: 2525}\ndaemon: {tick: 1m}\n",
    )
    env = {
        "CADENCE_TRANSPORT__SMTP__PORT": "587",
        "CADENCE_DAEMON__TICK": "10s",
        "CADENCE_SENDER__REPLY_TO": "help@vendor.test",
        "cadence_default_timezone": "Europe/London",  # case does not matter
    }
    settings = load_settings(config, environ=env)
    assert settings.transport.kind == "smtp"  # from the file
    assert settings.transport.smtp.host == "mail.test"  # from the file, same section
    assert settings.transport.smtp.port == 587
    assert settings.daemon.tick == timedelta(seconds=10)
    assert settings.sender.reply_to == "help@vendor.test"
    assert settings.default_timezone == "Europe/London"


def test_environment_can_unset_with_null(tmp_path: Path) -> None:
    config = write(tmp_path / "c.yaml", "sender: {email: a@vendor.test, reply_to: b@vendor.test}\n")
    settings = load_settings(config, environ={"CADENCE_SENDER__REPLY_TO": "null"})
    assert settings.sender.reply_to is None


def test_relative_paths_resolve_against_the_config_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    demo = tmp_path / "demo"
    config = write(
        demo / "cadence.yaml",
        "database_url: sqlite:///data/cadence.db\nrules_dir: my-rules\n"
        "templates_dir: ../shared/templates\ntransport: {file: {dir: out}}\n",
    )
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    settings = load_settings(Path("../demo/cadence.yaml"), environ={})
    root = tmp_path.resolve()
    assert settings.database_url == f"sqlite:///{root}/demo/data/cadence.db"
    assert settings.rules_dir == root / "demo" / "my-rules"
    assert settings.templates_dir == root / "shared" / "templates"
    assert settings.transport.file.dir == root / "demo" / "out"
    # the environment's relative paths are the shell's: relative to the current folder
    settings = load_settings(config, environ={"CADENCE_RULES_DIR": "r"})
    assert settings.rules_dir == root / "elsewhere" / "r"


@pytest.mark.parametrize(
    "url",
    [
        "sqlite:////var/lib/cadence.db",
        "sqlite://",
        "sqlite:///:memory:",
        "postgresql+psycopg://user@host/db",
    ],
)
def test_other_database_urls_are_left_alone(tmp_path: Path, url: str) -> None:
    config = write(tmp_path / "cadence.yaml", f"database_url: {url!r}\n")
    assert load_settings(config, environ={}).database_url == url


def test_sqlite_query_is_kept(tmp_path: Path) -> None:
    config = write(tmp_path / "cadence.yaml", "database_url: sqlite:///x.db?timeout=5\n")
    url = load_settings(config, environ={}).database_url
    assert url == f"sqlite:///{tmp_path.resolve()}/x.db?timeout=5"


def errors_of(tmp_path: Path, text: str, env: dict[str, str] | None = None) -> list[str]:
    config = write(tmp_path / "cadence.yaml", text)
    with pytest.raises(ConfigError) as info:
        load_settings(config, environ=env or {})
    assert str(info.value) == "\n".join(info.value.problems)
    return [p.replace(str(config), "cadence.yaml") for p in info.value.problems]


def test_wrong_choice_names_file_line_key_and_choices(tmp_path: Path) -> None:
    text = "rules_dir: rules\ntransport:\n  kind: smpt\n"
    assert errors_of(tmp_path, text) == [
        "cadence.yaml:3: transport.kind: 'smpt' is not one of file, console, smtp, sendgrid"
    ]


def test_unknown_key_suggests_the_nearest(tmp_path: Path) -> None:
    text = "rules_dir: rules\ndaemon: {tick: 5s}\ntransprt:\n  kind: smtp\n"
    assert errors_of(tmp_path, text) == [
        "cadence.yaml:3: unknown key 'transprt' (did you mean 'transport'?)"
    ]


def test_unknown_nested_key_suggests_within_its_section(tmp_path: Path) -> None:
    text = "transport:\n  kind: smtp\n  smtp:\n    hots: mail.test\n"
    assert errors_of(tmp_path, text) == [
        "cadence.yaml:4: unknown key 'transport.smtp.hots' (did you mean 'transport.smtp.host'?)"
    ]


def test_unknown_key_without_a_near_one_lists_the_allowed(tmp_path: Path) -> None:
    (problem,) = errors_of(tmp_path, "daemon:\n  zzz: 1\n")
    assert problem == (
        "cadence.yaml:2: unknown key 'daemon.zzz' "
        "(allowed: daemon.tick, daemon.claim_batch, daemon.lease, daemon.log_format)"
    )


def test_several_errors_all_reported_in_line_order(tmp_path: Path) -> None:
    text = (
        "default_timezone: Mars/Olympus\n"
        "sender: {email: not-an-address}\n"
        "transport:\n  smtp: {port: many, starttls: maybe}\n"
        "daemon:\n  tick: 10x\n  claim_batch: 0\n"
        "http: {listen: localhost}\n"
    )
    problems = errors_of(tmp_path, text)
    assert problems[0].startswith("cadence.yaml:1: default_timezone: 'Mars/Olympus' is not a known")
    assert problems[1].startswith("cadence.yaml:2: sender.email: 'not-an-address' is not an email")
    assert problems[2] == "cadence.yaml:4: transport.smtp.port: expected a whole number, not 'many'"
    assert (
        problems[3]
        == "cadence.yaml:4: transport.smtp.starttls: expected true or false, not 'maybe'"
    )
    assert problems[4].startswith("cadence.yaml:6: daemon.tick: '10x' is not a duration")
    assert problems[5].startswith("cadence.yaml:7: daemon.claim_batch:")
    assert (
        problems[6]
        == "cadence.yaml:8: http.listen: 'localhost' is not HOST:PORT (e.g. 127.0.0.1:8787)"
    )
    assert len(problems) == 7


def test_a_section_that_is_not_a_mapping(tmp_path: Path) -> None:
    (problem,) = errors_of(tmp_path, "rules_dir: r\ndaemon: fast\n")
    assert problem == "cadence.yaml:2: daemon: expected a mapping of keys, not 'fast'"


def test_broken_yaml_names_the_line(tmp_path: Path) -> None:
    (problem,) = errors_of(tmp_path, "rules_dir: r\ntransport: {kind: file\n")
    assert problem.startswith("cadence.yaml:")
    assert "not valid YAML" in problem


def test_duplicate_key_is_an_error(tmp_path: Path) -> None:
    (problem,) = errors_of(tmp_path, "rules_dir: r\nrules_dir: s\n")
    assert problem.startswith("cadence.yaml:2: not valid YAML")


def test_top_level_must_be_a_mapping(tmp_path: Path) -> None:
    assert errors_of(tmp_path, "- a\n- b\n") == [
        "cadence.yaml:1: the file must be a mapping of keys (like the example)"
    ]


def test_empty_file_means_defaults(tmp_path: Path) -> None:
    config = write(tmp_path / "cadence.yaml", "# nothing yet\n")
    assert load_settings(config, environ={}).transport.kind == "file"


def test_environment_errors_name_the_variable(tmp_path: Path) -> None:
    problems = errors_of(
        tmp_path,
        "daemon: {tick: 1m}\n",
        {"CADENCE_DAEMON__TICK": "soon", "CADENCE_DAEMON__TIKC": "1s"},
    )
    assert problems[0].startswith(
        "environment CADENCE_DAEMON__TICK: daemon.tick: 'soon' is not a duration"
    )
    assert problems[1] == (
        "environment CADENCE_DAEMON__TIKC: unknown key 'daemon.tikc' (did you mean 'daemon.tick'?)"
    )


def test_environment_section_must_be_json(tmp_path: Path) -> None:
    problems = errors_of(tmp_path, "", {"CADENCE_SENDER": "not json"})
    assert problems == ["environment CADENCE_SENDER: sender: not valid JSON for this section"]


def test_unrelated_cadence_variables_are_ignored(tmp_path: Path) -> None:
    env = {"CADENCE_UNSUBSCRIBE_SECRET": "s3cret", "CADENCE_CONFIG": "", "CADENCE_TEST_PG_URL": "x"}
    assert load_settings(write(tmp_path / "c.yaml", ""), environ=env).daemon.claim_batch == 500


def test_missing_config_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"nope.yaml: no such config file"):
        load_settings(tmp_path / "nope.yaml", environ={})
    with pytest.raises(ConfigError, match=r"named by CADENCE_CONFIG"):
        load_settings(environ={"CADENCE_CONFIG": str(tmp_path / "gone.yaml")})


def test_secret_reads_the_variable_a_key_names(tmp_path: Path) -> None:
    config = write(tmp_path / "cadence.yaml", "transport: {smtp: {password_env: SMTP_PASS}}\n")
    env = {"SMTP_PASS": "hunter2", "CADENCE_UNSUBSCRIBE_SECRET": "k"}
    settings = load_settings(config, environ=env)
    assert settings.secret("transport.smtp.password_env") == "hunter2"
    assert settings.secret("unsubscribe.secret_env") == "k"
    with pytest.raises(ConfigError) as info:
        settings.secret("transport.sendgrid.api_key_env")
    assert str(info.value) == (
        "environment variable SENDGRID_API_KEY is not set: "
        "it holds the secret that transport.sendgrid.api_key_env names"
    )
    with pytest.raises(ConfigError) as info:
        settings.secret("http.sendgrid_webhook_public_key_env")
    assert str(info.value).startswith(
        f"http.sendgrid_webhook_public_key_env is not set in {config}"
    )
    assert "CADENCE_HTTP__SENDGRID_WEBHOOK_PUBLIC_KEY_ENV" in str(info.value)
    with pytest.raises(KeyError):
        settings.secret("transport.nothing")


def test_settings_are_frozen() -> None:
    settings = Settings()
    with pytest.raises(ValueError):
        settings.rules_dir = Path("x")  # type: ignore[misc]


def test_each_role_may_have_its_own_sender(tmp_path: Path) -> None:
    assert load_settings(environ={}).senders == {}  # none by default: the one sender serves
    config = write(
        tmp_path / "cadence.yaml",
        "senders:\n"
        "  sales: {email: sales@vendor.test, name: Vendor Sales}\n"
        "  support: {email: support@vendor.test, reply_to: tickets@vendor.test}\n",
    )
    env = {"CADENCE_SENDERS__SALES__NAME": "Sales at Vendor"}
    senders = load_settings(config, environ=env).senders
    assert (senders["sales"].email, senders["sales"].name) == (
        "sales@vendor.test",
        "Sales at Vendor",
    )
    support = senders["support"]
    assert (support.name, support.reply_to) == (None, "tickets@vendor.test")


def test_a_roles_sender_needs_a_valid_address(tmp_path: Path) -> None:
    assert errors_of(tmp_path, "senders:\n  sales: {name: Vendor Sales}\n") == [
        "cadence.yaml:2: senders.sales.email: Field required (got {'name': 'Vendor Sales'})"
    ]
    (problem,) = errors_of(tmp_path, "senders:\n  sales: {email: sales-at-vendor}\n")
    assert problem.startswith("cadence.yaml:2: senders.sales.email: 'sales-at-vendor' is not")
