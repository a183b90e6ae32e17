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


def _bars(
    values: list[int], currency: str, color: colors.Color, x: float, y: float, width: float
) -> VerticalBarChart:
    chart = VerticalBarChart()
    chart.x, chart.y = x, y
    chart.width, chart.height = width, 30 * mm
    chart.data = [[to_major(v, currency) for v in values]]
    chart.categoryAxis.categoryNames = [str(n) for n in range(1, len(values) + 1)]
    for labels in (chart.categoryAxis.labels, chart.valueAxis.labels):
        labels.fontName, labels.fontSize = FONT, 6
    chart.valueAxis.valueMin = 0
    chart.valueAxis.forceZero = True
    chart.barSpacing = 0
    chart.bars[0].fillColor = color
    chart.bars[0].strokeColor = None
    return chart


def daily_chart(statement: CurrencyStatement, month: Month, width: float = 170 * mm) -> Drawing:
    """Two panels on one day axis, each on its own scale (fees are a small fraction of the
    volume and would not show on the volume's): daily sales volume above, daily fees below."""
    volume, fees = chart_series(statement, month)
    currency = statement.currency
    drawing = Drawing(width, 92 * mm)
    left, plot = 16 * mm, width - 20 * mm
    drawing.add(_bars(volume, currency, VOLUME_COLOR, left, 54 * mm, plot), name="volume")
    drawing.add(_bars(fees, currency, FEES_COLOR, left, 8 * mm, plot), name="fees")
    for y, text in ((87 * mm, "Daily sales volume"), (41 * mm, "Daily fees")):
        drawing.add(String(left, y, f"{text} ({currency})", fontName=BOLD, fontSize=8))
    drawing.add(
        String(width - 4 * mm, 1 * mm, "day of month", fontName=FONT, fontSize=6, textAnchor="end")
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
