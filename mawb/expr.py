"""Conditions: SQL boolean expressions over contact attributes, checked and compiled safely.

Flows branch, enroll and convert on conditions that marketing analysts write as SQL, such as
``engagement_score > :engagement_threshold``. Because that text ends up inside engine queries,
this module is the single gate between user text and DuckDB: it parses the text with sqlglot
(DuckDB dialect), walks the tree against an allow-list (unqualified columns, literals,
comparisons, AND/OR/NOT, arithmetic, IN with a literal list, BETWEEN, LIKE/ILIKE, IS [NOT]
NULL, CASE, CAST/TRY_CAST to basic types, INTERVAL literals, the clock and the functions in
``ALLOWED_FUNCTIONS``) and produces SQL only by generating it from the checked tree, with
``:params``, columns and the clock substituted as tree nodes. Comments, ``;``, subqueries and
every other construct are refused with a message naming the construct.

``ALLOWED_FUNCTIONS``: lower, upper, trim, length, coalesce, abs, round, least, greatest,
date_diff/datediff, date_trunc, extract/date_part, starts_with, ends_with, contains,
regexp_matches, plus the clock current_date, current_timestamp and now().
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import TYPE_CHECKING

import sqlglot
from sqlglot import exp
from sqlglot.errors import ParseError, TokenError
from sqlglot.tokens import Token, TokenType

if TYPE_CHECKING:
    from collections.abc import Callable, Collection, Mapping

ALLOWED_FUNCTIONS: frozenset[str] = frozenset(
    {
        "lower", "upper", "trim", "length", "coalesce", "abs", "round", "least", "greatest",
        "date_diff", "datediff", "date_trunc", "extract", "date_part", "starts_with",
        "ends_with", "contains", "regexp_matches", "current_date", "current_timestamp", "now",
    }
)  # fmt: skip
MAX_CONDITION_LENGTH = 5000

_DIALECT = sqlglot.Dialect.get_or_raise("duckdb")
_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
# sqlglot parses some allowed functions into classes whose SQL name differs from the DuckDB one.
_RENAMED_FUNCTIONS: dict[type[exp.Expr], str] = {
    exp.TimestampTrunc: "date_trunc",
    exp.DateTrunc: "date_trunc",
    exp.RegexpLike: "regexp_matches",
}
_STRUCTURAL: frozenset[type[exp.Expr]] = frozenset({
    exp.Column, exp.Literal, exp.Boolean, exp.Null, exp.Placeholder, exp.Paren, exp.Neg,
    exp.Not, exp.And, exp.Or, exp.EQ, exp.NEQ, exp.LT, exp.LTE, exp.GT, exp.GTE, exp.Add,
    exp.Sub, exp.Mul, exp.Div, exp.Mod, exp.In, exp.Between, exp.Like, exp.ILike, exp.Escape,
    exp.Is, exp.Case, exp.DataTypeParam, exp.Interval, exp.CurrentDate, exp.CurrentTimestamp,
})  # fmt: skip
_BOOLEAN: frozenset[type[exp.Expr]] = frozenset({
    exp.EQ, exp.NEQ, exp.LT, exp.LTE, exp.GT, exp.GTE, exp.In, exp.Between, exp.Like,
    exp.ILike, exp.Escape, exp.Is, exp.Boolean, exp.Column, exp.Placeholder, exp.StartsWith,
    exp.EndsWith, exp.Contains, exp.RegexpLike,
})  # fmt: skip
_UNIT_HOLDERS = (exp.Interval, exp.DateDiff, exp.Extract, exp.TimestampTrunc, exp.DateTrunc)
_T = exp.DataType.Type
_CAST_TYPES = frozenset(
    {
        _T.BOOLEAN, _T.TINYINT, _T.SMALLINT, _T.INT, _T.BIGINT, _T.FLOAT, _T.DOUBLE,
        _T.DECIMAL, _T.VARCHAR, _T.TEXT, _T.CHAR, _T.DATE, _T.TIMESTAMP, _T.TIMESTAMPTZ,
        _T.TIME, _T.INTERVAL,
    }
)  # fmt: skip
_NAMED_CONSTRUCTS: dict[type[exp.Expr], str] = {
    exp.DPipe: "string concatenation (||)",
    exp.Alias: "an alias or trailing text after the condition",
    exp.Bracket: "subscripts ([...])",
    exp.Dot: "dotted access (a.b)",
    exp.NullSafeEQ: "IS [NOT] DISTINCT FROM",
}


class ConditionError(ValueError):
    """Raised for a condition that fails to parse or uses something outside the allow-list."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


@dataclass(frozen=True)
class Condition:
    """A parsed, allow-list-checked condition; build it with `parse_condition`."""

    source: str
    tree: exp.Expression
    columns: frozenset[str]
    params: frozenset[str]


def parse_condition(text: str) -> Condition:
    """Parse `text` and check it against the allow-list; raise `ConditionError` otherwise.

    >>> parse_condition("score > :min_score").params
    frozenset({'min_score'})
    """
    if not isinstance(text, str):
        raise ConditionError(f"condition must be text, not {type(text).__name__}")
    if not text.strip():
        raise ConditionError("condition is empty")
    if len(text) > MAX_CONDITION_LENGTH:
        raise ConditionError(f"condition is longer than {MAX_CONDITION_LENGTH} characters")
    return _checked(text)


# A live canvas re-validates on every edit while most conditions stay the same; parsing is
# the costly part, so checked conditions are shared (callers copy the tree before changing it).
@functools.lru_cache(maxsize=4096)
def _checked(text: str) -> Condition:
    tree = _parse(text)
    if not isinstance(tree, (exp.Condition, exp.Star, exp.Alias)):
        kind = str(tree.this).upper() if isinstance(tree, exp.Command) else tree.key.upper()
        raise ConditionError(f"a condition must be an expression, not a {kind} statement")
    if tree.find(exp.Query, exp.Subquery, exp.Exists):
        raise ConditionError("subqueries (SELECT) are not allowed")
    for node in tree.walk():
        _check_node(node)
    if not _is_boolean(tree):
        raise ConditionError(
            f"condition must be a comparison or boolean expression, not `{_snippet(tree)}`"
        )
    columns = frozenset(column.name for column in tree.find_all(exp.Column))
    params = frozenset(str(placeholder.name) for placeholder in tree.find_all(exp.Placeholder))
    return Condition(source=text, tree=tree, columns=columns, params=params)


def check_condition(
    text: str,
    *,
    params: Mapping[str, object] | None = None,
    columns: Collection[str] | None = None,
) -> list[str]:
    """Return every problem with `text` as a message; an empty list means it is fine.

    Unknown `:params` are reported when `params` is given, unknown columns (compared
    case-insensitively) when `columns` is given. Never raises for bad input.
    """
    try:
        condition = parse_condition(text)
    except ConditionError as error:
        return [error.message]
    except Exception as error:  # a sqlglot failure mode we did not foresee is still a message
        return [f"could not parse condition: {error}"]
    problems = []
    if params is not None:
        problems += [f"unknown parameter :{name}" for name in sorted(condition.params - {*params})]
    if columns is not None:
        known = {str(column).lower() for column in columns}
        unknown = sorted(name for name in condition.columns if name.lower() not in known)
        problems += [f"unknown column '{name}'" for name in unknown]
    return problems


def referenced_columns(text: str) -> frozenset[str]:
    """The column names `text` references, as written; raises `ConditionError`."""
    return parse_condition(text).columns


def to_sql(
    condition: Condition | str,
    params: Mapping[str, object] | None = None,
    *,
    column: Callable[[str], exp.Expr] | None = None,
    now: datetime | None = None,
) -> str:
    """Generate DuckDB SQL for `condition` from its checked tree.

    `:params` become literals built from `params`, each column reference becomes `column(name)`
    when a mapper is given (e.g. ``lambda name: exp.column(name, table="c", quoted=True)``), and
    with `now` the clock (current_date, current_timestamp, now()) becomes DATE / TIMESTAMP
    literals of that virtual time. Raises `ConditionError` for a missing or unusable param.
    """
    if isinstance(condition, str):
        condition = parse_condition(condition)
    values = params or {}
    tree: exp.Expr = condition.tree.copy()
    for node in list(tree.walk()):
        replacement = _replacement(node, values, column, now)
        if replacement is not None:
            if node is tree:
                tree = replacement
            else:
                node.replace(replacement)
    return tree.sql(dialect="duckdb")


def _parse(text: str) -> exp.Expression:
    try:
        tokens = _DIALECT.tokenize(text)
        _check_tokens(tokens)
        trees = _DIALECT.parser().parse(tokens, text)
    except ParseError as error:
        first = error.errors[0] if error.errors else {}
        where = f" at column {first['col']}" if first.get("col") else ""
        description = first.get("description") or str(error)
        raise ConditionError(f"syntax error{where}: {description}") from None
    except TokenError as error:
        raise ConditionError(f"could not read condition (unclosed quote?): {error}") from None
    except RecursionError:
        raise ConditionError("condition is nested too deeply") from None
    if len(trees) != 1 or not isinstance(trees[0], exp.Expression):
        raise ConditionError("condition must be a single expression")
    return trees[0]


def _check_tokens(tokens: list[Token]) -> None:
    if not tokens or any(token.comments for token in tokens):
        # A text without tokens that is not blank consists of comments only.
        raise ConditionError("comments are not allowed (-- or /* */)")
    for index, token in enumerate(tokens):
        if token.token_type == TokenType.SEMICOLON:
            raise ConditionError(
                "';' is not allowed: a condition is one expression, not several statements"
            )
        if token.token_type in (TokenType.PARAMETER, TokenType.PLACEHOLDER):
            raise ConditionError(f"parameter '{token.text}' is not allowed: write it as :name")
        following = tokens[index + 1] if index + 1 < len(tokens) else None
        if token.token_type == TokenType.COLON and following is not None:
            if _IDENTIFIER.fullmatch(following.text) and following.start != token.end + 1:
                raise ConditionError("write parameters as :name, with no space after ':'")


def _check_node(node: exp.Expr) -> None:
    if isinstance(node, exp.Star):
        raise ConditionError("'*' is not allowed: name the column")
    if type(node) is exp.Column:
        if not isinstance(node.this, exp.Identifier) or node.table or node.args.get("db"):
            raise ConditionError(
                f"column `{_snippet(node)}` must be a plain column name, without a table"
            )
    elif isinstance(node, exp.Identifier):
        if type(node.parent) is not exp.Column:
            raise ConditionError(f"unexpected name `{node.name}`")
    elif isinstance(node, exp.Placeholder):
        if not _IDENTIFIER.fullmatch(str(node.name or "")):
            raise ConditionError("parameters must be written as :name")
    elif isinstance(node, exp.In):
        _check_in_list(node)
    elif isinstance(node, exp.Is):
        if not isinstance(node.expression, (exp.Null, exp.Boolean)):
            raise ConditionError("IS must be followed by NULL, TRUE or FALSE")
    elif type(node) in (exp.Cast, exp.TryCast):
        if node.args["to"].this not in _CAST_TYPES:
            raise ConditionError(f"cast to {node.args['to'].sql('duckdb')} is not allowed")
    elif isinstance(node, exp.DataType):
        if not isinstance(node.parent, (exp.Cast, exp.TryCast)) or node.this not in _CAST_TYPES:
            raise ConditionError(f"type {node.sql('duckdb')} is not allowed here")
    elif isinstance(node, exp.Var):
        if not isinstance(node.parent, _UNIT_HOLDERS) or not _IDENTIFIER.fullmatch(node.name):
            raise ConditionError(f"unexpected keyword `{node.name}`")
    elif isinstance(node, exp.If):
        if not isinstance(node.parent, exp.Case):
            raise ConditionError("function if() is not allowed: use CASE WHEN")
    elif type(node) not in _STRUCTURAL and isinstance(node, exp.Func):
        name = _function_name(node)
        if name not in ALLOWED_FUNCTIONS:
            allowed = ", ".join(sorted(ALLOWED_FUNCTIONS))
            raise ConditionError(f"function {name}() is not allowed (allowed: {allowed})")
    elif type(node) not in _STRUCTURAL:
        construct = _NAMED_CONSTRUCTS.get(type(node), type(node).__name__)
        raise ConditionError(f"not allowed: {construct} in `{_snippet(node)}`")


def _check_in_list(node: exp.In) -> None:
    if node.args.get("query") or node.args.get("unnest") or node.args.get("field"):
        raise ConditionError("IN needs a list of literals, e.g. x IN ('a', 'b')")
    for item in node.expressions:
        while isinstance(item, (exp.Paren, exp.Neg, exp.Cast)):
            item = item.this
        if not isinstance(item, (exp.Literal, exp.Boolean, exp.Null, exp.Placeholder)):
            raise ConditionError(f"IN list items must be literals or :params, not `{item.sql()}`")


def _function_name(node: exp.Func) -> str:
    if isinstance(node, exp.Anonymous):
        return str(node.name).lower()
    if type(node) in _RENAMED_FUNCTIONS:
        return _RENAMED_FUNCTIONS[type(node)]
    names = [name.lower() for name in type(node).sql_names()]
    # Aliases such as ifnull/nvl (parsed as coalesce) are accepted as the allowed function.
    return next((name for name in names if name in ALLOWED_FUNCTIONS), names[0])


def _is_boolean(node: exp.Expr) -> bool:
    if isinstance(node, (exp.Paren, exp.Not)):
        return _is_boolean(node.this)
    if isinstance(node, (exp.And, exp.Or)):
        return _is_boolean(node.this) and _is_boolean(node.expression)
    if isinstance(node, exp.Case):
        results = [branch.args["true"] for branch in node.args.get("ifs", [])]
        results += [node.args["default"]] if node.args.get("default") else []
        return all(_is_boolean(result) or isinstance(result, exp.Null) for result in results)
    return type(node) in _BOOLEAN


def _replacement(
    node: exp.Expr,
    values: Mapping[str, object],
    column: Callable[[str], exp.Expr] | None,
    now: datetime | None,
) -> exp.Expr | None:
    if isinstance(node, exp.Placeholder):
        return _bind(str(node.name), values)
    if isinstance(node, exp.Column) and column is not None:
        return _as_operand(column(node.name).copy())
    if now is None:
        return None
    if isinstance(node, exp.CurrentDate):
        return exp.cast(exp.Literal.string(now.date().isoformat()), "DATE")
    if isinstance(node, exp.CurrentTimestamp) or (
        isinstance(node, exp.Anonymous) and _function_name(node) == "now"
    ):
        kind = "TIMESTAMPTZ" if now.tzinfo is not None else "TIMESTAMP"
        return exp.cast(exp.Literal.string(now.isoformat(sep=" ")), kind)
    return None


def _as_operand(mapped: exp.Expr) -> exp.Expr:
    # The generator does not add parentheses, so a compound replacement (e.g. `a + 1` or
    # `j ->> 'k'`) is wrapped to keep the precedence the condition was parsed with.
    atomic = isinstance(mapped, (exp.Column, exp.Paren, exp.Literal)) or (
        isinstance(mapped, exp.Func) and not isinstance(mapped, exp.Binary)
    )
    return mapped if atomic else exp.paren(mapped)


def _bind(name: str, values: Mapping[str, object]) -> exp.Expr:
    if name not in values:
        raise ConditionError(f"missing value for parameter :{name}")
    value = values[name]
    if isinstance(value, (float, Decimal)) and not Decimal(value).is_finite():
        raise ConditionError(f"parameter :{name} must be a finite number, got {value}")
    if value is not None and not isinstance(value, (bool, int, float, str, Decimal, date)):
        raise ConditionError(
            f"parameter :{name} must be a number, text, boolean, date or null, "
            f"not {type(value).__name__}"
        )
    literal = exp.convert(value)
    return exp.paren(literal) if isinstance(literal, exp.Neg) else literal


def _snippet(node: exp.Expr) -> str:
    text = node.sql(dialect="duckdb")
    return text if len(text) <= 60 else text[:57] + "..."
