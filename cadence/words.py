"""Things said in words: counts ("1 email", "2 emails", never "1 emails"), and a value as
the user wrote it, in an error that quotes it."""

from __future__ import annotations

import json
from typing import Any

#: words whose plural is not the word plus "s"
_IRREGULAR = {"pass": "passes"}


def plural(n: int, word: str, many: str | None = None) -> str:
    """`n` and the word, in the singular for exactly one: `plural(1, "email")` is "1 email",
    `plural(3, "email")` "3 emails"; `many` names a plural that is not `word` + "s"."""
    if n == 1:
        return f"{n} {word}"
    return f"{n} {many or _IRREGULAR.get(word) or word + 's'}"


def show(value: Any, limit: int = 60) -> str:
    """A value as the user wrote it (JSON), cut short: error reasons stay one readable line."""
    try:
        text = json.dumps(value, ensure_ascii=False)
    except (TypeError, ValueError):
        text = repr(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"
