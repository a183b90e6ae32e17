"""The PNG: throughput and latency against offered load."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt


def draw(report: dict[str, Any], path: Path) -> None:
    http, kafka = report["http_saturation"]["steps"], report["kafka_saturation"]["steps"]
    relay = report["relay"]["messages_per_s"]
    figure, (throughput, latency) = plt.subplots(1, 2, figsize=(13, 5))
    top = max([s["offered_per_s"] for s in http + kafka] or [1])
    throughput.plot([0, top], [0, top], color="grey", linestyle=":", label="offered")
    for steps, name, marker in ((http, "HTTP", "o"), (kafka, "Kafka entry", "s")):
        offered = [s["offered_per_s"] for s in steps]
        throughput.plot(
            offered,
            [s["accepted_per_s"] for s in steps],
            marker=marker,
            linestyle="--",
            label=f"{name} accepted",
        )
        throughput.plot(
            offered,
            [s["completed_per_s"] for s in steps],
            marker=marker,
            label=f"{name} completed (captured/declined)",
        )
    seen = [s[k] for s in http + kafka for k in ("accepted_per_s", "completed_per_s")]
    ceiling = 1.15 * max([top, *seen])
    if relay / 2 <= ceiling:
        throughput.axhline(
            relay / 2,
            color="red",
            linestyle="-.",
            label=f"half the bare 5-hop relay ({relay / 2:.0f}/s)",
        )
    else:
        throughput.plot(
            [],
            [],
            color="red",
            linestyle="-.",
            label=f"half the bare 5-hop relay: {relay / 2:.0f}/s (off the scale)",
        )
    throughput.set_ylim(0, ceiling)
    throughput.set(
        xlabel="offered payments/s", ylabel="payments/s", title="Throughput against offered load"
    )
    throughput.legend(fontsize=8)
    for steps, name in ((http, "HTTP"), (kafka, "Kafka entry")):
        offered = [s["offered_per_s"] for s in steps]
        for pct, style in (("p50_ms", "-"), ("p99_ms", "--")):
            latency.plot(
                offered,
                [s["to_outcome"][pct] or float("nan") for s in steps],
                marker="o",
                linestyle=style,
                label=f"{name} send→outcome {pct[:3]}",
            )
    steady = report["steady"]
    latency.plot(
        [steady["offered_per_s"]] * 2,
        [steady["to_outcome"]["p50_ms"], steady["to_outcome"]["p99_ms"]],
        "k*",
        markersize=12,
        label="fixed-rate phase p50/p99",
    )
    latency.axhline(300, color="red", linestyle="-.", label="p99 target 300 ms")
    latency.set(
        xlabel="offered payments/s",
        ylabel="ms (log)",
        yscale="log",
        title="Latency, send → authorization outcome on Kafka",
    )
    latency.legend(fontsize=8)
    figure.suptitle(f"sanalpos make bench, {report['started_at']}")
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
