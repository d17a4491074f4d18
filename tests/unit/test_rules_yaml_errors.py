"""A rule file that does not parse says what a person would fix: a key indented wrong is
`bad indentation`, at the key, naming the key it should line up with; not ruamel's parser
states (`expected <block end>, but found '<block mapping start>'`)."""

from __future__ import annotations

from pathlib import Path

import pytest

from cadence.rules import RuleErrors, load_rules


def _problem(tmp_path: Path, text: str) -> str:
    (tmp_path / "r.yaml").write_text(text, encoding="utf-8")
    with pytest.raises(RuleErrors) as caught:
        load_rules(tmp_path)
    (error,) = caught.value.errors
    return str(error).replace(str(tmp_path / "r.yaml"), "r.yaml")


def test_a_key_indented_too_little(tmp_path: Path) -> None:
    text = "limits:\n  - name: x\n    max: 3\n   per: 7d\n"
    assert _problem(tmp_path, text) == (
        "r.yaml:4:4: bad indentation: `per` starts at column 4, where no key or item above "
        "it does; `max` on line 3 starts at column 5"
    )


def test_a_key_indented_too_deep(tmp_path: Path) -> None:
    text = "limits:\n  - name: x\n    max: 3\n      per: 7d\n"
    assert _problem(tmp_path, text) == (
        "r.yaml:4:7: bad indentation: `per` at column 7 is deeper than `max` on line 3 "
        "(column 5), so it reads as more of `max`'s value; line it up with `max`"
    )


def test_a_key_in_line_with_the_dashes(tmp_path: Path) -> None:
    text = "send_windows:\n  - days: mon\n    hours: x\n  days: y\n"
    message = _problem(tmp_path, text)
    assert message.startswith("r.yaml:4:3: bad indentation: `days` at column 3")
    assert "a key of that item starts at column 5" in message


def test_a_tab(tmp_path: Path) -> None:
    message = _problem(tmp_path, "limits:\n\t- name: x\n")
    assert message == "r.yaml:2:1: bad indentation: a tab character; indent with spaces, not tabs"


def test_a_colon_inside_a_value_is_not_called_indentation(tmp_path: Path) -> None:
    message = _problem(tmp_path, "suppress:\n  - name: x\n    when: a: b\n")
    assert message == "r.yaml:3:12: `: ` inside a value: put the value in quotes"


def test_other_yaml_errors_keep_their_words(tmp_path: Path) -> None:
    message = _problem(tmp_path, "limits: [a, b\n")
    assert message.startswith("r.yaml:2:1: not valid YAML: ")
    assert "bad indentation" not in message
