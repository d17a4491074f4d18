"""What the customer's own voice adds to `GET /metrics`: each Inbound Parse post counted by
its outcome (a reply matched to a customer, SendGrid posting it again, an unknown sender, an
out of office, a post without the key, one that is not Inbound Parse), and each save of the
preference page by its outcome. Real posts to the daemon's HTTP server; the numbers read back
from its own /metrics page (the counters belong to the process, so deltas are compared)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest

from cadence.app import App
from cadence.delivery.unsubscribe import make_preferences_token
from cadence.feedback.server import start_http
from tests.integration.test_http_inbound import KEY, make_app
from tests.support.inbound_parse import multipart, reply_fields


@dataclass
class Served:
    app: App
    client: httpx.Client

    def inbound(self, fields: dict[str, str], key: str | None = KEY) -> int:
        body, content_type = multipart(fields)
        r = self.client.post(
            "/webhooks/sendgrid/inbound",
            params={"key": key} if key is not None else {},
            content=body,
            headers={"Content-Type": content_type},
        )
        return r.status_code

    def samples(self) -> dict[str, float]:
        """Every sample of /metrics, by its name and labels as the text format writes them."""
        text = self.client.get("/metrics").text
        return {
            line.rsplit(" ", 1)[0]: float(line.rsplit(" ", 1)[1])
            for line in text.splitlines()
            if line and not line.startswith("#")
        }


@pytest.fixture
def served(db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Served]:
    app = make_app(db_url, tmp_path, monkeypatch)
    server = start_http(app, "127.0.0.1:0", public_key=None)
    client = httpx.Client(base_url=f"http://127.0.0.1:{server.port}", timeout=10)
    try:
        yield Served(app, client)
    finally:
        client.close()
        server.stop()
        app.close()


def changed(before: dict[str, float], after: dict[str, float], prefix: str) -> dict[str, float]:
    return {
        name: after[name] - before.get(name, 0.0)
        for name in after
        if name.startswith(prefix) and after[name] != before.get(name, 0.0)
    }


def test_inbound_posts_are_counted_by_outcome(served: Served) -> None:
    before = served.samples()
    assert served.inbound(reply_fields("ana@acme.test")) == 200  # matched
    assert served.inbound(reply_fields("ana@acme.test")) == 200  # posted again
    assert served.inbound(reply_fields("mallory@elsewhere.test")) == 200
    away = reply_fields("bo@acme.test", extra_headers="Auto-Submitted: auto-replied\n")
    assert served.inbound(away) == 200
    assert served.inbound(reply_fields("ana@acme.test"), key=None) == 403
    assert served.inbound(reply_fields("ana@acme.test"), key="guess") == 403
    assert served.inbound({"from": ""}) == 400
    name = "cadence_inbound_replies_total"
    assert changed(before, served.samples(), name) == {
        f'{name}{{outcome="matched"}}': 1,
        f'{name}{{outcome="duplicate"}}': 1,
        f'{name}{{outcome="unknown_sender"}}': 1,
        f'{name}{{outcome="automatic"}}': 1,
        f'{name}{{outcome="refused"}}': 2,
        f'{name}{{outcome="malformed"}}': 1,
    }


def test_preference_saves_are_counted_by_outcome(served: Served) -> None:
    token = make_preferences_token(served.app.unsubscribe_secret(), "c-17", datetime.now(UTC))
    stranger = make_preferences_token(served.app.unsubscribe_secret(), "c-99", datetime.now(UTC))
    before = served.samples()
    form = {"often": "cap", "per_week": "1"}
    assert served.client.post(f"/p/{token}", data=form).status_code == 200
    assert served.client.post(f"/p/{token}", data=form).status_code == 200  # a double submit
    assert served.client.post(f"/p/{token}", data={"often": "cap"}).status_code == 400
    assert served.client.post(f"/p/{token[:-2]}xy", data=form).status_code == 403
    assert served.client.post(f"/p/{stranger}", data=form).status_code == 404
    name = "cadence_preference_saves_total"
    assert changed(before, served.samples(), name) == {
        f'{name}{{outcome="recorded"}}': 1,
        f'{name}{{outcome="repeat"}}': 1,
        f'{name}{{outcome="invalid"}}': 1,
        f'{name}{{outcome="rejected"}}': 1,
        f'{name}{{outcome="unknown"}}': 1,
    }
