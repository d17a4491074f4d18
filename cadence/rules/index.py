"""Which rules can apply to a message, worked out once when the rules are built.

A filter reads five fields of a message (role, category, topic, human, channel), and rule files
name few values of each. A value no filter names behaves like any other such value, so a message
is classified by those five fields with every unnamed value folded into one: the planner looks up
the rules of that class instead of testing every rule's filter for every message (and every
member of every email in the ledger), which was a large share of its time.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace
from itertools import product
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from cadence.model import Message
    from cadence.rules.model import (
        Filter,
        HoldRule,
        Limit,
        MergeRule,
        Rules,
        SendWindow,
        SuppressRule,
    )

#: stands for every value no filter names
_OTHER = object()
#: more classes than this are not listed in advance (each message is then matched rule by
#: rule, as without an index): a rule file naming hundreds of values must not cost memory
_MAX_CLASSES = 4096

Key = tuple[object, object, object, bool, object]


@dataclass(frozen=True, slots=True)
class Applicable:
    """The rules whose filters match one class of messages, in their file order."""

    limits: tuple[Limit, ...]
    #: `id()` of each of `limits`: membership by identity, as two limits may be equal (and
    #: share a name) in rules built by hand; the Rules hold them, so the ids stay theirs
    limit_ids: frozenset[int]
    suppress: tuple[SuppressRule, ...]
    hold: tuple[HoldRule, ...]
    window: SendWindow | None  # the first send window that matches: the one that applies
    merge: tuple[MergeRule, ...]


class RuleIndex:
    """`applicable(message)`: the rules of its class, looked up in a table built here."""

    __slots__ = ("_categories", "_channels", "_roles", "_rules", "_table", "_topics")

    def __init__(self, rules: Rules) -> None:
        self._rules = rules
        filters: list[Filter] = [
            *(x.filter for x in rules.limits),
            *(x.filter for x in rules.send_windows),
            *(x.filter for x in rules.suppress),
            *(x.filter for x in rules.hold),
            *(x.filter for x in rules.merge),
        ]
        self._roles = _named(f.roles for f in filters)
        self._categories = _named(f.categories for f in filters)
        self._topics = _named(f.topics for f in filters)
        self._channels = _named(f.channels for f in filters)
        self._table: dict[Key, Applicable] | None = None
        sizes = (len(self._roles) + 1) * (len(self._categories) + 1) * (len(self._topics) + 1)
        sizes *= len(self._channels) + 1
        if sizes * 2 <= _MAX_CLASSES:
            self._table = {
                key: self._match(*key)
                for key in product(
                    [*self._roles, _OTHER],
                    [*self._categories, _OTHER],
                    [*self._topics, _OTHER],
                    [False, True],
                    [*self._channels, _OTHER],
                )
            }

    def applicable(self, message: Message) -> Applicable:
        if self._table is None:
            return self._match(
                message.role, message.category, message.topic, message.human, message.channel
            )
        return self._table[
            (
                message.role if message.role in self._roles else _OTHER,
                message.category if message.category in self._categories else _OTHER,
                message.topic if message.topic in self._topics else _OTHER,
                message.human,
                message.channel if message.channel in self._channels else _OTHER,
            )
        ]

    def _match(
        self, role: object, category: object, topic: object, human: bool, channel: object
    ) -> Applicable:
        def hit(f: Filter) -> bool:
            # _OTHER is in no filter's set, as an unnamed value is not
            return f.matches_fields(role, category, topic, human, channel)

        rules = self._rules
        limits = tuple(x for x in rules.limits if hit(x.filter))
        # a `same` rule's channels say which touches make a message redundant, not which
        # messages it judges (those are emails cadence sends)
        suppress = tuple(
            x
            for x in rules.suppress
            if hit(replace(x.filter, channels=None) if x.same is not None else x.filter)
        )
        return Applicable(
            limits=limits,
            limit_ids=frozenset(id(x) for x in limits),
            suppress=suppress,
            hold=tuple(x for x in rules.hold if hit(x.filter)),
            window=next((x for x in rules.send_windows if hit(x.filter)), None),
            merge=tuple(x for x in rules.merge if hit(x.filter)),
        )


def _named(sets: Iterable[frozenset[str] | None]) -> frozenset[object]:
    return frozenset(v for s in sets if s is not None for v in s)
