"""The monthly statement as a PDF (reportlab): per currency the statement lines, a bar chart
of daily sales volume and fees, and the days with postings. Text is real text (Bitstream Vera,
shipped with reportlab and embedded, so Turkish letters print), which lets tests read the
figures back."""

from __future__ import annotations

import io
from collections.abc import Sequence
from datetime import datetime
from decimal import Decimal
from functools import cache
from pathlib import Path

import reportlab
from reportlab.graphics.charts.barcharts import VerticalBarChart
from reportlab.graphics.charts.legends import Legend
from reportlab.graphics.shapes import Drawing, String
from reportlab.lib import colors
from reportlab.lib.pagesizes import A4
from reportlab.lib.styles import ParagraphStyle
from reportlab.lib.units import mm
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.ttfonts import TTFont
from reportlab.platypus import Paragraph, SimpleDocTemplate, Spacer, Table, TableStyle

from intake.domain.statements import LINES, CurrencyStatement, Month
from sanalpos_common.money import currency_exponent, format_money

FONT, BOLD = "SanalposVera", "SanalposVera-Bold"
VOLUME_COLOR = colors.HexColor("#2f6db5")
FEES_COLOR = colors.HexColor("#d9822b")
LABELS = {
    "opening_balance": "Opening balance",
    "sales": "Sales",
    "refunds": "Refunds",
    "fees": "Fees",
    "fx": "FX",
    "disputes": "Disputes",
    "payouts": "Payouts",
    "other": "Other",
    "closing_balance": "Closing balance",
}


@cache
def _fonts() -> None:
    folder = Path(reportlab.__file__).parent / "fonts"
    pdfmetrics.registerFont(TTFont(FONT, str(folder / "Vera.ttf")))
    pdfmetrics.registerFont(TTFont(BOLD, str(folder / "VeraBd.ttf")))


def to_major(amount: int, currency: str) -> float:
    """For drawing bars only; every printed figure is exact (format_money)."""
    return float(Decimal(amount).scaleb(-currency_exponent(currency)))


def chart_series(statement: CurrencyStatement, month: Month) -> tuple[list[int], list[int]]:
    """Per calendar day: sales volume and fees taken (as a positive amount), minor units."""
    return statement.daily(month, "sales"), [-f for f in statement.daily(month, "fees")]


def daily_chart(statement: CurrencyStatement, month: Month, width: float = 170 * mm) -> Drawing:
    volume, fees = chart_series(statement, month)
    currency = statement.currency
    drawing = Drawing(width, 62 * mm)
    chart = VerticalBarChart()
    chart.x, chart.y = 14 * mm, 12 * mm
    chart.width, chart.height = width - 18 * mm, 42 * mm
    chart.data = [
        [to_major(v, currency) for v in volume],
        [to_major(f, currency) for f in fees],
    ]
    chart.categoryAxis.categoryNames = [str(n) for n in range(1, month.days + 1)]
    chart.categoryAxis.labels.fontName = FONT
    chart.categoryAxis.labels.fontSize = 6
    chart.valueAxis.labels.fontName = FONT
    chart.valueAxis.labels.fontSize = 6
    chart.valueAxis.valueMin = 0
    chart.groupSpacing = 1
    chart.barSpacing = 0
    chart.bars[0].fillColor = VOLUME_COLOR
    chart.bars[1].fillColor = FEES_COLOR
    drawing.add(chart, name="chart")
    legend = Legend()
    legend.x, legend.y = 16 * mm, 60 * mm
    legend.fontName, legend.fontSize = FONT, 7
    legend.alignment = "right"
    legend.columnMaximum = 1
    legend.colorNamePairs = [
        (VOLUME_COLOR, f"Daily sales volume ({currency})"),
        (FEES_COLOR, f"Daily fees ({currency})"),
    ]
    drawing.add(legend, name="legend")
    drawing.add(
        String(width - 4 * mm, 2 * mm, "day of month", fontName=FONT, fontSize=6, textAnchor="end")
    )
    return drawing


def _table(rows: Sequence[Sequence[str]], widths: Sequence[float], bold_rows: set[int]) -> Table:
    table = Table(list(rows), colWidths=list(widths), hAlign="LEFT")
    style = [
        ("FONT", (0, 0), (-1, -1), FONT, 8),
        ("ALIGN", (1, 0), (-1, -1), "RIGHT"),
        ("LINEBELOW", (0, 0), (-1, 0), 0.5, colors.grey),
        ("BOTTOMPADDING", (0, 0), (-1, -1), 2),
        ("TOPPADDING", (0, 0), (-1, -1), 2),
    ]
    style += [("FONT", (0, r), (-1, r), BOLD, 8) for r in bold_rows]
    table.setStyle(TableStyle(style))
    return table


def render_pdf(
    month: Month,
    merchant: tuple[str, str],
    time_zone: str,
    statements: Sequence[CurrencyStatement],
    generated_at: datetime,
) -> bytes:
    _fonts()
    merchant_id, name = merchant
    title = ParagraphStyle("title", fontName=BOLD, fontSize=15, leading=19)
    heading = ParagraphStyle("heading", fontName=BOLD, fontSize=11, leading=15, spaceBefore=8)
    body = ParagraphStyle("body", fontName=FONT, fontSize=8, leading=11)
    story: list[object] = [
        Paragraph(f"Monthly statement {month}", title),
        Paragraph(f"{_escape(name)} ({_escape(merchant_id)})", body),
        Paragraph(
            f"Period {month.first.isoformat()} to {month.after_last.isoformat()} (exclusive), "
            f"posting days in {time_zone}. Generated {generated_at:%Y-%m-%d %H:%M} UTC.",
            body,
        ),
        Spacer(1, 4 * mm),
    ]
    if not statements:
        story.append(Paragraph("No postings on your account up to this month.", body))
    for statement in statements:
        currency = statement.currency
        story.append(Paragraph(f"{currency}", heading))
        summary = [["Line", "Amount"]]
        summary.append([LABELS["opening_balance"], format_money(statement.opening, currency)])
        summary += [[LABELS[n], format_money(statement.lines[n], currency)] for n in LINES]
        summary.append([LABELS["closing_balance"], format_money(statement.closing, currency)])
        story.append(_table(summary, [45 * mm, 45 * mm], {1, len(summary) - 1}))
        if not statement.reconciled:
            story.append(Paragraph("Some posting days have not reached us yet.", body))
        story.append(Spacer(1, 3 * mm))
        story.append(daily_chart(statement, month))
        if statement.days:
            daily = [["Date", "Sales", "Fees", "Refunds", "Payouts", "Other lines", "Closing"]]
            for day in statement.days:
                rest = sum(day.lines[n] for n in ("fx", "disputes", "other"))
                daily.append(
                    [
                        day.day.isoformat(),
                        *(
                            _amount(day.lines[n], currency)
                            for n in ("sales", "fees", "refunds", "payouts")
                        ),
                        _amount(rest, currency),
                        _amount(day.closing, currency),
                    ]
                )
            story.append(Spacer(1, 2 * mm))
            story.append(_table(daily, [22 * mm] + [24 * mm] * 6, set()))
    out = io.BytesIO()
    document = SimpleDocTemplate(
        out,
        pagesize=A4,
        leftMargin=18 * mm,
        rightMargin=18 * mm,
        topMargin=16 * mm,
        bottomMargin=16 * mm,
        title=f"Statement {month}",
        author="sanalpos",
        invariant=True,
    )
    document.build(story)
    return out.getvalue()


def _amount(amount: int, currency: str) -> str:
    return format_money(amount, currency).rsplit(" ", 1)[0]


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
