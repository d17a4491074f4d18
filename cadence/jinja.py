"""The one Jinja2 sandbox, shared by rule expressions and email templates.

The contract promises a single expression language for both; building both environments here
keeps their filters, tests and undefined-handling the same.
"""

from __future__ import annotations

from jinja2 import BaseLoader, StrictUndefined
from jinja2.sandbox import ImmutableSandboxedEnvironment


def sandbox(
    loader: BaseLoader | None = None, *, html: bool = False
) -> ImmutableSandboxedEnvironment:
    """A sandboxed environment where an undefined name is an error, never a silent blank.

    `html=True` autoescapes everything rendered, for the HTML part of an email.
    """
    return ImmutableSandboxedEnvironment(
        loader=loader,
        undefined=StrictUndefined,
        autoescape=html,
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
    )
