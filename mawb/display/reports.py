"""Diagnostics, simulation results and sweep results as HTML tables with charts.

Results are read through duck typing (`flow`, `funnel`, `summary`, `table`, ...): this package
sits below the engine and the simulator, so it never imports them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from mawb.display.charts import bar_chart_svg, line_chart_svg
from mawb.display.flow import flow_svg
from mawb.display.style import BORDER, INK, MUTED, UNKNOWN_COLOR, escaped, number
from mawb.nodes.base import CATEGORY_COLORS

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

    import pandas as pd

    from mawb.validate import Report

_SEVERITY_COLORS = {"error": "#b91c1c", "warning": "#b45309"}
_TABLE_STYLE = "border-collapse:collapse;font-size:12px;margin:4px 0 10px 0"


def _table(rows: Sequence[Mapping[str, Any]], columns: Sequence[str]) -> str:
    head = "".join(
        f'<th style="text-align:left;padding:3px 8px;border-bottom:1px solid '
        f'{BORDER}">{escaped(c)}</th>'
        for c in columns
    )
    body = "".join(
        "<tr>"
        + "".join(f'<td style="padding:3px 8px">{cell}</td>' for cell in row.values())
        + "</tr>"
        for row in rows
    )
    return (
        f'<table style="{_TABLE_STYLE}"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'
    )


def diagnostics_html(report: Report) -> str:
    """Validation diagnostics as a table, errors first (the report's own order)."""
    if not report.diagnostics:
        return '<div style="color:#15803d"><b>✓ valid</b>: no diagnostics</div>'
    errors = len(report.errors)
    warnings = len(report.diagnostics) - errors
    verdict = (
        "<b style='color:#15803d'>✓ valid</b>"
        if report.valid
        else "<b style='color:#b91c1c'>✗ invalid</b>"
    )
    rows = [
        {
            "severity": f'<span style="color:{_SEVERITY_COLORS.get(d.severity.value, INK)};'
            f'font-weight:600">{escaped(d.severity.value)}</span>',
            "code": f"<code>{escaped(d.code)}</code>",
            "node": escaped(d.node_id or "(flow)"),
            "field": escaped(d.field or ""),
            "message": escaped(d.message),
        }
        for d in report.diagnostics
    ]
    return (
        f"<div>{verdict}: {errors} error(s), {warnings} warning(s)</div>"
        f"{_table(rows, ['severity', 'code', 'node', 'field', 'message'])}"
    )


def _frame_html(frame: pd.DataFrame) -> str:
    rows = [
        {column: escaped(number(value)) for column, value in record.items()}
        for record in frame.to_dict("records")
    ]
    return _table(rows, [str(c) for c in frame.columns])


_KPIS = (
    "enrolled",
    "messages_sent",
    "suppressed",
    "opens",
    "clicks",
    "unsubscribes",
    "converted",
    "conversion_events",
    "conversion_rate",
)
"""Summary keys shown as a simulation's KPIs (the counts vocabulary of `mawb.analytics`)."""
_RATES = {"open_rate", "click_rate", "conversion_rate"}


def _kpi_text(summary: dict[str, Any], key: str) -> str:
    """Counts with separators, rates as percentages, a dash where there is no data."""
    value = summary.get(key)
    if key in _RATES:
        return "—" if value is None else f"{value * 100:.1f}%"
    return number(value if value is not None else 0)


def simulation_html(result: Any) -> str:
    """A SimulationResult: KPIs, the flow with contacts entered per node, funnel and channels."""
    flow, funnel, summary = result.flow, result.funnel, result.summary
    kpis = [{k: escaped(_kpi_text(summary, k)) for k in _KPIS}]
    params = ", ".join(f"{escaped(k)}={escaped(v)}" for k, v in result.params.items()) or "none"
    counts = dict(zip(funnel["node_id"], (int(v) for v in funnel["entered"]), strict=True))
    by_name = {category.value: color for category, color in CATEGORY_COLORS.items()}
    colors = [by_name.get(str(c), UNKNOWN_COLOR) for c in funnel["category"]]
    bars = bar_chart_svg(
        list(funnel["label"]),
        [int(v) for v in funnel["entered"]],
        colors,
        title="Contacts entered per node",
    )
    channels = {k: v for k, v in result.messages_per_channel.items() if v}
    channel_rows = [{k: escaped(number(v)) for k, v in channels.items()}] if channels else []
    return (
        f"<div class='mawb-simulation'><div><b>Simulation of {escaped(flow.name or flow.id)}</b> "
        f'<span style="color:{MUTED}">{escaped(flow.id)} v{flow.version} · seed {result.seed} · '
        f"params: {params}</span></div>"
        f"{_table(kpis, list(_KPIS))}{flow_svg(flow, counts)}<div>{bars}</div>"
        f"{_frame_html(funnel.drop(columns=['category']))}"
        + (
            f"<div>Messages sent per channel</div>{_table(channel_rows, list(channels))}"
            if channel_rows
            else ""
        )
        + "</div>"
    )


def sweep_html(result: Any) -> str:
    """A SweepResult: the comparison table and conversions against messages sent."""
    table = result.table
    labels = [f"{value}" for value in table["value"]]
    conversions = line_chart_svg(
        list(table["messages_sent"]),
        list(table["converted_contacts"]),
        labels,
        x_title="messages sent",
        y_title="converted contacts",
        title=f"Conversions vs messages ({result.param})",
    )
    unsubscribes = line_chart_svg(
        [float(v) for v in table["value"]] if _numeric(table["value"]) else list(range(len(table))),
        list(table["unsubscribes"]),
        labels,
        x_title=result.param,
        y_title="unsubscribes",
        color="#dc2626",
        title=f"Unsubscribes by {result.param}",
    )
    columns = [
        c
        for c in (
            "value",
            "enrolled",
            "messages_sent",
            "opens",
            "clicks",
            "unsubscribes",
            "converted_contacts",
            "conversion_rate",
        )
        if c in table.columns
    ]
    return (
        f"<div class='mawb-sweep'><div><b>Sweep of {escaped(result.param)}</b> "
        f'<span style="color:{MUTED}">{len(table)} variants</span></div>'
        f"{_frame_html(table[columns])}<div>{conversions}{unsubscribes}</div></div>"
    )


def _numeric(values: Any) -> bool:
    try:
        return all(not isinstance(v, bool | str) and float(v) == float(v) for v in values)
    except (TypeError, ValueError):
        return False
