"""Counting things in words: "1 email", "2 emails", never "1 emails"."""

from __future__ import annotations

#: words whose plural is not the word plus "s"
_IRREGULAR = {"pass": "passes"}


def plural(n: int, word: str, many: str | None = None) -> str:
    """`n` and the word, in the singular for exactly one: `plural(1, "email")` is "1 email",
    `plural(3, "email")` "3 emails"; `many` names a plural that is not `word` + "s"."""
    if n == 1:
        return f"{n} {word}"
    return f"{n} {many or _IRREGULAR.get(word) or word + 's'}"
