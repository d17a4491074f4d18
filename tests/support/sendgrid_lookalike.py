"""A local HTTP server that speaks the part of SendGrid's v3 API cadence uses.

`POST /v3/mail/send` with a bearer key: 202 and an `X-Message-Id`, or whatever the test scripts
(429 with `X-RateLimit-Reset`, 500, 400 with SendGrid's error JSON). Every accepted request is
kept, with the time it arrived, so tests and benchmarks can count sends and measure latency.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

#: the headers v3 mail/send does not let a sender set (SendGrid's documentation of
#: `headers`, lower-cased: names compare without case); Message-ID is not among them
RESERVED_HEADERS = frozenset(
    {
        "x-sg-id",
        "x-sg-eid",
        "received",
        "dkim-signature",
        "content-type",
        "content-transfer-encoding",
        "to",
        "from",
        "subject",
        "reply-to",
        "cc",
        "bcc",
    }
)


def _reserved(headers: dict[str, Any] | None) -> str | None:
    for name in headers or {}:
        if name.lower() in RESERVED_HEADERS:
            return f"The header {name} is reserved and cannot be set in headers."
    return None


def check_payload(payload: dict[str, Any]) -> str | None:
    """What SendGrid would refuse in a v3 mail/send body (the rules cadence could break)."""
    people = payload["personalizations"]
    if not 1 <= len(people) <= 1000:
        return "between 1 and 1000 personalizations"
    reserved = _reserved(payload.get("headers"))
    if reserved:
        return reserved
    seen: set[str] = set()
    for p in people:
        reserved = _reserved(p.get("headers"))
        if reserved:
            return reserved
        address = p["to"][0]["email"].lower()
        if address in seen:
            return (
                "Each unique email address in the personalizations array should only be "
                "included once."
            )
        seen.add(address)
        if not (p.get("subject") or payload.get("subject")):
            return "The subject is required."
    assert payload["from"]["email"] and payload["content"][0]["value"]
    return None


def emails_of(payload: dict[str, Any], at: float) -> list[dict[str, Any]]:
    """The emails SendGrid makes of one accepted request: one per personalization, its
    fields over the request's, its substitutions applied to the content."""
    out = []
    for p in payload["personalizations"]:
        content = payload["content"]
        for tag, value in (p.get("substitutions") or {}).items():
            content = [{**c, "value": c["value"].replace(tag, value)} for c in content]
        out.append(
            {
                "at": at,
                "to": p["to"][0]["email"],
                "subject": p.get("subject") or payload["subject"],
                "headers": {**payload.get("headers", {}), **p.get("headers", {})},
                "custom_args": {**payload.get("custom_args", {}), **p.get("custom_args", {})},
                "content": content,
            }
        )
    return out


@dataclass
class Reply:
    status: int
    body: dict[str, Any] | None = None
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class Received:
    at: float
    payload: dict[str, Any]
    status: int


class SendgridLookalike:
    def __init__(self, api_key: str = "SG.test-key") -> None:
        self.api_key = api_key
        self.delay = 0.0  # seconds before answering: a slow provider
        self.script: deque[Reply] = deque()
        self.received: list[Received] = []
        self.accepted: list[Received] = []
        self._lock = threading.Lock()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: object) -> None:
                pass

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length)
                if self.path != "/v3/mail/send":
                    return self._reply(Reply(404, {"errors": [{"message": "not found"}]}))
                if self.headers.get("Authorization") != f"Bearer {outer.api_key}":
                    return self._reply(
                        Reply(401, {"errors": [{"message": "authorization required"}]})
                    )
                try:
                    payload = json.loads(raw)
                    problem = check_payload(payload)
                except Exception:  # noqa: BLE001
                    problem = "bad request body"
                if problem:
                    return self._reply(Reply(400, {"errors": [{"message": problem}]}))
                if outer.delay:
                    time.sleep(outer.delay)
                with outer._lock:
                    reply = outer.script.popleft() if outer.script else Reply(202)
                    item = Received(time.time(), payload, reply.status)
                    outer.received.append(item)
                    if reply.status == 202:
                        outer.accepted.append(item)
                if reply.status == 202:
                    reply.headers.setdefault("X-Message-Id", uuid.uuid4().hex[:22])
                self._reply(reply)

            def _reply(self, reply: Reply) -> None:
                body = json.dumps(reply.body).encode() if reply.body is not None else b""
                self.send_response(reply.status)
                for k, v in reply.headers.items():
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(body)))
                if body:
                    self.send_header("Content-Type", "application/json")
                self.end_headers()
                self.wfile.write(body)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host}:{port}"

    def __enter__(self) -> SendgridLookalike:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()

    def then(self, *replies: Reply) -> None:
        with self._lock:
            self.script.extend(replies)

    def emails(self) -> list[dict[str, Any]]:
        """Every email SendGrid would send for the accepted requests (`emails_of`)."""
        with self._lock:
            accepted = list(self.accepted)
        return [e for item in accepted for e in emails_of(item.payload, item.at)]

    def email_ids(self) -> list[str]:
        """The cadence email id of each accepted email (from custom_args)."""
        return [e["custom_args"].get("cadence_email", "") for e in self.emails()]
