"""String literals written into DAG files read back as exactly the user's text."""

from __future__ import annotations

import ast
import subprocess
import sys

from hypothesis import given, settings
from hypothesis import strategies as st

from mawb.compile import source

RUFF = [sys.executable, "-m", "ruff"]


@given(st.text())
def test_string_literal_round_trips(text: str) -> None:
    assert ast.literal_eval(source.string(text)) == text


@given(st.text(min_size=1, max_size=400), st.integers(0, 60))
def test_long_strings_round_trip_and_fit_the_line(text: str, column: int) -> None:
    code = source.long_string(text, column, 1)
    assert ast.literal_eval(code) == text
    for line in code.splitlines()[1:-1]:
        part = ast.literal_eval(line.strip())
        # one part per line, each within the line length unless a single character overflows
        assert len(line) <= source.LINE_LENGTH or len(part) == 1


def test_literal_refuses_values_without_a_python_literal() -> None:
    for bad in (float("nan"), float("inf")):
        try:
            source.literal(bad)
        except ValueError as error:
            assert "finite" in str(error)
        else:
            raise AssertionError(f"{bad} accepted")


@settings(max_examples=25, deadline=None)
@given(st.lists(st.text(max_size=150), min_size=1, max_size=6))
def test_generated_literals_are_already_ruff_formatted(texts: list[str]) -> None:
    lines = ["VALUES = {"]
    for index, text in enumerate(texts):
        start = f'    "k{index}": '
        lines.append(f"{start}{source.long_string(text, len(start), 1)},")
    lines.append("}")
    code = "\n".join(lines) + "\n"
    result = subprocess.run(
        [*RUFF, "format", "--isolated", "--line-length", "100", "-"],
        input=code,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout == code
