"""In-process cost of the fraud model per payment (feature extraction, scoring, explanation).

    uv run --no-sync python services/fraud/bench/model_bench.py [--csv PATH] [--artifact PATH]
        [--rows 2000] [--repeat 3]

Trains on the CSV (or loads `--artifact`), then times, on real rows of the file:
- extract: `features.extract` + `CardState.updated` per payment (what the service does);
- score 1 row: `FraudModel.score` on one feature vector (the per-payment path);
- score batched: `FraudModel.score_many` on batches of 1, 10, 100, 1000 rows, per row;
- top_features: `FraudModel.top_features(k=3)` (pred_contrib) on one row.
Prints microseconds per payment (best of --repeat runs, median over rows for single-row
timings). Numbers only; nothing is written.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from fraud.model.artifact import write_artifact
from fraud.model.dataset import default_data_path, read_csv
from fraud.model.features import CardState, extract
from fraud.model.inference import FraudModel
from fraud.model.train import train


def per_call_us(fn, items, repeat: int) -> tuple[float, float]:  # type: ignore[no-untyped-def]
    """(median, p99) microseconds per call over items, best run of `repeat`."""
    best: list[float] | None = None
    for _ in range(repeat):
        times = []
        for item in items:
            t0 = time.perf_counter_ns()
            fn(item)
            times.append((time.perf_counter_ns() - t0) / 1000)
        if best is None or statistics.median(times) < statistics.median(best):
            best = times
    assert best is not None
    best.sort()
    return statistics.median(best), best[int(0.99 * (len(best) - 1))]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--csv", default=str(default_data_path()))
    parser.add_argument("--artifact", default=None)
    parser.add_argument("--rows", type=int, default=2000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()

    data = read_csv(args.csv)
    if args.artifact:
        model = FraudModel.load(args.artifact)
    else:
        with tempfile.TemporaryDirectory() as tmp:
            t0 = time.perf_counter()
            artifact = train(data)
            train_s = time.perf_counter() - t0
            path = write_artifact(artifact, Path(tmp) / "model.json")
            t0 = time.perf_counter()
            model = FraudModel.load(path)
            load_ms = (time.perf_counter() - t0) * 1000
        print(f"train: {train_s:.2f} s on {len(data)} rows; load+verify: {load_ms:.1f} ms")
    print(f"model {model.version}, {model.artifact.metadata.get('num_boost_round')} trees")

    n = min(args.rows, len(data))
    x = data.features()[:n]
    pairs = list(zip(data.cards[:n], data.records[:n], strict=True))
    states: dict[str, CardState] = {}

    def extract_one(pair):  # type: ignore[no-untyped-def]
        card, record = pair
        state = states.get(card, CardState())
        extract(record, state)
        states[card] = state.updated(record)

    med, p99 = per_call_us(extract_one, pairs, 1)
    print(f"extract + state update : median {med:7.1f} µs   p99 {p99:7.1f} µs")
    med, p99 = per_call_us(model.score, list(x), args.repeat)
    print(f"score, 1 row           : median {med:7.1f} µs   p99 {p99:7.1f} µs")
    med, p99 = per_call_us(lambda r: model.top_features(r, 3), list(x[:500]), args.repeat)
    print(f"top_features(k=3)      : median {med:7.1f} µs   p99 {p99:7.1f} µs")
    for batch in (1, 10, 100, 1000):
        chunks = [x[i : i + batch] for i in range(0, n - batch + 1, batch)]
        runs = []
        for _ in range(args.repeat):
            t0 = time.perf_counter_ns()
            for c in chunks:
                model.score_many(c)
            runs.append((time.perf_counter_ns() - t0) / 1000 / (len(chunks) * batch))
        print(f"score_many, batch {batch:4d} : {min(runs):7.2f} µs per payment")
    check = model.score_many(x)
    assert np.array_equal(check, model.score_many(x))
    return 0


if __name__ == "__main__":
    sys.exit(main())
