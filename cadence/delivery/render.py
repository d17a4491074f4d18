"""Templates -> subject, text and HTML, in the one Jinja2 sandbox.

A template NAME is up to three files in the templates folder: `NAME.subject.j2` and
`NAME.text.j2` (both required) and `NAME.html.j2` (optional). Only the HTML part is autoescaped:
escaping a plain-text part would put `&amp;` in front of the customer.

Why it is strict: an email that went out with a blank where the customer's name should be cannot
be taken back. An undefined variable is an error (StrictUndefined), every part renders before any
is returned, and `RenderError` names the template, the file, the line and the reason, so the
message can be held with that reason rather than sent half-right.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

from jinja2 import FileSystemLoader, Template, TemplateNotFound, TemplateSyntaxError, meta
from markupsafe import Markup

from cadence.jinja import sandbox
from cadence.model import EMPTY, Customer, Message, Sender
from cadence.rules.errors import suggest
from cadence.views import customer_view, message_view, sender_view, view

PARTS = ("subject", "text", "html")
REQUIRED = ("subject", "text")
_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]*$")


@dataclass(frozen=True, slots=True)
class Rendered:
    subject: str  # one line
    text: str
    html: str | None = None


@dataclass(frozen=True, slots=True)
class DigestItem:
    """One member of a merged email, already rendered on its own."""

    role: str
    sender: Sender  # who speaks in this item: the message's own sender or the configured one
    subject: str
    body_text: str
    body_html: str | None
    message: Message


class RenderError(Exception):
    """A template could not be rendered; says which template, which file and line, and why."""

    def __init__(
        self, template: str, reason: str, file: str | None = None, line: int | None = None
    ) -> None:
        self.template = template
        self.reason = reason
        self.file = file
        self.line = line
        where = f"{file}:{line}" if file and line else file
        super().__init__(f"template {template!r}: {where + ': ' if where else ''}{reason}")


def one_line(text: str) -> str:
    """Subjects are one line: a header with a newline in it is either broken or an injection."""
    return " ".join(text.split())


def _body(text: str) -> str:
    return text.strip("\n").rstrip() + "\n"


def _template_frame(tb: TracebackType | None, folder: Path) -> tuple[str, int] | None:
    """The innermost template file and line in a traceback (Jinja rewrites its frames to point
    at template sources): in a layout or an include, that is the file to look at."""
    found = None
    while tb is not None:
        filename = tb.tb_frame.f_code.co_filename
        if filename.endswith(".j2") and Path(filename).parent == folder:
            found = (Path(filename).name, tb.tb_lineno)
        tb = tb.tb_next
    return found


def _stamp(files: Sequence[Path]) -> tuple[tuple[str, int, int], ...]:
    return tuple((str(p), (st := p.stat()).st_size, st.st_mtime_ns) for p in files)


#: the frozen renderer of the last scratch run over each templates folder (`frozen_renderer`)
_FROZEN: dict[Path, Renderer] = {}


def frozen_renderer(templates_dir: Path) -> Renderer:
    """A frozen renderer for a scratch run: the last one made for this folder while its files
    are as they were then, so that runs one after another (a daemon answering previews)
    compile the templates once; else a new one."""
    folder = Path(templates_dir).resolve()
    found = _FROZEN.get(folder)
    if found is None or not found.unchanged():
        found = _FROZEN[folder] = Renderer(folder, frozen=True)
        found.version()  # what it sees is taken now, before the run
    return found


class Renderer:
    """Renders messages and digests from one templates folder."""

    def __init__(
        self, templates_dir: Path, sender: Sender | None = None, *, frozen: bool = False
    ) -> None:
        """`frozen`: the templates are taken as they are at first use, for a run that must
        not see them change halfway (a simulation on a scratch copy); the daemon's renderer
        watches the folder, so a fixed template is picked up by the next pass."""
        self.templates_dir = Path(templates_dir)
        self.default_sender = sender
        self._folder = self.templates_dir.resolve()
        self._frozen = frozen
        loader = FileSystemLoader(str(self._folder))
        self._text_env = sandbox(loader, auto_reload=not frozen)
        self._html_env = sandbox(loader, html=True, auto_reload=not frozen)
        self._seen: tuple[tuple[str, int, int], ...] | None = None
        self._version = ""

    # --- public ---------------------------------------------------------------------------

    def version(self) -> str:
        """A digest of the templates folder's files, names and contents: it changes when a
        template is fixed (held mail is released then), and not when a file is only touched.
        The contents are read again only when a file's size or time changed."""
        if self._frozen and self._seen is not None:
            return self._version
        files = self._files()
        seen = _stamp(files)
        if seen != self._seen:
            digest = hashlib.sha256()
            for path in files:
                digest.update(str(path.relative_to(self._folder)).encode() + b"\0")
                digest.update(hashlib.sha256(path.read_bytes()).digest())
            self._seen, self._version = seen, digest.hexdigest()[:12]
        return self._version

    def unchanged(self) -> bool:
        """Whether the folder's files are as this renderer first saw them (names, sizes,
        times): a frozen renderer that says so renders what a new one would."""
        return self._seen is not None and _stamp(self._files()) == self._seen

    def _files(self) -> list[Path]:
        if not self._folder.is_dir():
            return []
        return sorted(p for p in self._folder.rglob("*") if p.is_file())

    def available(self) -> list[str]:
        """Template names that have both required files."""
        if not self.templates_dir.is_dir():
            return []
        names = {
            p.name.removesuffix(".subject.j2") for p in self.templates_dir.glob("*.subject.j2")
        }
        return sorted(n for n in names if (self.templates_dir / f"{n}.text.j2").is_file())

    def check(self, names: Iterable[str]) -> dict[str, str]:
        """Template name -> what is wrong with it (missing files, syntax errors); {} when fine."""
        problems: dict[str, str] = {}
        for name in dict.fromkeys(names):
            try:
                for part, template in self._load(name).items():
                    self._check_references(name, part, template)
            except RenderError as exc:
                where = f"{exc.file}:{exc.line}: " if exc.file and exc.line else ""
                problems[name] = where + exc.reason
        return problems

    def render_message(
        self,
        message: Message,
        customer: Customer,
        extra: Mapping[str, Any] = EMPTY,
        *,
        sender: Sender | None = None,
        in_digest: bool = False,
    ) -> Rendered:
        """A message as the customer will read it: its ready subject and body as they are, or
        its template over `customer`, `message`, `data`, `sender`, `in_digest` and the `extra`
        names. `in_digest`: it becomes one item of a digest, so the template's layout leaves
        out what the digest already has once (greeting, signature, the HTML page around it)."""
        if message.subject is not None and message.body_text is not None:
            html = message.body_html
            return Rendered(one_line(message.subject), _body(message.body_text), html)
        if message.template is None:
            raise RenderError(
                f"<message {message.id}>",
                "the message has neither a template nor a subject with body_text",
            )
        context = {
            **extra,
            "customer": customer_view(customer),
            "message": message_view(message),
            "data": view("data", message.data),
            "sender": sender_view(sender or message.sender or self.default_sender),
            "in_digest": in_digest,
        }
        return self._render(message.template, context)

    def render_digest(
        self,
        template: str,
        customer: Customer,
        items: Sequence[DigestItem],
        extra: Mapping[str, Any] = EMPTY,
        *,
        sender: Sender | None = None,
    ) -> Rendered:
        """Several messages as one email: the template sees `items`, each with `role`,
        `sender` (name, email), `subject`, `body_text`, `body_html`, `message` and `data`."""
        views = [
            view(
                "item",
                {
                    "role": item.role,
                    "sender": sender_view(item.sender),
                    "subject": item.subject,
                    "body_text": item.body_text,
                    # our own rendered HTML (or the submitter's): already safe to embed
                    "body_html": Markup(item.body_html) if item.body_html is not None else None,
                    "message": message_view(item.message),
                    "data": view("data", item.message.data),
                },
            )
            for item in items
        ]
        context = {
            **extra,
            "customer": customer_view(customer),
            "items": views,
            "sender": sender_view(sender or self.default_sender),
            "in_digest": False,
        }
        return self._render(template, context)

    # --- inside ---------------------------------------------------------------------------

    def _load(self, name: str) -> dict[str, Template]:
        if not _NAME.match(name):
            raise RenderError(name, "a template name is letters, digits, '_', '-' and '.'")
        loaded: dict[str, Template] = {}
        missing = []
        for part in PARTS:
            file = f"{name}.{part}.j2"
            env = self._html_env if part == "html" else self._text_env
            try:
                loaded[part] = env.get_template(file)
            except TemplateNotFound:
                if part in REQUIRED:
                    missing.append(file)
            except TemplateSyntaxError as exc:
                raise RenderError(name, exc.message or str(exc), file, exc.lineno) from None
        if missing:
            # no file of it at all: most likely a misspelt name, so say the closest one
            hint = suggest(name, self.available()) if len(missing) == len(REQUIRED) else ""
            raise RenderError(
                name, f"missing {' and '.join(missing)} in {self.templates_dir}{hint}", missing[0]
            )
        return loaded

    def _check_references(self, name: str, part: str, template: Template) -> None:
        """Layouts and includes load only when rendering; `check` loads them now, so a broken
        `_layout.html.j2` is reported by `rules check`, not by the first email."""
        env = self._html_env if part == "html" else self._text_env
        pending: list[tuple[str | None, str | None]] = [(template.name, None)]
        seen: set[str] = set()
        while pending:
            current, used_by = pending.pop()
            if current is None or current in seen:
                continue
            seen.add(current)
            try:
                source = env.loader.get_source(env, current)[0]  # type: ignore[union-attr]
                parsed = env.parse(source, current)
            except TemplateNotFound:
                raise RenderError(name, f"{current} not found (used by {used_by})") from None
            except TemplateSyntaxError as exc:
                raise RenderError(name, exc.message or str(exc), current, exc.lineno) from None
            pending.extend((ref, current) for ref in meta.find_referenced_templates(parsed))

    def _render(self, name: str, context: Mapping[str, Any]) -> Rendered:
        templates = self._load(name)
        out: dict[str, str] = {}
        for part, template in templates.items():
            try:
                out[part] = template.render(context)
            except Exception as exc:  # any failure in a template is reported
                frame = _template_frame(exc.__traceback__, self._folder)
                file, line = frame if frame else (f"{name}.{part}.j2", None)
                reason = str(exc) or type(exc).__name__
                raise RenderError(name, reason, file, line) from exc
        subject = one_line(out["subject"])
        if not subject:
            raise RenderError(name, "the subject is empty", f"{name}.subject.j2")
        html = out.get("html")
        return Rendered(subject, _body(out["text"]), html.strip() + "\n" if html else None)
