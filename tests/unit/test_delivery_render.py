"""Rendering: strict variables, escaping only in HTML, digests, and errors that point at a line."""

from __future__ import annotations

from pathlib import Path

import pytest

from cadence.delivery.render import DigestItem, Renderer, RenderError
from cadence.model import Customer, Message, Sender

ANA = Customer(
    id="c-17",
    email="ana@acme.test",
    name="Ana <& Co>",
    timezone="America/New_York",
    account="acme",
    attributes={"plan": "pro", "items": 3},
)


def templates(tmp_path: Path, **files: str) -> Renderer:
    for name, text in files.items():
        (tmp_path / name.replace("__", ".")).write_text(text, encoding="utf-8")
    return Renderer(tmp_path, sender=Sender("success@vendor.test", "Vendor"))


def msg(**kw: object) -> Message:
    base: dict[str, object] = {"id": "mkt-301", "customer_id": "c-17", "role": "marketing"}
    base.update(kw)
    return Message(**base)  # type: ignore[arg-type]


def test_template_sees_customer_message_data_sender_and_extra(tmp_path: Path) -> None:
    r = templates(
        tmp_path,
        hello__subject__j2="  Hi {{ customer.name }},\n  news about {{ data.feature }}  \n",
        hello__text__j2=(
            "Hi {{ customer.name }} ({{ customer.plan }}, {{ customer.items }} seats),\n"
            "{{ message.role }}/{{ message.category }}: {{ data.feature }}\n"
            "-- {{ sender.name }}\n{{ unsubscribe_url }}\n"
        ),
    )
    out = r.render_message(
        msg(template="hello", category="announcement", data={"feature": "Reports"}),
        ANA,
        {"unsubscribe_url": "http://u/x"},
    )
    assert out.subject == "Hi Ana <& Co>, news about Reports"
    assert out.text == (
        "Hi Ana <& Co> (pro, 3 seats),\nmarketing/announcement: Reports\n-- Vendor\nhttp://u/x\n"
    )
    assert out.html is None


def test_html_is_autoescaped_text_and_subject_are_not(tmp_path: Path) -> None:
    r = templates(
        tmp_path,
        t__subject__j2="{{ customer.name }}",
        t__text__j2="{{ customer.name }} {{ data.note }}",
        t__html__j2="<p>{{ customer.name }} {{ data.note }}</p>",
    )
    out = r.render_message(msg(template="t", data={"note": "<b>x</b>"}), ANA)
    assert out.subject == "Ana <& Co>"
    assert out.text == "Ana <& Co> <b>x</b>\n"
    assert out.html == "<p>Ana &lt;&amp; Co&gt; &lt;b&gt;x&lt;/b&gt;</p>\n"


def test_undefined_variable_fails_with_file_and_line(tmp_path: Path) -> None:
    r = templates(
        tmp_path,
        t__subject__j2="ok",
        t__text__j2="line one\nline two {{ data.missing }}\n",
    )
    with pytest.raises(RenderError) as info:
        r.render_message(msg(template="t"), ANA)
    err = info.value
    assert (err.template, err.file, err.line) == ("t", "t.text.j2", 2)
    assert "missing" in err.reason
    assert str(err).startswith("template 't': t.text.j2:2: ")


def test_unknown_customer_attribute_fails(tmp_path: Path) -> None:
    r = templates(tmp_path, t__subject__j2="{{ customer.nope }}", t__text__j2="x")
    with pytest.raises(RenderError) as info:
        r.render_message(msg(template="t"), ANA)
    assert info.value.file == "t.subject.j2"
    assert "nope" in info.value.reason


def test_default_filter_covers_optional_data(tmp_path: Path) -> None:
    r = templates(
        tmp_path,
        t__subject__j2="About {{ data.ticket | default('your ticket') }}",
        t__text__j2="{% if data.reply is defined %}{{ data.reply }}{% else %}none{% endif %}",
    )
    assert r.render_message(msg(template="t"), ANA).subject == "About your ticket"
    out = r.render_message(msg(template="t", data={"ticket": "T-1", "reply": "done"}), ANA)
    assert (out.subject, out.text) == ("About T-1", "done\n")


def test_data_keys_are_not_shadowed_by_dict_methods(tmp_path: Path) -> None:
    r = templates(tmp_path, t__subject__j2="{{ data.items }} {{ data.keys }}", t__text__j2="x")
    out = r.render_message(msg(template="t", data={"items": "3 items", "keys": "2 keys"}), ANA)
    assert out.subject == "3 items 2 keys"


def test_ready_message_is_used_as_it_is(tmp_path: Path) -> None:
    r = templates(tmp_path)
    ready = msg(subject="Your\n  invoice {{ x }}", body_text="Hello {{ not a template }}")
    out = r.render_message(ready, ANA)
    assert out.subject == "Your invoice {{ x }}"
    assert out.text == "Hello {{ not a template }}\n"
    out = r.render_message(msg(subject="s", body_text="t", body_html="<p>t</p>"), ANA)
    assert out.html == "<p>t</p>"


def test_message_without_template_or_body(tmp_path: Path) -> None:
    with pytest.raises(RenderError, match="neither a template nor a subject"):
        templates(tmp_path).render_message(msg(subject="only a subject"), ANA)


def test_missing_files_and_syntax_errors(tmp_path: Path) -> None:
    r = templates(
        tmp_path,
        only_subject__subject__j2="s",
        broken__subject__j2="s",
        broken__text__j2="fine\n{% if %}\n",
        badhtml__subject__j2="s",
        badhtml__text__j2="t",
        badhtml__html__j2="<p>\n\n{{ x }\n",
        good__subject__j2="s",
        good__text__j2="t",
    )
    problems = r.check(["good", "only_subject", "broken", "badhtml", "nowhere", "../etc"])
    assert set(problems) == {"only_subject", "broken", "badhtml", "nowhere", "../etc"}
    assert problems["only_subject"] == f"missing only_subject.text.j2 in {tmp_path}"
    assert problems["nowhere"].startswith("missing nowhere.subject.j2 and nowhere.text.j2")
    assert problems["broken"].startswith("broken.text.j2:2: ")
    assert problems["badhtml"].startswith("badhtml.html.j2:3: ")
    with pytest.raises(RenderError) as info:
        r.render_message(msg(template="broken"), ANA)
    assert (info.value.file, info.value.line) == ("broken.text.j2", 2)
    assert r.available() == ["badhtml", "broken", "good"]


def test_empty_subject_is_an_error(tmp_path: Path) -> None:
    r = templates(tmp_path, t__subject__j2="  \n ", t__text__j2="x")
    with pytest.raises(RenderError, match="the subject is empty"):
        r.render_message(msg(template="t"), ANA)


def test_sandbox_refuses_unsafe_access(tmp_path: Path) -> None:
    r = templates(tmp_path, t__subject__j2="s", t__text__j2="{{ customer.__class__.__mro__ }}")
    with pytest.raises(RenderError):
        r.render_message(msg(template="t"), ANA)


def test_digest_over_items(tmp_path: Path) -> None:
    r = templates(
        tmp_path,
        digest__subject__j2="{{ items | length }} updates from {{ sender.name }}",
        digest__text__j2=(
            "{% for item in items %}[{{ item.role }}] {{ item.sender.name }}: {{ item.subject }}\n"
            "{{ item.body_text }}{% endfor %}"
        ),
        digest__html__j2=(
            "{% for item in items %}<h2>{{ item.subject }}</h2>"
            "{{ item.body_html if item.body_html else item.body_text }}{% endfor %}"
        ),
    )
    one = msg(id="cs-12", role="success", subject="Welcome", body_text="Hi")
    two = msg(
        id="prd-7", role="product", subject="A <tour>", body_text="Look", body_html="<p>L</p>"
    )
    items = [
        DigestItem("success", Sender("kim@vendor.test", "Kim"), "Welcome", "Hi\n", None, one),
        DigestItem("product", Sender("p@vendor.test", None), "A <tour>", "Look\n", "<p>L</p>", two),
    ]
    out = r.render_digest("digest", ANA, items)
    assert out.subject == "2 updates from Vendor"
    assert out.text == "[success] Kim: Welcome\nHi\n[product] p@vendor.test: A <tour>\nLook\n"
    assert out.html == "<h2>Welcome</h2>Hi\n<h2>A &lt;tour&gt;</h2><p>L</p>\n"


def test_check_follows_layouts_and_includes(tmp_path: Path) -> None:
    r = templates(
        tmp_path,
        _base__text__j2="{% block content %}{% endblock %}\n{% if %}\n",
        _ok__text__j2="{% block content %}{% endblock %}",
        child__subject__j2="s",
        child__text__j2='{% extends "_base.text.j2" %}{% block content %}x{% endblock %}',
        lost__subject__j2="s",
        lost__text__j2='{% include "_nowhere.j2" %}',
        fine__subject__j2="s",
        fine__text__j2='{% extends "_ok.text.j2" %}{% block content %}x{% endblock %}',
    )
    problems = r.check(["child", "lost", "fine"])
    assert problems["child"].startswith("_base.text.j2:2: ")
    assert problems["lost"] == "_nowhere.j2 not found (used by lost.text.j2)"
    assert "fine" not in problems


def test_error_inside_a_layout_names_the_layout(tmp_path: Path) -> None:
    r = templates(
        tmp_path,
        _base__text__j2="Hi {{ customer.nickname }}\n{% block content %}{% endblock %}",
        child__subject__j2="s",
        child__text__j2='{% extends "_base.text.j2" %}{% block content %}x{% endblock %}',
    )
    with pytest.raises(RenderError) as info:
        r.render_message(msg(template="child"), ANA)
    assert (info.value.file, info.value.line) == ("_base.text.j2", 1)
    assert "nickname" in info.value.reason


def test_a_frozen_renderer_serves_runs_one_after_another_until_a_template_changes(
    tmp_path: Path,
) -> None:
    import os

    from cadence.delivery.render import frozen_renderer

    (tmp_path / "t.subject.j2").write_text("Hello", encoding="utf-8")
    (tmp_path / "t.text.j2").write_text("first body", encoding="utf-8")
    first = frozen_renderer(tmp_path)
    assert first.render_message(msg(template="t"), ANA).text == "first body\n"
    # the folder as it was: the same renderer, its templates compiled once
    assert frozen_renderer(tmp_path) is first
    body = tmp_path / "t.text.j2"
    body.write_text("second body", encoding="utf-8")
    os.utime(body, ns=(body.stat().st_atime_ns, body.stat().st_mtime_ns + 1_000_000))
    # a template changed: a new renderer, which reads it; the first keeps what it took
    second = frozen_renderer(tmp_path)
    assert second is not first
    assert second.render_message(msg(template="t"), ANA).text == "second body\n"
    assert first.render_message(msg(template="t"), ANA).text == "first body\n"
    # a template added is a change too
    (tmp_path / "u.subject.j2").write_text("Hi", encoding="utf-8")
    assert frozen_renderer(tmp_path) is not second
