"""Python source literals for generated DAG files.

Flow names, descriptions and labels are user text. In a generated DAG they may only ever
appear inside string literals that Python reads back as exactly that text, so this module
owns the escaping: every non-printable character becomes an escape, quotes and backslashes
are escaped, and long text is split into implicitly concatenated parts that fit the line
length. The output is already in `ruff format` style (quote choice, layout), so generated
files stay unchanged when formatted.
"""

from __future__ import annotations

from typing import Any

LINE_LENGTH = 100
INDENT = "    "


def _escape(text: str, quote: str) -> str:
    out = []
    for char in text:
        if char == "\\":
            out.append("\\\\")
        elif char == quote:
            out.append("\\" + quote)
        elif char == "\n":
            out.append("\\n")
        elif char == "\t":
            out.append("\\t")
        elif char == "\r":
            out.append("\\r")
        elif not char.isprintable():
            code = ord(char)
            out.append(
                f"\\x{code:02x}"
                if code < 0x100
                else f"\\u{code:04x}"
                if code < 0x10000
                else f"\\U{code:08x}"
            )
        else:
            out.append(char)
    return "".join(out)


def string(text: str) -> str:
    """One Python string literal for `text`, quoted the way `ruff format` prefers.

    >>> string('say "hi"')
    '\\'say "hi"\\''
    """
    quote = "'" if text.count('"') > text.count("'") else '"'
    return f"{quote}{_escape(text, quote)}{quote}"


def _chunks(text: str, width: int) -> list[str]:
    """Split `text` so each part's literal fits `width`; prefer breaking after spaces.

    Linear in the text: each character's escaped length is computed once, counting either
    quote as escaped (the quote a part ends up using is chosen later), so a part always fits.
    """
    costs = [len(_escape(char, char if char in "'\"" else '"')) for char in text]
    budget = max(width - 2, 4)  # the quotes
    parts: list[str] = []
    start = 0
    while start < len(text):
        cut, used = start, 0
        while cut < len(text) and used + costs[cut] <= budget:
            used += costs[cut]
            cut += 1
        cut = max(cut, start + 1)
        space = text.rfind(" ", start, cut)
        if cut < len(text) and space - start > (cut - start) // 2:
            cut = space + 1
        parts.append(text[start:cut])
        start = cut
    return parts


def long_string(text: str, column: int, depth: int) -> str:
    """A string literal placed at `column` (characters already on the line), at nesting `depth`.

    Text that would overflow the line becomes a parenthesised implicit concatenation, one
    part per line, indented one level deeper than `depth`.
    """
    literal = string(text)
    if column + len(literal) <= LINE_LENGTH - 1:  # leave room for a trailing comma
        return literal
    inner = INDENT * (depth + 1)
    parts = _chunks(text, LINE_LENGTH - len(inner))
    lines = "".join(f"{inner}{string(part)}\n" for part in parts)
    return f"(\n{lines}{INDENT * depth})"


def literal(value: Any) -> str:
    """A Python literal for a JSON-like value (str, bool, int, float, None, list, dict)."""
    if isinstance(value, str):
        return string(value)
    if value is None or isinstance(value, bool | int):
        return repr(value)
    if isinstance(value, float):
        if value != value or value in (float("inf"), float("-inf")):
            raise ValueError(f"{value!r} has no JSON form; use a finite number")
        return repr(value)
    if isinstance(value, list | tuple):
        return "[" + ", ".join(literal(item) for item in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{string(str(k))}: {literal(v)}" for k, v in value.items()) + "}"
    raise TypeError(f"cannot write {type(value).__name__} as a literal")


def docstring_text(text: str, limit: int = 72) -> str:
    """User text made safe inside a triple-quoted docstring, shortened to `limit` characters."""
    flat = " ".join(text.split())
    if len(flat) > limit:
        flat = flat[: limit - 1] + "…"
    return _escape(flat, '"')
