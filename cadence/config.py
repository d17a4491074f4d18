"""`cadence.yaml` plus `CADENCE_*` environment variables -> one frozen `Settings`.

Why it is built this way:
- The contract promises that an unknown key or a wrong type is reported at start, naming the
  key and the file; so every model forbids extra keys, the YAML is read with line numbers, and
  pydantic's errors are rewritten as `FILE:LINE: key: reason` (or `environment VAR: ...`;
  `config_errors`).
- The environment must win over the file (containers and CI override one key without editing
  the file), so the environment source comes before the init arguments that carry the file.
- Relative paths are relative to the config file, so `cadence --config demo/cadence.yaml` works
  from any folder; a relative path from the environment is relative to the current directory,
  like any path typed in a shell.
- Secrets are never in the file: keys ending in `_env` name the variable that holds them, and
  `Settings.secret` reads it with an error that says exactly what to set.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator, Mapping, Sequence
from contextvars import ContextVar
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from email_validator import EmailNotValidError, validate_email
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    PrivateAttr,
    ValidationError,
    field_validator,
)
from pydantic_settings import (
    BaseSettings,
    EnvSettingsSource,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    SettingsError,
)
from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap
from ruamel.yaml.error import MarkedYAMLError, YAMLError

from cadence.config_errors import describe, describe_env_error, env_keys, env_var, suggest
from cadence.config_file import ENV_PREFIX, ConfigMissing, config_file
from cadence.durations import format_duration, parse_duration


class ConfigError(Exception):
    """A configuration problem, already worded for a person: every line names where and what."""

    def __init__(self, problems: Sequence[str]) -> None:
        self.problems = list(problems)
        super().__init__("\n".join(self.problems))


# --- value types -------------------------------------------------------------------------


def _to_duration(value: object) -> timedelta:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return timedelta(seconds=value)
    return parse_duration(value)


def _positive(value: timedelta) -> timedelta:
    if value <= timedelta(0):
        raise ValueError("must be longer than zero")
    return value


#: `30s`, `5m`, `2h` (or a number of seconds); written back as text
Duration = Annotated[
    timedelta,
    BeforeValidator(_to_duration),
    AfterValidator(_positive),
    PlainSerializer(format_duration, return_type=str),
]


def _email(value: str) -> str:
    # test_environment: `.test` addresses (the contract's own examples) are allowed
    try:
        return validate_email(value, check_deliverability=False, test_environment=True).normalized
    except EmailNotValidError as exc:
        raise ValueError(f"{value!r} is not an email address: {exc}") from None


EmailAddress = Annotated[str, AfterValidator(_email)]


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


# --- the sections ------------------------------------------------------------------------


class SenderSettings(_Section):
    """Who the email is from when a message does not name its own sender (digests always)."""

    email: EmailAddress = "success@vendor.test"
    name: str | None = "Vendor"
    reply_to: EmailAddress | None = None


class RoleSenderSettings(_Section):
    """Who a role's email is from (`senders.sales`), unless the message names its own sender.
    Without a name, the default sender's; `reply_to` is the role's own (none: replies go to
    its address), not the default sender's."""

    email: EmailAddress
    name: str | None = None
    reply_to: EmailAddress | None = None


class FileTransportSettings(_Section):
    dir: Path = Path("outbox")


class SmtpSettings(_Section):
    host: str = "localhost"
    port: int = Field(default=25, ge=1, le=65535)
    username: str | None = None
    password_env: str | None = None  # the variable holding the password, never the password
    starttls: bool = False
    timeout: Duration = timedelta(seconds=30)


class SendgridSettings(_Section):
    api_host: str = "https://api.sendgrid.com"
    api_key_env: str | None = "SENDGRID_API_KEY"
    sandbox: bool = False
    timeout: Duration = timedelta(seconds=30)
    # requests in flight at once, each on a connection of its own: SendGrid answers in tens
    # to hundreds of milliseconds, and a daemon's pace is this many over that time
    concurrency: int = Field(default=16, ge=1, le=256)


class TransportSettings(_Section):
    kind: Literal["file", "console", "smtp", "sendgrid"] = "file"
    file: FileTransportSettings = FileTransportSettings()
    smtp: SmtpSettings = SmtpSettings()
    sendgrid: SendgridSettings = SendgridSettings()


class UnsubscribeSettings(_Section):
    base_url: str = "http://localhost:8787"
    secret_env: str | None = "CADENCE_UNSUBSCRIBE_SECRET"
    # a link stops working this long after the email that carried it was sent: a token found
    # in an old mailbox or a forwarded email must not unsubscribe anyone years later
    token_ttl: Duration = timedelta(days=365)


class HttpSettings(_Section):
    listen: str = "127.0.0.1:8787"
    sendgrid_webhook_public_key_env: str | None = None
    # without a key, unsigned posts are refused unless this says otherwise: anyone who can
    # reach the port could otherwise bounce or unsubscribe any customer
    sendgrid_webhook_allow_unsigned: bool = False
    # SendGrid's Inbound Parse posts replies with ?key=<the value of this variable>; unset, the
    # inbound webhook refuses every post (anyone could otherwise make up replies)
    sendgrid_inbound_key_env: str | None = None

    @field_validator("listen")
    @classmethod
    def _host_port(cls, value: str) -> str:
        host, sep, port = value.rpartition(":")
        # port 0: any free port (tests, or several daemons on one machine)
        if not sep or not host or not port.isdigit() or not 0 <= int(port) < 65536:
            raise ValueError(f"{value!r} is not HOST:PORT (e.g. 127.0.0.1:8787)")
        return value

    @property
    def host(self) -> str:
        return self.listen.rpartition(":")[0].strip("[]")

    @property
    def port(self) -> int:
        return int(self.listen.rpartition(":")[2])


class DaemonSettings(_Section):
    tick: Duration = timedelta(seconds=30)
    claim_batch: int = Field(default=500, ge=1)
    lease: Duration = timedelta(minutes=5)
    log_format: Literal["text", "json"] = "text"  # json: one object a line, for log pipelines


# The environment a `load_settings` call reads; None means `os.environ`. A context variable
# because pydantic-settings builds its sources in a classmethod that takes no arguments of ours.
_ENVIRON: ContextVar[Mapping[str, str] | None] = ContextVar("cadence_environ", default=None)


class _EnvSource(EnvSettingsSource):
    """The standard environment source, reading the mapping `load_settings` was given."""

    def _load_env_vars(self) -> Mapping[str, str | None]:
        environ = _ENVIRON.get()
        source = os.environ if environ is None else environ
        return {
            key.lower(): (None if value == self.env_parse_none_str else value)
            for key, value in source.items()
        }


class Settings(BaseSettings):
    """Everything cadence reads from `cadence.yaml` and `CADENCE_*`; see config.example.yaml."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        env_nested_delimiter="__",
        env_parse_none_str="null",
        case_sensitive=False,
        extra="forbid",
        frozen=True,
    )

    database_url: str = "sqlite:///cadence.db"
    rules_dir: Path = Path("rules")
    templates_dir: Path = Path("templates")
    default_timezone: str = "UTC"
    sender: SenderSettings = SenderSettings()
    senders: dict[str, RoleSenderSettings] = {}  # per role; the default sender for the rest
    transport: TransportSettings = TransportSettings()
    unsubscribe: UnsubscribeSettings = UnsubscribeSettings()
    http: HttpSettings = HttpSettings()
    daemon: DaemonSettings = DaemonSettings()

    _source: Path | None = PrivateAttr(default=None)
    _environ: Mapping[str, str] | None = PrivateAttr(default=None)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # first wins: the environment overrides the file (passed as init arguments)
        return (_EnvSource(settings_cls), init_settings)

    @field_validator("default_timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(
                f"{value!r} is not a known time zone (an IANA name like Europe/Berlin, or UTC)"
            ) from None
        return value

    @property
    def source(self) -> Path | None:
        """The config file these settings came from (None: defaults and environment only)."""
        return self._source

    def secret(self, key: str) -> str:
        """The secret held by the environment variable that the dotted `key` names, e.g.
        `settings.secret("transport.sendgrid.api_key_env")`; the error says what to set."""
        name: Any = self
        for part in key.split("."):
            if not hasattr(name, part):
                raise KeyError(f"{key} is not a configuration key")
            name = getattr(name, part)
        where = f" in {self._source}" if self._source else ""
        env_key = ENV_PREFIX + key.upper().replace(".", "__")
        if not name:
            raise ConfigError(
                [
                    f"{key} is not set{where}: set it (or {env_key}) to the name of the "
                    "environment variable that holds this secret"
                ]
            )
        environ = os.environ if self._environ is None else self._environ
        value = environ.get(str(name))
        if not value:
            raise ConfigError(
                [f"environment variable {name} is not set: it holds the secret that {key} names"]
            )
        return value


# --- loading -----------------------------------------------------------------------------


def load_settings(path: Path | None = None, environ: Mapping[str, str] | None = None) -> Settings:
    """Settings from `path`, else `$CADENCE_CONFIG`, else `./cadence.yaml` if it exists, else
    the defaults; `CADENCE_*` variables of `environ` (default: `os.environ`) override them."""
    env = dict(os.environ if environ is None else environ)
    file = _find_file(path, env)
    data: Any = CommentedMap()
    if file is not None:
        data = _read_yaml(file)
    token = _ENVIRON.set(env)
    try:
        settings = Settings(**_plain(data))
    except ValidationError as exc:
        raise ConfigError(describe(Settings, exc, file, data, env)) from None
    except SettingsError as exc:
        raise ConfigError([describe_env_error(exc, env)]) from None
    finally:
        _ENVIRON.reset(token)
    settings = _resolve_paths(settings, file, env_keys(env))
    settings._source = file
    settings._environ = environ
    return settings


def _find_file(path: Path | None, env: Mapping[str, str]) -> Path | None:
    try:
        return config_file(path, env)
    except ConfigMissing as exc:
        raise ConfigError([str(exc)]) from None


def _read_yaml(file: Path) -> Any:
    yaml = YAML()  # round-trip: mappings remember the line of every key
    try:
        data = yaml.load(file.read_text(encoding="utf-8"))
    except MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = f":{mark.line + 1}" if mark is not None else ""
        raise ConfigError([f"{file}{line}: not valid YAML: {exc.problem or exc}"]) from None
    except (YAMLError, OSError, UnicodeDecodeError) as exc:
        raise ConfigError([f"{file}: cannot be read: {exc}"]) from None
    if data is None:
        return CommentedMap()
    if not isinstance(data, CommentedMap):
        raise ConfigError([f"{file}:1: the file must be a mapping of keys (like the example)"])
    for key in data:
        if not isinstance(key, str) or key.startswith("_"):
            line = data.lc.key(key)[0] + 1
            raise ConfigError(
                [f"{file}:{line}: unknown key {key!r}{suggest(Settings, (), str(key))}"]
            )
    return data


def _plain(value: Any) -> Any:
    """Ruamel's commented containers as plain dicts and lists."""
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


# --- relative paths ----------------------------------------------------------------------

_SQLITE = re.compile(r"^(sqlite(?:\+\w+)?):///(?P<path>[^?]*)(?P<query>\?.*)?$")


def _sqlite_url(url: str, base: Path) -> str:
    match = _SQLITE.match(url)
    if match is None:
        return url
    path = match["path"]
    if not path or path == ":memory:" or Path(path).is_absolute():
        return url
    return f"{match[1]}:///{(base / path).resolve()}{match['query'] or ''}"


def _resolve_paths(
    settings: Settings, file: Path | None, set_by_env: Mapping[tuple[str, ...], str]
) -> Settings:
    file_base = file.resolve().parent if file is not None else Path.cwd()
    cwd = Path.cwd()

    def base(*loc: str) -> Path:
        return cwd if env_var(loc, set_by_env) else file_base

    def absolute(path: Path, *loc: str) -> Path:
        return path if path.is_absolute() else (base(*loc) / path).resolve()

    file_dir = absolute(settings.transport.file.dir, "transport", "file", "dir")
    transport = settings.transport.model_copy(
        update={"file": settings.transport.file.model_copy(update={"dir": file_dir})}
    )
    return settings.model_copy(
        update={
            "database_url": _sqlite_url(settings.database_url, base("database_url")),
            "rules_dir": absolute(settings.rules_dir, "rules_dir"),
            "templates_dir": absolute(settings.templates_dir, "templates_dir"),
            "transport": transport,
        }
    )


def iter_keys(model: type[BaseModel] = Settings, prefix: str = "") -> Iterator[str]:
    """Every dotted key there is (the example file and the docs are checked against it)."""
    for name, field in model.model_fields.items():
        annotation = field.annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            yield from iter_keys(annotation, f"{prefix}{name}.")
        else:
            yield prefix + name
