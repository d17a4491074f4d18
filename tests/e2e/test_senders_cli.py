"""Each role its own sender, from the command line: `preview` says who each email is from,
in the table and in the JSON, as the sending pass composes it."""

from __future__ import annotations

import json

from .conftest import Cli

CUSTOMER = {"id": "c-1", "email": "ana@acme.test", "name": "Ana", "timezone": "UTC"}
# Tuesday 1 December 2026, 10:00 UTC
AT = "2026-12-01T10:00:00Z"


def _message(mid: str, role: str, send_after: str) -> str:
    fields = {
        "id": mid,
        "customer": "c-1",
        "role": role,
        "category": "note",
        "subject": f"subject {mid}",
        "body_text": "body",
        "send_after": send_after,
        "transactional": True,  # no rule stands between them and the preview
    }
    return json.dumps(fields)


def test_preview_shows_each_roles_sender(cli: Cli) -> None:
    cli("init", ".")
    config = cli.cwd / "cadence.yaml"
    text = config.read_text()
    assert "senders: {}" in text  # init writes the key, empty
    config.write_text(
        text.replace(
            "senders: {}", "senders: {sales: {email: sales@vendor.test, name: Vendor Sales}}"
        )
    )
    (cli.cwd / "c.jsonl").write_text(json.dumps(CUSTOMER) + "\n")
    cli("customers", "import", "c.jsonl")
    stdin = _message("sls-1", "sales", AT) + "\n" + _message("bil-1", "billing", AT) + "\n"
    cli("messages", "submit", "-", stdin=stdin)

    preview = json.loads(cli("preview", "c-1", "--at", AT, "--format", "json").out)
    froms = {e["members"][0]: e["from"] for e in preview["emails"]}
    assert froms == {
        "sls-1": {"email": "sales@vendor.test", "name": "Vendor Sales"},
        "bil-1": {"email": "success@vendor.test", "name": "Vendor"},  # no sender of its own
    }
    table = cli("preview", "c-1", "--at", AT).out
    assert "Vendor Sales <sales@vendor.test>" in table
    assert "Vendor <success@vendor.test>" in table
