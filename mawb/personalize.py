"""Personalization: a sandboxed Liquid environment for message fields.

Analysts write `Hi {{ first_name | default: "there" }}` in subjects and bodies. Templates
are untrusted text, so they run in python-liquid with no template loader (no `include`
or `render` of files), strict filters, and hard limits on loops, nesting and output size.
Undefined variables render as empty strings, which is what marketers expect.
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import TYPE_CHECKING, Any

from liquid import Environment
from liquid.exceptions import LiquidError

if TYPE_CHECKING:
    from collections.abc import Mapping

    from liquid import BoundTemplate


class _SandboxedEnvironment(Environment):
    context_depth_limit = 30
    loop_iteration_limit = 10_000
    output_stream_limit = 200_000
    local_namespace_limit = 20_000


_ENVIRONMENT = _SandboxedEnvironment()
# The longest text one rendering may produce; the SQL fast path enforces the same cap.
OUTPUT_LIMIT = _SandboxedEnvironment.output_stream_limit


class TemplateError(ValueError):
    """A Liquid template that does not parse or fails to render."""


@lru_cache(maxsize=4096)
def compile_template(text: str) -> BoundTemplate:
    """Parse once and cache: the same subject is rendered for a whole cohort."""
    try:
        return _ENVIRONMENT.from_string(text)
    except LiquidError as error:
        raise TemplateError(_first_line(error)) from None


def check_template(text: str) -> str | None:
    """The syntax error message of `text` (with line and column), or None when it parses."""
    try:
        compile_template(text)
    except TemplateError as error:
        return str(error)
    return None


def render(text: str, context: Mapping[str, Any]) -> str:
    """Render `text` with contact attributes and flow params as variables."""
    try:
        return compile_template(text).render(**context)
    except LiquidError as error:
        raise TemplateError(_first_line(error)) from None


def template_variables(text: str) -> set[str]:
    """Top-level variable names a template reads (for column checks)."""
    try:
        return set(compile_template(text).global_variables())
    except TemplateError:
        return set()


_POSITION = re.compile(r"(\d+):(\d+)\s*$")


def _first_line(error: LiquidError) -> str:
    """Liquid's first message line plus 'line L, column C' from its context line."""
    lines = str(error).splitlines()
    message = lines[0].strip() if lines else type(error).__name__
    for line in lines[1:3]:
        found = _POSITION.search(line)
        if found:
            return f"{message} at line {found.group(1)}, column {found.group(2)}"
    return message
