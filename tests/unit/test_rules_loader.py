"""The rules loader: the starter rules compile to the objects the planner reads, and every
mistake a CSM can make comes out as FILE:LINE:COL with a message that says what to do."""

from __future__ import annotations

import hashlib
from datetime import time, timedelta
from pathlib import Path

import pytest

from cadence.rules import RuleError, RuleErrors, load_rules
from cadence.rules.compile import parse_days, parse_hours
from cadence.rules.model import (
    DEFAULT_PRIORITIES,
    CalendarUnit,
    Filter,
    Over,
    SameKey,
    Scope,
)
from cadence.rules.schema import json_schema

REPO = Path(__file__).resolve().parents[2]


def write(folder: Path, name: str, text: str | bytes) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text, encoding="utf-8")
    return folder


def errors_of(folder: Path) -> list[RuleError]:
    with pytest.raises(RuleErrors) as info:
        load_rules(folder)
    return info.value.errors


def one_error(tmp_path: Path, text: str | bytes) -> tuple[int, int, str]:
    """The single error of a one-file folder, as (line, column, message)."""
    errors = errors_of(write(tmp_path, "r.yaml", text))
    assert len(errors) == 1, [str(e) for e in errors]
    error = errors[0]
    assert error.file == str(tmp_path / "r.yaml")
    assert str(error) == f"{error.file}:{error.line}:{error.column}: {error.message}"
    return error.line, error.column, error.message


# -- the starter rules ---------------------------------------------------------------------


def test_starter_rules_compile_to_the_expected_objects() -> None:
    rules = load_rules(REPO / "rules")
    assert dict(rules.priorities) == dict(DEFAULT_PRIORITIES)
    assert rules.max_delay == timedelta(days=7)
    assert [Path(f).name for f in rules.files] == ["fatigue.yaml", "playbooks.yaml"]

    limits = {lim.name: lim for lim in rules.limits}
    assert list(limits) == ["weekly-total", "breathing-room", "account-announcements"]
    weekly = limits["weekly-total"]
    assert (weekly.max, weekly.per, weekly.filter) == (3, timedelta(days=7), Filter())
    assert (weekly.scope, weekly.over, weekly.calendar) == (Scope.CUSTOMER, Over.DEFER, None)
    assert limits["breathing-room"].min_gap == timedelta(hours=20)
    assert limits["breathing-room"].max is None
    account = limits["account-announcements"]
    assert account.scope == Scope.ACCOUNT and account.over == Over.DEFER  # waits, not dropped
    assert account.filter.categories == frozenset({"announcement"}) and account.max == 3

    support, everyone = rules.send_windows
    assert support.filter.roles == frozenset({"support"}) and support.days == frozenset(range(7))
    assert (support.start, support.end) == (time(7), time(21))
    assert everyone.filter == Filter() and everyone.days == frozenset(range(5))
    assert (everyone.start, everyone.end) == (time(9), time(17))

    # suppression only for true redundancy; a passing reason holds instead
    suppress = {rule.name: rule for rule in rules.suppress}
    assert set(suppress) == {
        "same-topic-twice",
        "call-covers-the-topic",
        "no-check-in-after-a-person",
    }
    same = suppress["same-topic-twice"]
    assert (same.same, same.within, same.when) == (SameKey.TOPIC, timedelta(days=14), None)
    hold = {rule.name: rule for rule in rules.hold}
    assert set(hold) == {
        "no-promotion-while-ticket-open",
        "no-marketing-in-first-two-weeks",
        "quiet-after-a-person",
        "quiet-after-a-reply",
    }
    tickets = hold["no-promotion-while-ticket-open"]
    assert tickets.filter.categories == frozenset({"tip", "announcement", "offer"})
    assert tickets.while_.source == "customer.open_tickets | default(0) > 0"

    # a reply ends the automated follow-ups of the role it answers
    (reply,) = rules.cancel
    assert (reply.name, reply.on) == ("a-reply-ends-the-follow-ups", ("replied",))
    assert reply.filter.human is False
    assert reply.filter.categories == frozenset({"check-in", "follow-up"})

    onboarding, weekly_digest = rules.merge
    assert onboarding.name == "onboarding-digest" and onboarding.template == "digest"
    assert onboarding.filter.categories == frozenset({"onboarding", "product-tour"})
    assert (onboarding.window, onboarding.max_items, onboarding.at) == (
        timedelta(hours=48),
        4,
        None,
    )
    assert weekly_digest.filter.categories == frozenset({"tip", "newsletter", "announcement"})
    assert (weekly_digest.at, weekly_digest.days) == (time(9), frozenset({0, 3}))

    books = {pb.name: pb for pb in rules.playbooks}
    after = books["after-onboarding"]
    assert after.on == ("onboarding_completed",) and after.wait == timedelta(days=14)
    assert after.cancel_on == ("ticket_opened", "churned")
    assert after.cooldown == timedelta(days=60)
    assert after.send.role == "success" and after.send.category == "check-in"
    assert after.send.template == "checkin_after_onboarding"
    assert after.send.expires_after == timedelta(days=7)
    assert books["ticket-resolved-follow-up"].wait == timedelta(days=3)
    quiet = books["quiet-customer"]
    assert quiet.on == () and quiet.every == timedelta(days=1)
    assert quiet.cooldown == timedelta(days=30)
    owner = books["tell-the-owner"]
    assert owner.send.to == "owner" and owner.send.category == "alert"
    assert books["renewal-check-in"].wait == timedelta(0)
    assert rules.templates() == {
        "digest",
        "checkin_after_onboarding",
        "ticket_follow_up",
        "checkin_quiet",
        "owner_alert",
        "checkin_renewal",
    }
    # every rule points back at its place in its file
    assert after.location.file.endswith("playbooks.yaml") and after.location.line > 1
    assert weekly.location.file.endswith("fatigue.yaml")


def test_every_starter_rule_says_why_it_exists() -> None:
    """Each rule (a `- ` item of a section) follows a comment line: the reason for it."""
    for path in (REPO / "rules").glob("*.yaml"):
        lines = path.read_text().splitlines()
        for i, line in enumerate(lines):
            if line.startswith("  - "):
                above = lines[i - 1].strip()
                assert above.startswith("#"), f"{path.name}:{i + 1} has no why"


# -- positions of each kind of mistake ----------------------------------------------------


def test_unknown_key_names_the_allowed_keys_and_the_nearest(tmp_path: Path) -> None:
    line, col, message = one_error(
        tmp_path, "limits:\n  - name: weekly-total\n    maxx: 3\n    per: 7d\n"
    )
    assert (line, col) == (3, 5)
    assert message == (
        "unknown key `maxx` in limit `weekly-total`; allowed: categories, channels, human, max, "
        "min_gap, name, over, per, roles, scope, topics, when, window; did you mean `max`?"
    )


def test_unknown_key_at_the_top_and_inside_send(tmp_path: Path) -> None:
    assert one_error(tmp_path / "a", "limts: []\n")[:2] == (1, 1)
    assert "did you mean `limits`?" in one_error(tmp_path / "b", "limts: []\n")[2]
    line, col, message = one_error(
        tmp_path / "c", "playbooks:\n  - name: p\n    on: x\n    send: {templte: t}\n"
    )
    assert (line, col) == (4, 12)
    assert "unknown key `templte` in playbook `p`" in message
    assert "did you mean `template`?" in message


@pytest.mark.parametrize(
    ("text", "line", "col", "fragment"),
    [
        # a bad duration says the forms
        ("limits:\n  - name: gap\n    min_gap: 20x\n", 3, 14, "'20x' is not a duration"),
        ("max_delay: 7days\n", 1, 12, "s (seconds), m (minutes), h (hours), d (days)"),
        ("limits:\n  - name: a\n    max: 1\n    per: 7\n", 4, 10, "'7' is not a duration"),
        (
            "playbooks:\n  - name: p\n    on: x\n    send: {template: t, expires_after: 1y}\n",
            4,
            40,
            "'1y' is not a duration",
        ),
        ("limits:\n  - name: a\n    max: 1\n    per: 0d\n", 4, 10, "`per` must be longer than 0"),
        (
            "playbooks:\n  - name: p\n    every: 0m\n    send: {template: t}\n",
            3,
            12,
            "`every` must be longer than 0",
        ),
        # a missing name, at the item
        ("limits:\n  - max: 3\n    per: 7d\n", 2, 5, "limit #1 needs `name`"),
        ("suppress:\n  - roles: [x]\n", 2, 5, "suppress rule #1 needs `name`"),
        # same without within, at `same`
        (
            "suppress:\n  - name: s\n    same: topic\n",
            3,
            11,
            "suppress rule `s`: `same` needs `within`",
        ),
        # a limit that limits nothing, at the item
        (
            "limits:\n  - name: a\n    roles: [x]\n",
            2,
            5,
            "limit `a` needs `max` with `per`, or `min_gap`",
        ),
        ("limits:\n  - name: a\n    max: 3\n", 2, 5, "`max` and `per` go together; add `per`"),
        # calendar windows
        (
            "limits:\n  - name: c\n    max: 2\n    per: 3d\n    window: calendar\n",
            4,
            10,
            "with window: calendar, `per` is 1d (a day), 7d or 1w",
        ),
        (
            "limits:\n  - name: c\n    max: 2\n    per: month\n",
            4,
            10,
            "add `window: calendar`",
        ),
        ("limits:\n  - name: c\n    min_gap: 1h\n    window: weekly\n", 4, 13, "not `weekly`"),
        # days and hours
        (
            'send_windows:\n  - days: mon-fry\n    hours: "09:00-17:00"\n',
            2,
            11,
            "`mon-fry` is not a range of days like mon-fri",
        ),
        ("send_windows:\n  - days: someday\n", 2, 11, "`someday` is not a day"),
        ('send_windows:\n  - hours: "25:00-26:00"\n', 2, 12, "25:00 is not a time of day"),
        ('send_windows:\n  - hours: "9-17"\n', 2, 12, 'not hours like "09:00-17:30"'),
        ("send_windows:\n  - hours: 9\n", 2, 12, 'not hours like "09:00-17:30"'),
        ('merge:\n  - name: m\n    at: "25:00"\n', 3, 9, "25:00 is not a time of day"),
        ("merge:\n  - name: m\n    days: mon\n", 3, 11, "`days` goes with `at`"),
        # playbooks
        ("playbooks:\n  - name: p\n    send: {template: x}\n", 2, 5, "needs `on`"),
        (
            "playbooks:\n  - name: p\n    on: x\n    send: {subject: hi}\n",
            4,
            11,
            "`send` needs `template`, or `subject` and `body_text`",
        ),
        (
            "playbooks:\n  - name: p\n    on: x\n    send: {template: t, to: boss}\n",
            4,
            29,
            "`send.to` in playbook `p`: must be 'owner', not `boss`",
        ),
        (
            "playbooks:\n  - name: p\n    on: 5\n    send: {template: t}\n",
            3,
            9,
            "`on` in playbook `p`: should be text or a list, like [a, b], not `5`",
        ),
        # types, in the words of YAML
        ("limits:\n  - name: a\n    max: true\n    per: 7d\n", 3, 10, "not `true`"),
        ("limits:\n  - name: a\n    max: three\n    per: 7d\n", 3, 10, "a whole number"),
        ("limits:\n  - name: a\n    roles: marketing\n    min_gap: 1h\n", 3, 12, "a list"),
        ("limits:\n  - name: a\n    min_gap: 1h\n    scope: acct\n", 4, 12, "mean `account`?"),
        ("merge:\n  - name: m\n    max_items: 1\n", 3, 16, "should be at least 2, not `1`"),
        ("limits:\n  - weekly\n", 2, 5, "limit #1 should be a mapping of keys"),
        ("limits:\n  name: a\n", 2, 3, "`limits` is a list (items start with -)"),
        ("- a\n", 1, 1, "a rule file is a mapping of keys like limits:"),
        # YAML itself
        ("limits:\n  - name: x\n    max: [1\n", 4, 1, "not valid YAML"),
        ("limits:\n\t- name: a\n", 2, 1, "bad indentation: a tab character"),
        ("limits:\n  - name: a\n    max: 1\n    max: 2\n", 4, 5, "duplicate key"),
    ],
)
def test_each_mistake_at_its_place(
    tmp_path: Path, text: str, line: int, col: int, fragment: str
) -> None:
    got = one_error(tmp_path, text)
    assert got[:2] == (line, col), got
    assert fragment in got[2], got


def test_expression_errors_at_the_value(tmp_path: Path) -> None:
    line, col, message = one_error(
        tmp_path / "a", "suppress:\n  - name: s\n    when: customer.plan ==\n"
    )
    assert (line, col) == (3, 11)
    assert message == "bad expression `customer.plan ==`: unexpected 'end of the expression'"
    line, col, message = one_error(
        tmp_path / "b", 'suppress:\n  - name: s\n    when: custmer.plan == "x"\n'
    )
    assert (line, col) == (3, 11)
    assert message.startswith('unknown name `custmer` in `custmer.plan == "x"`; the names are ')
    assert message.endswith("did you mean `customer`?")
    line, col, _ = one_error(
        tmp_path / "c",
        "playbooks:\n  - name: p\n    every: 1d\n    when: >-\n      days_since_contct() > 3\n"
        "    send: {template: t}\n",
    )
    assert (line, col) == (4, 11)


def test_a_file_that_is_not_utf8(tmp_path: Path) -> None:
    line, col, message = one_error(tmp_path, b"limits:\n  - name: caf\xe9\n")
    assert (line, col) == (2, 14) and "UTF-8" in message


# -- across files --------------------------------------------------------------------------


def test_all_errors_of_all_files_together_in_order(tmp_path: Path) -> None:
    write(
        tmp_path,
        "a.yaml",
        "limits:\n  - name: weekly\n    maxx: 3\n  - name: gap\n    min_gap: 20x\n",
    )
    write(tmp_path, "b.yaml", "send_windows:\n  - days: mon-fry\nsuppress:\n  - same: topic\n")
    a, b = tmp_path / "a.yaml", tmp_path / "b.yaml"
    assert [(e.file, e.line, e.column) for e in errors_of(tmp_path)] == [
        (str(a), 3, 5),
        (str(a), 5, 14),
        (str(b), 2, 11),
        (str(b), 4, 5),
    ]
    with pytest.raises(RuleErrors) as info:
        load_rules(tmp_path)
    assert str(info.value).splitlines()[0].startswith(f"{a}:3:5: unknown key `maxx`")


def test_names_are_unique_across_kinds_and_files(tmp_path: Path) -> None:
    write(tmp_path, "a.yaml", "limits:\n  - name: quiet\n    min_gap: 1h\n")
    write(
        tmp_path,
        "b.yaml",
        "merge:\n  - name: quiet\n"
        "playbooks:\n  - name: quiet\n    every: 1d\n    send: {template: t}\n",
    )
    a, b = tmp_path / "a.yaml", tmp_path / "b.yaml"
    assert [str(e) for e in errors_of(tmp_path)] == [
        f"{b}:2:11: the name `quiet` is already used at {a}:2:11",
        f"{b}:4:11: the name `quiet` is already used at {a}:2:11",
    ]


def test_priorities_merge_and_max_delay_is_set_once(tmp_path: Path) -> None:
    write(tmp_path, "a.yaml", "priorities: {support: 100, partners: 40}\nmax_delay: 3d\n")
    write(tmp_path, "b.yaml", "priorities: {partners: 40, legal: 95}\n")
    rules = load_rules(tmp_path)
    assert rules.priorities["partners"] == 40 and rules.priorities["legal"] == 95
    assert rules.priorities["marketing"] == 10  # defaults stay for roles not named
    assert rules.max_delay == timedelta(days=3)

    write(tmp_path, "c.yaml", "priorities:\n  partners: 50\nmax_delay: 5d\n")
    write(tmp_path, "d.yaml", "max_delay: 9d\npriorities: {partners: 30}\n")
    a, c, d = (tmp_path / f"{x}.yaml" for x in "acd")
    assert [str(e) for e in errors_of(tmp_path)] == [  # always pointing at the first
        f"{c}:2:13: priority of `partners` is already 40 at {a}:1:38",
        f"{c}:3:12: max_delay is already set at {a}:2:12",
        f"{d}:1:12: max_delay is already set at {a}:2:12",
        f"{d}:2:24: priority of `partners` is already 40 at {a}:1:38",
    ]


def test_a_missing_folder_is_named(tmp_path: Path) -> None:
    missing = tmp_path / "nope"
    (error,) = errors_of(missing)
    assert error.file == str(missing) and "no such rules folder" in error.message


def test_an_empty_folder_or_file_gives_the_defaults(tmp_path: Path) -> None:
    rules = load_rules(tmp_path)
    assert rules.limits == () and rules.playbooks == () and rules.files == ()
    assert rules.max_delay == timedelta(days=7)
    assert dict(rules.priorities) == dict(DEFAULT_PRIORITIES)
    write(tmp_path, "empty.yaml", "# nothing yet\n")
    write(tmp_path, "notes.txt", "limits: [oops\n")  # not *.yaml: not read
    assert load_rules(tmp_path).limits == ()


def test_version_is_a_digest_of_names_and_bytes(tmp_path: Path) -> None:
    write(tmp_path, "b.yaml", "max_delay: 7d\n")
    write(tmp_path, "a.yaml", "limits: []\n")
    digest = hashlib.sha256()
    for name in ("a.yaml", "b.yaml"):
        digest.update(name.encode() + b"\0" + (tmp_path / name).read_bytes() + b"\0")
    first = load_rules(tmp_path).version
    assert first == digest.hexdigest()[:12]
    write(tmp_path, "b.yaml", "max_delay: 7d  # a comment changes the bytes\n")
    second = load_rules(tmp_path).version
    assert second != first
    (tmp_path / "b.yaml").rename(tmp_path / "c.yaml")
    assert load_rules(tmp_path).version not in (first, second)


# -- what compiles to what -----------------------------------------------------------------


def test_calendar_limits_and_daily_digests(tmp_path: Path) -> None:
    folder = write(
        tmp_path,
        "r.yaml",
        "limits:\n"
        "  - {name: d, max: 1, per: 1d, window: calendar}\n"
        "  - {name: w, max: 2, per: 1w, window: calendar}\n"
        "  - {name: w7, max: 2, per: 7d, window: calendar}\n"
        "  - {name: m, max: 4, per: month, window: calendar}\n"
        'merge:\n  - {name: daily, categories: [tip], at: "09:00", days: mon-fri}\n',
    )
    rules = load_rules(folder)
    assert [lim.calendar for lim in rules.limits] == [
        CalendarUnit.DAY,
        CalendarUnit.WEEK,
        CalendarUnit.WEEK,
        CalendarUnit.MONTH,
    ]
    assert all(lim.per is None for lim in rules.limits)
    (daily,) = rules.merge
    assert daily.at == time(9) and daily.days == frozenset(range(5))
    assert (daily.template, daily.max_items) == ("digest", 10)


def test_playbook_on_a_list_and_ready_text(tmp_path: Path) -> None:
    folder = write(
        tmp_path,
        "p.yaml",
        "playbooks:\n"
        "  - name: p\n"
        "    on: [a, b]\n"
        "    send: {subject: Hello, body_text: Hi, role: sales, priority: 60, "
        "transactional: true, data: {x: 1}}\n",
    )
    (pb,) = load_rules(folder).playbooks
    assert pb.on == ("a", "b") and pb.every is None and pb.wait == timedelta(0)
    assert (pb.send.subject, pb.send.body_text, pb.send.template) == ("Hello", "Hi", None)
    assert (pb.send.role, pb.send.priority, pb.send.transactional) == ("sales", 60, True)
    assert dict(pb.send.data) == {"x": 1}


@pytest.mark.parametrize(
    ("text", "days"),
    [
        ("mon-fri", {0, 1, 2, 3, 4}),
        ("sat,sun", {5, 6}),
        ("mon-sun", set(range(7))),
        ("wed", {2}),
        ("fri-mon", {4, 5, 6, 0}),
        ("sun-sun", {6}),
        ("Mon-Wed, sat", {0, 1, 2, 5}),
    ],
)
def test_days(text: str, days: set[int]) -> None:
    assert parse_days(text) == days


@pytest.mark.parametrize("text", ["mon-fry", "weekdays", "mon-", "", "1-5"])
def test_bad_days(text: str) -> None:
    with pytest.raises(ValueError):
        parse_days(text)


@pytest.mark.parametrize(
    ("text", "start", "end"),
    [
        ("09:00-17:30", time(9), time(17, 30)),
        ("9:00 - 17:00", time(9), time(17)),
        ("22:00-06:00", time(22), time(6)),  # runs past midnight
        ("00:00-00:00", time(0), time(0)),  # all day
        ("00:00-24:00", time(0), time(0)),  # all day
    ],
)
def test_hours(text: str, start: time, end: time) -> None:
    assert parse_hours(text) == (start, end)


@pytest.mark.parametrize("text", ["25:00-26:00", "09:60-10:00", "24:00-09:00", "9-17", "09:00"])
def test_bad_hours(text: str) -> None:
    with pytest.raises(ValueError):
        parse_hours(text)


def test_a_night_window_compiles(tmp_path: Path) -> None:
    folder = write(
        tmp_path,
        "w.yaml",
        'send_windows:\n  - {name: night, days: fri-mon, hours: "22:00-06:00"}\n',
    )
    (window,) = load_rules(folder).send_windows
    assert (window.start, window.end, window.days) == (time(22), time(6), frozenset({4, 5, 6, 0}))
    assert window.describe() == "night (mon,fri,sat,sun 22:00-06:00)"


# -- the JSON Schema -----------------------------------------------------------------------


def test_json_schema_forbids_unknown_keys_and_describes_every_key() -> None:
    schema = json_schema()
    assert set(schema["properties"]) == {
        "priorities",
        "max_delay",
        "limits",
        "send_windows",
        "suppress",
        "hold",
        "merge",
        "playbooks",
        "cancel",
    }
    assert schema["additionalProperties"] is False
    for name, model in schema["$defs"].items():
        assert model["additionalProperties"] is False, name
        for key, prop in model["properties"].items():
            assert prop.get("description"), f"{name}.{key} has no description"
    per = schema["$defs"]["LimitFile"]["properties"]["per"]["anyOf"][0]
    assert "month" in per["pattern"]
