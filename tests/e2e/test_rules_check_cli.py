"""`cadence rules check` end to end (issue 24): every problem in one run, each at its place
(a template at its `template:`, a bad indent said as such), the event types the rules wait for
held against what can arrive, and the same as JSON."""

from __future__ import annotations

import json

from .conftest import Cli

BROKEN = """\
merge:
  - name: dig
    categories: [tip]
    window: 48h
    template: nosuch
playbooks:
  - name: after-ticket
    on: ticket_resolvd
    send: {role: success, category: check-in, template: ticket_follow_up}
  - name: farewell
    on: unsubscribe
    send:
      role: success
      template: nosuch_either
cancel:
  - name: a-reply-ends-it
    on: [repled]
"""
BAD_INDENT = "limits:\n  - name: x\n    max: 3\n   per: 7d\n"


def test_rules_check_reports_every_problem_in_one_run(cli: Cli) -> None:
    cli("init", ".")
    (cli.cwd / "rules" / "extra.yaml").write_text(BROKEN, encoding="utf-8")
    (cli.cwd / "rules" / "indent.yaml").write_text(BAD_INDENT, encoding="utf-8")
    result = cli("rules", "check", check=False)
    assert result.code == 1
    lines = result.err.splitlines()
    # the templates are reported beside the YAML error, each at its `template:`
    assert any("rules/extra.yaml:5:15: template `nosuch` (merge rule `dig`): " in x for x in lines)
    assert "rules/extra.yaml:14:17: template `nosuch_either` (playbook `farewell`)" in result.err
    assert "rules/indent.yaml:4:4: bad indentation: `per` starts at column 4" in result.err
    assert "block end" not in result.err and "block mapping" not in result.err
    # a cadence event type misspelt is a warning with the name it is close to
    assert (
        "rules/extra.yaml:11:9: warning: playbook `farewell`: no event of type `unsubscribe` "
        "has arrived; did you mean `unsubscribed`?"
    ) in result.err
    assert (
        "rules/extra.yaml:17:10: warning: cancel rule `a-reply-ends-it`: no event of type "
        "`repled` has arrived; did you mean `replied`?"
    ) in result.err


def test_rules_check_knows_the_event_types_the_ledger_has_had(cli: Cli) -> None:
    cli("init", ".")
    cli("customers", "import", "samples/customers.jsonl")
    cli("events", "ingest", "samples/events.jsonl")
    # the starter playbooks wait for types the samples have, and two they have not had
    clean = cli("rules", "check")
    assert "warning" not in clean.err
    summary, unseen = clean.out.strip().splitlines()
    assert "rules version" in summary
    assert unseen.startswith("no event of these types has arrived yet: ")
    assert "churned (playbook `after-onboarding`, cancel_on)" in unseen
    assert "ticket_resolved" not in unseen  # the samples have one
    (cli.cwd / "rules" / "extra.yaml").write_text(
        "playbooks:\n"
        "  - name: after-ticket\n"
        "    on: ticket_resolvd\n"
        "    send: {role: success, category: check-in, template: ticket_follow_up}\n"
        "    cancel_on: [account_closed]\n",
        encoding="utf-8",
    )
    result = cli("rules", "check")  # warnings alone do not fail the check
    assert "rules version" in result.out
    assert (
        "rules/extra.yaml:3:9: warning: playbook `after-ticket`: no event of type "
        "`ticket_resolvd` has arrived; did you mean `ticket_resolved`?"
    ) in result.err
    assert "account_closed (playbook `after-ticket`, cancel_on)" in result.out
    as_json = json.loads(cli("rules", "check", "--format", "json").out)
    assert {
        "type": "account_closed",
        "rule": "playbook `after-ticket`",
        "key": "cancel_on",
    }.items() <= next(
        u for u in as_json["unseen_event_types"] if u["type"] == "account_closed"
    ).items()


def test_rules_check_holds_what_the_rules_read_of_the_customer_against_the_ledger(
    cli: Cli,
) -> None:
    cli("init", ".")
    typos = (
        "suppress:\n"
        "  - name: unhappy\n"
        "    categories: [offer]\n"
        '    when: customer.plna == "pro" or customer["helth"] == "red"\n'
    )
    (cli.cwd / "rules" / "typos.yaml").write_text(typos, encoding="utf-8")
    # no customer yet: every name is unknown, so nothing is said of them
    empty = cli("rules", "check")
    assert "plna" not in empty.out + empty.err
    cli("customers", "import", "samples/customers.jsonl")
    result = cli("rules", "check")  # warnings alone do not fail the check
    assert (
        "rules/typos.yaml:4:11: warning: suppress rule `unhappy`: no customer has attribute "
        "`plna`; did you mean `plan`?"
    ) in result.err
    # close to nothing the samples have: listed, not warned about (a team's own attribute)
    assert "no customer has these attributes yet: helth (suppress rule `unhappy`)" in result.out
    # the starter rules read only what the samples' customers and events carry
    assert result.err.count("warning") == 1 and result.out.count("helth") == 1
    as_json = json.loads(cli("rules", "check", "--format", "json").out)
    assert [w["message"] for w in as_json["warnings"]] == [
        "warning: suppress rule `unhappy`: no customer has attribute `plna`; did you mean `plan`?"
    ]
    (unseen,) = as_json["unseen_attributes"]
    assert unseen["name"] == "helth" and unseen["rule"] == "suppress rule `unhappy`"
    assert (unseen["line"], unseen["column"]) == (4, 11)


def test_rules_check_as_json(cli: Cli) -> None:
    cli("init", ".")
    ok = json.loads(cli("rules", "check", "--format", "json").out)
    assert ok["ok"] is True and ok["problems"] == [] and ok["rules_version"]
    assert ok["counts"]["files"] >= 1 and ok["counts"]["playbooks"] >= 1
    (cli.cwd / "rules" / "indent.yaml").write_text(BAD_INDENT, encoding="utf-8")
    result = cli("rules", "check", "--format", "json", check=False)
    assert result.code == 1
    out = json.loads(result.out)
    assert out["ok"] is False and out["counts"] is None
    (problem,) = out["problems"]
    assert problem["file"].endswith("rules/indent.yaml")
    assert (problem["line"], problem["column"]) == (4, 4)
    assert problem["message"].startswith("bad indentation")


def test_rules_check_summary_counts_in_words(cli: Cli) -> None:
    (cli.cwd / "rules").mkdir()
    (cli.cwd / "templates").mkdir()
    (cli.cwd / "rules" / "one.yaml").write_text(
        "limits:\n  - name: weekly\n    max: 3\n    per: 7d\n", encoding="utf-8"
    )
    out = cli("rules", "check").out
    assert "rules: 1 file, 1 limit, 0 send windows, 0 suppress rules" in out
