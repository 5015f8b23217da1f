"""`database_query` SQL: proven read-only over the engine's tables, then run in a sandbox.

A `database_query` node runs an author's SELECT and copies its columns onto contacts. Two
independent guards keep that text from reaching anything else:

1. `check_query` parses it with sqlglot (DuckDB dialect) and resolves every table reference
   with sqlglot's scope analysis: a name counts as a CTE only where that CTE is visible, so a
   `WITH "/etc/passwd" AS (...)` inside a subquery cannot make the outer `FROM "/etc/passwd"`
   look safe. Every real table must be one of `QUERYABLE_TABLES`; table functions, qualified
   names, file paths, CTEs that shadow a table, and every function outside `ALLOWED_FUNCTIONS`
   (so no `read_csv`, `glob`, `current_setting`, `getenv`) are refused with a message.
2. `run_query` executes the regenerated SQL on a separate in-memory DuckDB database opened with
   `enable_external_access = false` and `lock_configuration = true`, holding only copies of the
   tables the query names. DuckDB's external-access setting is per database instance and cannot
   be switched back on once off, so it cannot be applied to the store's own connection (the
   engine itself loads files); a second instance in the same process can have it off for good.
   Even a query that slipped past the parser can read no file, attach no database, install no
   extension and change no setting, and sees no engine table but the allow-listed copies.
"""

from __future__ import annotations

import re
import warnings
from dataclasses import dataclass
from typing import TYPE_CHECKING

import sqlglot
import sqlglot.errors
from sqlglot import exp
from sqlglot.optimizer.scope import traverse_scope

if TYPE_CHECKING:
    import duckdb
    import pyarrow as pa

# Engine tables a query may read. Outbox, node_log, runs and meta hold delivery internals and
# message bodies; flows and tokens hold state a query has no reason to see.
QUERYABLE_TABLES: frozenset[str] = frozenset(
    {"contacts", "events", "messages", "enrollments", "crm_records"}
)
MAX_QUERY_LENGTH = 20_000
SANDBOX_MEMORY = "1GB"

# sqlglot parses most functions into classes; these are the ones a query may call.
_CLASS_NAMES = (
    # aggregates
    "Count", "CountIf", "Sum", "Avg", "Min", "Max", "AnyValue", "GroupConcat", "ArrayAgg",
    "ArgMax", "ArgMin", "Median", "Quantile", "Stddev", "StddevPop", "StddevSamp", "Variance",
    "VariancePop", "LogicalAnd", "LogicalOr", "First", "Last", "ApproxDistinct",
    "PercentileCont", "PercentileDisc",
    # window functions
    "RowNumber", "Rank", "DenseRank", "Lag", "Lead", "FirstValue", "LastValue", "NthValue",
    "Ntile", "CumeDist", "PercentRank",
    # scalars
    "Cast", "TryCast", "Case", "If", "Coalesce", "Nullif", "Greatest", "Least", "Concat",
    "ConcatWs", "Lower", "Upper", "Trim", "Length", "Substring", "Left", "Right", "Abs",
    "Round", "Floor", "Ceil", "Sqrt", "Ln", "Log", "Pow", "Sign", "DateDiff", "DateTrunc",
    "TimestampTrunc", "Extract", "DateAdd", "DateSub", "TimeToStr", "StrToTime", "TimeToUnix",
    "CurrentDate", "CurrentTimestamp", "JSONExtract", "JSONExtractScalar", "StartsWith",
    "EndsWith", "Contains", "RegexpLike", "RegexpExtract", "RegexpReplace", "TsOrDsToDate",
    "Date", "StrPosition", "ArraySize", "Interval",
)  # fmt: skip
_ALLOWED_CLASSES: frozenset[type[exp.Expr]] = frozenset(
    cls for cls in (getattr(exp, name, None) for name in _CLASS_NAMES) if isinstance(cls, type)
)
# Functions sqlglot leaves as plain calls, by DuckDB name.
_ALLOWED_ANONYMOUS: frozenset[str] = frozenset({
    "now", "today", "rank", "dense_rank", "date_part", "datepart", "epoch", "strftime",
    "strptime", "regexp_matches", "contains", "prefix", "suffix", "ifnull", "md5", "hash",
    "list", "bool_and", "bool_or", "mode", "count_star", "json_extract_string",
})  # fmt: skip
ALLOWED_FUNCTIONS: frozenset[str] = frozenset(
    {cls.key for cls in _ALLOWED_CLASSES} | _ALLOWED_ANONYMOUS
)

_STATEMENTS = (exp.Insert, exp.Update, exp.Delete, exp.Create, exp.Drop, exp.Command,
               exp.Copy, exp.Attach, exp.Pragma, exp.Set, exp.Use, exp.Into, exp.Merge,
               exp.Alter, exp.Detach, exp.Transaction, exp.Commit, exp.Rollback)
_IDENTIFIER_NAME = r"^[A-Za-z_][A-Za-z0-9_]{0,62}$"


class QueryError(ValueError):
    """A database_query that is not provably a read-only SELECT over the allowed tables."""


@dataclass(frozen=True)
class CheckedQuery:
    """A query that passed `check_query`: the SQL the engine runs and what it reads/returns."""

    sql: str
    tables: frozenset[str]
    outputs: tuple[str, ...]  # named result columns ("*" when a star leaves them open)


def check_query(text: str) -> CheckedQuery:
    """Parse `text` and prove it reads only `QUERYABLE_TABLES`; raise `QueryError` if not."""
    if not isinstance(text, str) or not text.strip():
        raise QueryError("the query is empty")
    if len(text) > MAX_QUERY_LENGTH:
        raise QueryError(f"the query is longer than {MAX_QUERY_LENGTH} characters")
    tree = _parse(text)
    for node in tree.walk():
        _check_node(node)
    tables = _resolved_tables(tree)
    outputs = tuple(_output_names(tree))
    if "contact_id" not in outputs and "*" not in outputs:
        raise QueryError("the query must return a contact_id column")
    return CheckedQuery(sql=tree.sql("duckdb"), tables=frozenset(tables), outputs=outputs)


def _parse(text: str) -> exp.Query:
    try:
        statements = [s for s in sqlglot.parse(text, read="duckdb") if s is not None]
    except sqlglot.errors.SqlglotError as error:
        raise QueryError(f"SQL does not parse: {str(error).splitlines()[0]}") from None
    except RecursionError:
        raise QueryError("the query is nested too deeply") from None
    if len(statements) != 1:
        raise QueryError("exactly one SELECT statement is allowed")
    tree = statements[0]
    if not isinstance(tree, exp.Query):
        kind = str(tree.this).upper() if isinstance(tree, exp.Command) else tree.key.upper()
        raise QueryError(f"only SELECT queries are allowed, not {kind}")
    return tree


def _check_node(node: exp.Expr) -> None:
    if isinstance(node, _STATEMENTS):
        raise QueryError(f"{node.key.upper()} is not allowed in a read-only query")
    if isinstance(node, (exp.Placeholder, exp.Parameter)):
        raise QueryError("parameters ($1, ?) are not allowed in a query")
    if isinstance(node, exp.Table):
        _check_table_node(node)
    elif isinstance(node, exp.CTE):
        _check_cte(node)
    elif isinstance(node, exp.Func):
        _check_function(node)


def _check_table_node(node: exp.Table) -> None:
    if not isinstance(node.this, exp.Identifier):
        what = node.this.sql("duckdb") if node.this is not None else node.sql("duckdb")
        raise QueryError(f"table functions and file paths are not allowed: {what[:60]}")
    if node.args.get("db") or node.args.get("catalog"):
        raise QueryError(f"qualified table names are not allowed: {node.sql('duckdb')[:60]}")


def _check_cte(node: exp.CTE) -> None:
    name = node.alias_or_name
    if not re.match(_IDENTIFIER_NAME, name):
        raise QueryError(f"CTE name {name!r} must be a plain name (letters, digits, _)")
    if name in QUERYABLE_TABLES:
        raise QueryError(f"CTE {name!r} shadows the table of that name; rename it")


def _check_function(node: exp.Func) -> None:
    if isinstance(node, exp.Anonymous):
        name = str(node.name).lower()
        if name in _ALLOWED_ANONYMOUS:
            return
    elif type(node) in _ALLOWED_CLASSES:
        return
    else:
        name = (type(node).sql_names() or [node.key])[0].lower()
    raise QueryError(f"function {name}() is not allowed in a query (see ALLOWED_FUNCTIONS in "
                     "the docs of database_query)")


def _resolved_tables(tree: exp.Query) -> set[str]:
    """Real tables read, resolving every reference in the scope it appears in."""
    try:
        scopes = traverse_scope(tree)
    except (sqlglot.errors.SqlglotError, RecursionError) as error:
        raise QueryError(f"cannot resolve the query's tables: {error}") from None
    seen: set[int] = set()
    real: set[str] = set()
    for scope in scopes:
        for table in scope.tables:
            seen.add(id(table))
            source = scope.sources.get(table.alias_or_name)
            if isinstance(source, exp.Table) and source is table:
                real.add(_allowed_table(table))
            elif source is None or isinstance(source, exp.Table):
                raise QueryError(f"cannot resolve table {table.name!r}")
    for table in tree.find_all(exp.Table):
        if id(table) not in seen:  # a place the scope analysis does not cover
            raise QueryError(f"table {table.name!r} is used where it cannot be checked")
    return real


def _allowed_table(table: exp.Table) -> str:
    if table.name not in QUERYABLE_TABLES:
        allowed = ", ".join(sorted(QUERYABLE_TABLES))
        raise QueryError(f"table {table.name!r} is not queryable; use {allowed}")
    return table.name


def _output_names(tree: exp.Query) -> list[str]:
    selects = tree.selects
    names = [s.alias_or_name for s in selects if not isinstance(s, exp.Star)]
    if any(isinstance(s, exp.Star) or (isinstance(s, exp.Column) and isinstance(s.this, exp.Star))
           for s in selects):
        names.append("*")
    return names


def run_query(connection: duckdb.DuckDBPyConnection, checked: CheckedQuery) -> pa.Table:
    """Run a checked query in a sandboxed DuckDB holding copies of the tables it reads."""
    import duckdb

    sandbox = duckdb.connect(":memory:", config={"threads": 1, "memory_limit": SANDBOX_MEMORY})
    try:
        for name in sorted(checked.tables):
            sandbox.register(name, _arrow(connection, f'SELECT * FROM main."{name}"'))
        sandbox.execute("SET TimeZone = 'UTC'")
        sandbox.execute("SET enable_external_access = false")
        sandbox.execute("SET lock_configuration = true")
        return _arrow(sandbox, checked.sql)
    finally:
        sandbox.close()


def _arrow(connection: duckdb.DuckDBPyConnection, sql: str) -> pa.Table:
    """A result as an Arrow table. Through `execute` (not `sql`), which also works while the
    caller's connection has an earlier result open; the copy that costs is accepted."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Arrow output on a DB-API result")
        return connection.execute(sql).to_arrow_table()
