#!/usr/bin/env python3
"""Replay a labeled transaction file through the running system and measure fraud scoring.

    python scripts/fraud_eval.py [--data PATH] [--limit N] [--png PATH] [--keep-stack]
    make fraud-eval [FRAUD_EVAL_DATA=path]

Each row becomes a real payment request (mapping in `fraud.model.sparkov`): a stable
Luhn-valid test card per `cc_num`, one merchant (created through intake's admin API) per
merchant name, the category as a merchant category code, the amount in USD minor units, the
billing and merchant locations as risk context, and the row's time as the payment's
`occurred_at` (intake accepts it only with INTAKE_ALLOW_REPLAY_TIME, which the harness
sets for the stack it starts). Rows go to intake's HTTP API in time order; the harness
collects every `payment.scored.v1` of its payments from Kafka and prints ROC AUC, average
precision, recall at a 1% review rate, and precision/recall at the decline and review bands,
and writes a PNG with the ROC and precision-recall curves.

The labels are used only for the metrics: nothing is fed back (no fraud reports). The
model is the one the fraud service loads (the shipped artifact, trained on sparkov_dev.csv:
evaluating on that file is in-sample; run it on held-out files for an honest number).

Ranking: the fraud score (0-99), ties broken by the model probability (read from fraud's
decision records, full precision); the model probability alone is reported next to it.

Stack: when no system answers on the harness's ports, it starts one (infrastructure and
the five services, `scripts/stack.py`) in a fresh state folder under .state/fraud-eval/,
on its own ports (never the defaults), and stops it at the end (`--keep-stack` keeps it).
Ports and endpoints from the environment win (SANALPOS_KAFKA_PORT, INTAKE_HTTP_PORT, ...).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import importlib.util
import math
import os
import secrets
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DATA = ROOT.parent / "shared" / "data" / "fraud" / "sparkov_dev.csv"
OWN_PORTS = {
    "SANALPOS_KAFKA_PORT": "29492",
    "SANALPOS_KAFKA_CONTROLLER_PORT": "29493",
    "SANALPOS_PG_PORT": "25832",
    "INTAKE_HTTP_PORT": "18110",
    "FRAUD_HTTP_PORT": "18111",
    "AUTHORIZATION_HTTP_PORT": "18112",
    "SETTLEMENT_HTTP_PORT": "18113",
    "NOTIFICATION_HTTP_PORT": "18114",
}
REVIEW_RATE = 0.01


def load_stack() -> ModuleType:
    spec = importlib.util.spec_from_file_location("sanalpos_stack", ROOT / "scripts" / "stack.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# ----------------------------------------------------------------------------- stack
@dataclass
class Stack:
    stack: ModuleType
    started_services: bool = False
    started_infra: bool = False
    state_dir: Path | None = None

    def intake(self) -> str:
        return f"http://127.0.0.1:{self.stack.port_of('intake')}"

    def all_ready(self) -> bool:
        for service in self.stack.SERVICES:
            with contextlib.suppress(OSError, ValueError):
                url = f"http://127.0.0.1:{self.stack.port_of(service)}/readyz"
                if self.stack.http_json(url)[0] == 200:
                    continue
            return False
        return True

    def infra_running(self) -> bool:
        out = subprocess.run(
            ["bash", str(self.stack.INFRA), "status"], capture_output=True, text=True, check=False
        )
        return out.returncode == 0

    def start(self) -> None:
        self.started_infra = not self.infra_running()
        print("starting the system for the replay ...", flush=True)
        # Before up(): a start that fails half-way (a service never ready) is stopped too,
        # instead of leaving services consuming the shared topics after this script exits.
        self.started_services = True
        self.stack.up()

    def stop(self) -> None:
        if self.started_services:
            self.stack.stop_services()
        if self.started_infra:
            subprocess.run(["bash", str(self.stack.INFRA), "down"], check=False)
            if self.state_dir is not None:
                shutil.rmtree(self.state_dir, ignore_errors=True)


GROUP_SETTINGS = {
    "INTAKE_CONSUMER_GROUP": "intake",
    "INTAKE_REQUESTS_CONSUMER_GROUP": "intake-requests",
    "FRAUD_FAUST_APP_ID": "sanalpos-fraud",
    "FRAUD_FEEDBACK_CONSUMER_GROUP": "fraud-feedback",
    "AUTHORIZATION_CONSUMER_GROUP": "authorization",
    "SETTLEMENT_CONSUMER_GROUP": "settlement",
    "NOTIFICATION_CONSUMER_GROUP": "notification",
}


def prepare_environment() -> Path | None:
    """Own ports unless given; a fresh state folder unless one is given. Returns it if new."""
    for key, value in OWN_PORTS.items():
        os.environ.setdefault(key, value)
    os.environ["INTAKE_ALLOW_REPLAY_TIME"] = "true"
    # No Prometheus for a replay: it would outlive the stack this script stops (and take
    # the port of a running `make run`'s).
    os.environ.setdefault("SANALPOS_PROMETHEUS", "off")
    os.environ.setdefault("SANALPOS_ENV", "development")
    # Own consumer groups (and faust app id), so a replay against a broker that another
    # deployment uses (e.g. the whole-system tests') never takes over that deployment's
    # partitions or leaves it rebalancing when the replay stops.
    run = secrets.token_hex(3)
    for key, group in GROUP_SETTINGS.items():
        os.environ.setdefault(key, f"{group}-eval-{run}")
    if "SANALPOS_STATE_DIR" in os.environ:
        return None
    fresh = ROOT / ".state" / "fraud-eval" / f"run-{int(time.time())}-{secrets.token_hex(2)}"
    fresh.mkdir(parents=True)
    os.environ["SANALPOS_STATE_DIR"] = str(fresh)
    return fresh


# ----------------------------------------------------------------------------- replay
@dataclass
class Replay:
    rows: list[Any]
    salt: str
    payment_row: dict[str, int] = field(default_factory=dict)
    scored: dict[str, tuple[int, str, tuple[str, ...]]] = field(default_factory=dict)
    keys: dict[str, str] = field(default_factory=dict)
    probability: dict[str, float] = field(default_factory=dict)
    """Model probability per payment, from fraud's decision records (NaN: no model)."""


def card_body(row: Any, salt: str) -> dict[str, Any]:
    from fraud.model.sparkov import replay_card_number

    return {
        "number": replay_card_number(f"{salt}|{row.cc_num}"),
        "cvc": "123",
        "exp_month": 12,
        "exp_year": 2030,
    }


def payment_body(row: Any, salt: str, index: int) -> dict[str, Any]:
    from fraud.model.sparkov import occurred_at, risk_context

    return {
        "amount": row.amount_minor,
        "currency": "USD",
        "capture": True,
        "card": card_body(row, salt),
        "order_id": f"replay-{salt}-{index}",
        "context": risk_context(row),
        "occurred_at": occurred_at(row),
    }


async def post(client: Any, url: str, body: dict[str, Any], token: str) -> Any:
    """POST with retries on 429/5xx and connection errors; raises on other errors."""
    for attempt in range(30):
        try:
            response = await client.post(
                url, json=body, headers={"Authorization": f"Bearer {token}"}
            )
        except OSError:
            await asyncio.sleep(min(2.0, 0.1 * 2**attempt))
            continue
        if response.status_code == 429 or response.status_code >= 500:
            await asyncio.sleep(float(response.headers.get("Retry-After", 0.2 * (attempt + 1))))
            continue
        return response
    raise RuntimeError(f"POST {url} kept failing")


async def create_merchants(client: Any, intake: str, replay: Replay, admin: str) -> None:
    from fraud.model.sparkov import merchant_id

    names = sorted({row.merchant for row in replay.rows})
    limit = asyncio.Semaphore(16)

    async def one(name: str) -> None:
        mid = f"{merchant_id(name)}_{replay.salt}"[:44]
        body = {"id": mid, "name": f"replay {mid}", "settlement_currency": "USD"}
        async with limit:
            response = await post(client, f"{intake}/admin/merchants", body, admin)
            if response.status_code == 409:  # kept from an earlier run: a new key
                response = await post(client, f"{intake}/admin/merchants/{mid}/keys", {}, admin)
        if response.status_code not in (200, 201):
            raise RuntimeError(f"creating merchant failed: {response.status_code} {response.text}")
        replay.keys[name] = response.json()["api_key"]

    await asyncio.gather(*(one(name) for name in names))


async def send_payments(client: Any, intake: str, replay: Replay, concurrency: int) -> None:
    limit = asyncio.Semaphore(concurrency)
    started = time.monotonic()

    async def one(index: int, row: Any) -> None:
        try:
            body = payment_body(row, replay.salt, index)
            response = await post(client, f"{intake}/v1/payments", body, replay.keys[row.merchant])
            if response.status_code != 202:
                raise RuntimeError(
                    f"row {index}: intake answered {response.status_code}: {response.text[:500]}"
                )
            replay.payment_row[response.json()["id"]] = index
        finally:
            limit.release()

    tasks = []
    for index, row in enumerate(replay.rows):  # in time order; at most `concurrency` in flight
        await limit.acquire()
        tasks.append(asyncio.ensure_future(one(index, row)))
        if index and index % 2000 == 0:
            print(f"  sent {index} ({index / (time.monotonic() - started):.0f}/s)", flush=True)
    await asyncio.gather(*tasks)


async def collect_scores(bootstrap: str, replay: Replay, stop: asyncio.Event) -> None:
    from aiokafka import AIOKafkaConsumer, TopicPartition

    from sanalpos_common import topics
    from sanalpos_common.schemas.codec import decode

    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await consumer.start()
    try:
        partitions = await _partitions(consumer, topics.PAYMENT_SCORED)
        tps = [TopicPartition(topics.PAYMENT_SCORED, p) for p in partitions]
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        while not stop.is_set():
            batch = await consumer.getmany(timeout_ms=500, max_records=2000)
            for records in batch.values():
                for record in records:
                    with contextlib.suppress(Exception):  # other producers' noise is not ours
                        payload = decode(topics.PAYMENT_SCORED, record.value).payload
                        replay.scored[str(payload.payment_id)] = (
                            payload.score,
                            payload.decision.value,
                            tuple(payload.reasons),
                        )
    finally:
        await consumer.stop()


async def _partitions(consumer: Any, topic: str) -> list[int]:
    for _ in range(120):
        found = consumer.partitions_for_topic(topic)
        if found:
            return sorted(found)
        await consumer._client.force_metadata_update()
        await asyncio.sleep(0.5)
    raise RuntimeError(f"topic {topic} not found")


async def read_probabilities(database_url: str, replay: Replay) -> None:
    """The full-precision model probability of each decision (fraud's decisions table)."""
    import asyncpg

    conn = await asyncpg.connect(database_url)
    try:
        rows = await conn.fetch(
            "SELECT payment_id::text AS id, model_probability FROM fraud_decisions "
            "WHERE payment_id = ANY($1::uuid[])",
            list(replay.payment_row),
        )
    finally:
        await conn.close()
    for row in rows:
        p = row["model_probability"]
        replay.probability[row["id"]] = math.nan if p is None else float(p)


async def run_replay(
    stack: Stack, replay: Replay, bootstrap: str, concurrency: int, timeout_s: float
) -> None:
    import httpx

    from sanalpos_common.settings import DEV_ADMIN_TOKEN

    admin = os.environ.get("INTAKE_ADMIN_TOKEN", DEV_ADMIN_TOKEN)
    stop = asyncio.Event()
    collector = asyncio.ensure_future(collect_scores(bootstrap, replay, stop))
    limits = httpx.Limits(max_connections=concurrency + 4)
    async with httpx.AsyncClient(timeout=60.0, limits=limits) as client:
        await create_merchants(client, stack.intake(), replay, admin)
        print(
            f"{len(replay.keys)} merchants ready; sending {len(replay.rows)} payments", flush=True
        )
        started = time.monotonic()
        await send_payments(client, stack.intake(), replay, concurrency)
        sent_s = time.monotonic() - started
        print(f"sent {len(replay.rows)} in {sent_s:.1f}s ({len(replay.rows) / sent_s:.0f}/s)")
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if collector.done():
            collector.result()  # raises what broke the collector
        if all(pid in replay.scored for pid in replay.payment_row):
            break
        await asyncio.sleep(0.5)
    all_s = time.monotonic() - started
    stop.set()
    await collector
    missing = [pid for pid in replay.payment_row if pid not in replay.scored]
    if missing:
        raise RuntimeError(f"{len(missing)} payments were never scored within {timeout_s:.0f}s")
    print(f"all scored {all_s:.1f}s after the first send ({len(replay.rows) / all_s:.0f}/s)")
    await read_probabilities(stack.stack.infra_env()["FRAUD_DATABASE_URL"], replay)


# ----------------------------------------------------------------------------- metrics
def model_probability(reasons: tuple[str, ...]) -> float:
    for reason in reasons:
        if reason.startswith("model:"):
            with contextlib.suppress(ValueError):
                return float(reason.split(":", 1)[1])
    return 0.0


@dataclass(frozen=True)
class Outcome:
    label: int
    score: int
    decision: str
    probability: float

    @property
    def rank(self) -> float:
        """The fraud score; ties broken by the model probability."""
        p = self.probability if math.isfinite(self.probability) else 0.0
        return self.score + min(max(p, 0.0), 1.0) * 0.999


def outcomes(replay: Replay) -> list[Outcome]:
    out = []
    for pid, index in replay.payment_row.items():
        score, decision, reasons = replay.scored[pid]
        p = replay.probability.get(pid, model_probability(reasons))
        out.append(Outcome(replay.rows[index].label, score, decision, p))
    return out


def band(results: list[Outcome], decisions: set[str]) -> tuple[float, float, int]:
    flagged = [o for o in results if o.decision in decisions]
    frauds = sum(o.label for o in results)
    hits = sum(o.label for o in flagged)
    precision = hits / len(flagged) if flagged else math.nan
    recall = hits / frauds if frauds else math.nan
    return precision, recall, len(flagged)


def ranking(y: Any, s: Any) -> dict[str, float]:
    import numpy as np
    from sklearn.metrics import average_precision_score, roc_auc_score

    both = 0 < y.sum() < len(y)
    k = max(1, math.ceil(REVIEW_RATE * len(y)))
    top = np.argsort(-s, kind="stable")[:k]
    return {
        "roc_auc": float(roc_auc_score(y, s)) if both else math.nan,
        "average_precision": float(average_precision_score(y, s)) if both else math.nan,
        "recall_at_1pct": float(y[top].sum() / y.sum()) if y.sum() else math.nan,
    }


def report(results: list[Outcome]) -> dict[str, float]:
    import numpy as np

    y = np.array([o.label for o in results])
    decline = band(results, {"decline"})
    flagged = band(results, {"decline", "review"})
    probabilities = np.array([o.probability for o in results])
    model = {"roc_auc": math.nan, "average_precision": math.nan, "recall_at_1pct": math.nan}
    if np.isfinite(probabilities).all():
        model = ranking(y, probabilities)
    return {
        "rows": float(len(y)),
        "frauds": float(y.sum()),
        **ranking(y, np.array([o.rank for o in results])),
        **{f"model_{k}": v for k, v in model.items()},
        "decline_precision": decline[0],
        "decline_recall": decline[1],
        "declined": float(decline[2]),
        "review_or_decline_precision": flagged[0],
        "review_or_decline_recall": flagged[1],
        "reviewed_or_declined": float(flagged[2]),
    }


def print_report(m: dict[str, float], data: Path) -> None:
    print(f"\nfraud evaluation on {data}: {int(m['rows'])} payments, {int(m['frauds'])} fraud")
    print(f"  ROC AUC                         {m['roc_auc']:.4f}")
    print(f"  average precision               {m['average_precision']:.4f}")
    print(f"  recall at a 1% review rate      {m['recall_at_1pct']:.4f}")
    print(
        f"  decline band: precision {m['decline_precision']:.4f}, recall "
        f"{m['decline_recall']:.4f} ({int(m['declined'])} declined)"
    )
    print(
        f"  review or decline: precision {m['review_or_decline_precision']:.4f}, recall "
        f"{m['review_or_decline_recall']:.4f} ({int(m['reviewed_or_declined'])} flagged)"
    )
    print(
        f"  model probability alone (from the decisions): ROC AUC {m['model_roc_auc']:.4f}, "
        f"AP {m['model_average_precision']:.4f}, recall at 1% {m['model_recall_at_1pct']:.4f}"
    )


def plot(results: list[Outcome], m: dict[str, float], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np
    from sklearn.metrics import precision_recall_curve, roc_curve

    y = np.array([o.label for o in results])
    s = np.array([o.rank for o in results])
    fig, (roc_ax, pr_ax) = plt.subplots(1, 2, figsize=(11, 4.8))
    curves = [("fraud score", s, "")]
    p = np.array([o.probability for o in results])
    if np.isfinite(p).all():
        curves.append(("model probability", p, "model_"))
    for name, values, key in curves:
        fpr, tpr, _ = roc_curve(y, values)
        roc_ax.plot(fpr, tpr, label=f"{name} (AUC {m[key + 'roc_auc']:.3f})")
        precision, recall, _ = precision_recall_curve(y, values)
        pr_ax.step(
            recall, precision, where="post", label=f"{name} (AP {m[key + 'average_precision']:.3f})"
        )
    roc_ax.plot([0, 1], [0, 1], color="grey", linestyle=":", linewidth=1)
    roc_ax.set(xlabel="false positive rate", ylabel="true positive rate", title="ROC (replay)")
    pr_ax.set(xlabel="recall", ylabel="precision", title="precision-recall (replay)")
    for ax in (roc_ax, pr_ax):
        ax.legend(loc="lower right" if ax is roc_ax else "upper right")
        ax.grid(alpha=0.3)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)


# ----------------------------------------------------------------------------- main
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="fraud_eval", description=__doc__)
    parser.add_argument("--data", default=os.environ.get("FRAUD_EVAL_DATA") or str(DEFAULT_DATA))
    parser.add_argument("--limit", type=int, default=None, help="first N rows of the file")
    parser.add_argument("--png", default=str(ROOT / ".state" / "fraud-eval" / "curves.png"))
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--timeout", type=float, default=600.0, help="seconds to wait for scores")
    parser.add_argument("--keep-stack", action="store_true")
    args = parser.parse_args(argv)
    data = Path(args.data)
    if not data.is_absolute():
        data = (ROOT / data).resolve()
    if not data.is_file():
        sys.exit(f"no labeled file at {data} (FRAUD_EVAL_DATA / --data)")

    fresh_state = prepare_environment()
    from fraud.model.dataset import read_csv

    labeled = read_csv(data, limit=args.limit)
    stack = Stack(load_stack(), state_dir=fresh_state)
    replay = Replay(rows=labeled.rows, salt=secrets.token_hex(3))
    try:
        if not stack.all_ready():
            stack.start()
        elif fresh_state is not None:
            shutil.rmtree(fresh_state, ignore_errors=True)
        bootstrap = stack.stack.infra_env()["KAFKA_BOOTSTRAP_SERVERS"]
        asyncio.run(run_replay(stack, replay, bootstrap, args.concurrency, args.timeout))
    finally:
        if not args.keep_stack:
            stack.stop()
    results = outcomes(replay)
    metrics = report(results)
    print_report(metrics, data)
    png = Path(args.png)
    plot(results, metrics, png)
    print(f"  curves: {png}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
