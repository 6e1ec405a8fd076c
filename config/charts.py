"""Charts drawn on the server as inline SVG: no JavaScript, nothing fetched from elsewhere.

Each chart is a `<figure>` with a caption, an SVG (`role="img"`, `<title>` and `<desc>`),
hour labels in BUSINESS_TIME_ZONE, a legend, and the same numbers as a table inside
`<details>` for screen readers and for anyone who wants the figures. The markup is
well-formed XML. Colours reach at least 3:1 against white (graphics) and text 4.5:1."""

from dataclasses import dataclass
from math import floor, log10

from babel.dates import format_datetime
from babel.numbers import format_decimal
from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe
from django.utils.translation import gettext as _

from config.series import WEBHOOK_OUTCOMES, Series
from core.formatting import babel_locale, business_zone
from payments.labels import delivery_status_label

WIDTH, HEIGHT = 480, 220
LEFT, RIGHT, TOP, BOTTOM = 50, 8, 12, 28
PLOT_W, PLOT_H = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM

# Colours with at least 3:1 contrast on white (WCAG 1.4.11), told apart by hue.
COLOURS = {
    "processed": "#1a7f37",
    "duplicate": "#0969da",
    "ignored": "#6e7781",
    "rejected": "#9a6700",
    "failed": "#cf222e",
    "waiting": "#8250df",
    "refused": "#bc4c00",
    "conversion": "#0969da",
    "p95": "#8250df",
}


@dataclass(frozen=True)
class Line:
    key: str
    label: str
    values: list


def _number(value, *, decimals: int = 0) -> str:
    if value is None:
        return "–"
    pattern = "#,##0" + ("." + "0" * decimals if decimals else "")
    return format_decimal(value, format=pattern, locale=babel_locale())


def _hour_text(moment) -> str:
    return format_datetime(moment, "HH:mm", tzinfo=business_zone(), locale=babel_locale())


def nice_ceiling(value: float) -> float:
    """The smallest 1, 2 or 5 × 10ⁿ at or above `value` (1 for nothing)."""
    if value <= 0:
        return 1
    power = 10 ** floor(log10(value))
    for step in (1, 2, 5, 10):
        if value <= step * power:
            return step * power
    return 10 * power  # pragma: no cover


def _y(value: float, top: float) -> float:
    return round(TOP + PLOT_H - PLOT_H * value / top, 2)


def _axes(hours, top: float, unit: str, decimals: int) -> list[str]:
    parts = ['<g class="chart-axes">']
    for fraction in (0, 0.5, 1):
        value = top * fraction
        y = _y(value, top)
        parts.append(
            f'<line class="chart-grid" x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{y}" y2="{y}" '
            'stroke="#d0d5dd" stroke-width="1"/>'
        )
        label = _number(value, decimals=decimals if value != int(value) else 0)
        parts.append(
            f'<text class="chart-y-label" x="{LEFT - 6}" y="{y + 4}" text-anchor="end" '
            f'fill="#475467">{escape(label)}{escape(unit)}</text>'
        )
    slot = PLOT_W / len(hours.starts)
    for i, start in enumerate(hours.starts):
        if (len(hours.starts) - 1 - i) % 3:
            continue  # every third hour, ending on the current one
        x = round(LEFT + slot * (i + 0.5), 2)
        parts.append(
            f'<text class="chart-x-label" x="{x}" y="{HEIGHT - 9}" text-anchor="middle" '
            f'fill="#475467">{escape(_hour_text(start))}</text>'
        )
    parts.append(
        f'<line class="chart-baseline" x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{TOP + PLOT_H}" '
        f'y2="{TOP + PLOT_H}" stroke="#475467" stroke-width="1"/>'
    )
    parts.append("</g>")
    return parts


def _bars(hours, lines: list[Line], top: float) -> list[str]:
    """Stacked bars, one per hour; each segment carries its series and value."""
    slot = PLOT_W / len(hours.starts)
    width = round(slot * 0.7, 2)
    parts = ['<g class="chart-bars">']
    for i, start in enumerate(hours.starts):
        base = 0.0
        x = round(LEFT + slot * i + (slot - width) / 2, 2)
        for line in lines:
            value = line.values[i] or 0
            if not value:
                continue
            y_top, y_base = _y(base + value, top), _y(base, top)
            parts.append(
                f'<rect class="chart-bar" data-series="{line.key}" '
                f'data-hour="{start.isoformat()}" data-value="{value}" x="{x}" y="{y_top}" '
                f'width="{width}" height="{round(y_base - y_top, 2)}" '
                f'fill="{COLOURS[line.key]}" stroke="#ffffff" stroke-width="1">'
                f"<title>{escape(_hour_text(start))} · {escape(line.label)}: "
                f"{escape(_number(value))}</title></rect>"
            )
            base += value
    parts.append("</g>")
    return parts


def _points(hours, line: Line, top: float, decimals: int, unit: str) -> list[str]:
    """A line through the hours that have a value (broken where one has none), and a
    point on each."""
    slot = PLOT_W / len(hours.starts)
    colour = COLOURS[line.key]
    parts = ['<g class="chart-line">']
    runs, run = [], []
    for i, value in enumerate(line.values):
        if value is None:
            runs, run = runs + ([run] if run else []), []
            continue
        run.append((round(LEFT + slot * (i + 0.5), 2), _y(value, top)))
    runs += [run] if run else []
    for points in runs:
        if len(points) > 1:
            coordinates = " ".join(f"{x},{y}" for x, y in points)
            parts.append(
                f'<polyline points="{coordinates}" fill="none" stroke="{colour}" stroke-width="2"/>'
            )
    for i, (start, value) in enumerate(zip(hours.starts, line.values, strict=True)):
        if value is None:
            continue
        x = round(LEFT + slot * (i + 0.5), 2)
        parts.append(
            f'<circle class="chart-point" data-series="{line.key}" '
            f'data-hour="{start.isoformat()}" data-value="{value}" cx="{x}" '
            f'cy="{_y(value, top)}" r="3.5" fill="{colour}">'
            f"<title>{escape(_hour_text(start))} · {escape(line.label)}: "
            f"{escape(_number(value, decimals=decimals))}{escape(unit)}</title></circle>"
        )
    parts.append("</g>")
    return parts


def _legend(lines: list[Line]) -> str:
    items = "".join(
        '<li><svg class="chart-swatch" width="12" height="12" aria-hidden="true" '
        f'focusable="false"><rect width="12" height="12" fill="{COLOURS[line.key]}"/></svg> '
        f"{escape(line.label)}</li>"
        for line in lines
    )
    return f'<ul class="chart-legend">{items}</ul>'


def _table(hours, columns: list[tuple[str, list, int]]) -> str:
    head = "".join(f'<th scope="col">{escape(label)}</th>' for label, _values, _d in columns)
    rows = []
    for i, start in enumerate(hours.starts):
        cells = "".join(
            f"<td>{escape(_number(values[i], decimals=decimals))}</td>"
            for _label, values, decimals in columns
        )
        rows.append(
            f'<tr><th scope="row"><time datetime="{start.isoformat()}">'
            f"{escape(_hour_text(start))}</time></th>{cells}</tr>"
        )
    return (
        f'<details class="chart-numbers"><summary>{escape(_("The numbers"))}</summary>'
        f'<table class="table"><thead><tr><th scope="col">{escape(_("Hour"))}</th>{head}'
        f"</tr></thead><tbody>{''.join(rows)}</tbody></table></details>"
    )


def chart(
    *,
    chart_id: str,
    title: str,
    description: str,
    series: Series,
    lines: list[Line],
    kind: str,
    table: list[tuple[str, list, int]],
    unit: str = "",
    decimals: int = 0,
    top: float | None = None,
) -> SafeString:
    """One chart's figure: bars (stacked) or a line with points, or "no data yet"."""
    parts = [
        f'<figure class="chart card" id="{chart_id}" data-kind="{kind}">',
        f'<figcaption><h3 class="chart-title">{escape(title)}</h3>'
        f'<p class="muted chart-description">{escape(description)}</p></figcaption>',
    ]
    if series.empty:
        parts.append(
            f'<p class="chart-empty muted">{escape(_("No data yet in the last 24 hours."))}</p>'
        )
        parts.append("</figure>")
        return mark_safe("".join(parts))  # noqa: S308 — every value above is escaped
    if top is None:
        totals = [
            sum(line.values[i] or 0 for line in lines) if kind == "bars" else 0
            for i in range(len(series.hours.starts))
        ]
        peaks = totals if kind == "bars" else [v or 0 for line in lines for v in line.values]
        top = nice_ceiling(max(peaks))
    first, last = series.hours.starts[0], series.hours.starts[-1]
    svg_desc = _("%(description)s From %(first)s to %(last)s (%(zone)s).") % {
        "description": description,
        "first": _hour_text(first),
        "last": _hour_text(last),
        "zone": business_zone().key,
    }
    parts.append(
        f'<svg xmlns="http://www.w3.org/2000/svg" class="chart-svg" role="img" '
        f'viewBox="0 0 {WIDTH} {HEIGHT}" preserveAspectRatio="xMidYMid meet" '
        f'data-top="{top}" aria-labelledby="{chart_id}-title {chart_id}-desc">'
        f'<title id="{chart_id}-title">{escape(title)}</title>'
        f'<desc id="{chart_id}-desc">{escape(svg_desc)}</desc>'
    )
    parts += _axes(series.hours, top, unit, decimals)
    if kind == "bars":
        parts += _bars(series.hours, lines, top)
    else:
        for line in lines:
            parts += _points(series.hours, line, top, decimals, unit)
    parts.append("</svg>")
    parts.append(_legend(lines))
    parts.append(_table(series.hours, table))
    parts.append("</figure>")
    return mark_safe("".join(parts))  # noqa: S308 — every value above is escaped


def outcome_labels() -> dict[str, str]:
    """The webhook chart's series names: the delivery statuses' own labels where a series
    is one status."""
    labels = {code: delivery_status_label(code) for code in WEBHOOK_OUTCOMES}
    labels["failed"] = _("failed or dead")
    labels["waiting"] = _("waiting")
    labels["refused"] = _("refused before being stored")
    return labels


def last_day_charts(charts: dict[str, Series]) -> list[SafeString]:
    """The four charts of the operations and integration pages, in the active language."""
    webhooks = charts["webhooks"]
    labels = outcome_labels()
    lines = [Line(key, labels[key], values) for key, values in webhooks.values.items()]
    conversion = charts["conversion"]
    fulfil = charts["fulfil_p95"]
    backlog = charts["backlog"]
    return [
        chart(
            chart_id="chart-webhooks",
            title=_("Webhooks per hour, by outcome"),
            description=_(
                "Deliveries received each hour, by what became of them, and requests "
                "refused before they were stored."
            ),
            series=webhooks,
            lines=lines,
            kind="bars",
            table=[(line.label, line.values, 0) for line in lines],
        ),
        chart(
            chart_id="chart-conversion",
            title=_("Conversion per hour"),
            description=_(
                "Payment sessions paid out of those created in each hour, as a percentage."
            ),
            series=conversion,
            lines=[Line("conversion", _("Conversion"), conversion.values["conversion"])],
            kind="line",
            unit=" %",
            decimals=1,
            top=100,
            table=[
                (_("Created"), conversion.extra["created"], 0),
                (_("Paid"), conversion.extra["paid"], 0),
                (_("Conversion, percent"), conversion.values["conversion"], 1),
            ],
        ),
        chart(
            chart_id="chart-fulfil-p95",
            title=_("Paid → delivered, p95 per hour"),
            description=_(
                "Seconds from payment to delivery that 95 in 100 of the payments completed in "
                "each hour stayed within."
            ),
            series=fulfil,
            lines=[Line("p95", _("p95 (s)"), fulfil.values["p95"])],
            kind="line",
            unit=" s",
            decimals=1,
            table=[
                (_("Delivered payments"), fulfil.extra["count"], 0),
                (_("p95 (s)"), fulfil.values["p95"], 1),
            ],
        ),
        chart(
            chart_id="chart-backlog",
            title=_("Webhook backlog per hour"),
            description=_(
                "Deliveries waiting at the end of each hour (now, for the current hour), "
                "counted from when each was received and when its final outcome was recorded; "
                "a failed delivery waiting for a retry counts as waiting."
            ),
            series=backlog,
            lines=[Line("waiting", _("Waiting"), backlog.values["waiting"])],
            kind="bars",
            table=[
                (_("Waiting"), backlog.values["waiting"], 0),
                (_("Oldest wait (s)"), backlog.extra["oldest_seconds"], 0),
            ],
        ),
    ]
