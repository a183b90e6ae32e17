"""In-process cost of the fraud model per payment: features, scoring, explanation.

    uv run --no-sync python services/fraud/bench/model_bench.py [--csv PATH] [--artifact PATH]
        [--rows 2000] [--repeat 3]

Loads `--artifact` (default: the shipped one), then times, on real rows of the file:
- features: `FeatureEngine.features` + `observe` per payment (what the agent does per
  payment; in-memory store, so the faust table's own cost is not in it);
- score 1 row: `ModelScorer.score(explain=False)` (the per-payment path without a batch);
- score batched: `ModelScorer.score_many` on batches of 1, 10, 100, 1000 rows, per row,
  without and with explanations (top features via pred_contrib).
Prints microseconds per payment (best of --repeat runs; median over rows for single-row
timings). Numbers only; nothing is written.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time

from fraud.domain.features import FeatureEngine, MemoryStore
from fraud.model.dataset import default_data_path, read_csv
from fraud.model.inference import ModelScorer


def _best(repeat: int, fn: object) -> float:
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        fn()  # type: ignore[operator]
        times.append(time.perf_counter() - started)
    return min(times)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--csv", default=str(default_data_path()))
    parser.add_argument("--artifact", default=None)
    parser.add_argument("--rows", type=int, default=2000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args(argv)

    started = time.perf_counter()
    scorer = ModelScorer.load(args.artifact)
    print(f"load + verify {scorer.version}: {(time.perf_counter() - started) * 1e3:.1f} ms")
    data = read_csv(args.csv, limit=args.rows)
    observations = [r.observation() for r in data.rows]
    n = len(observations)

    def features() -> None:
        engine = FeatureEngine(MemoryStore(), partitions=3)
        for o in observations:
            engine.features(o)
            engine.observe(o, 0)

    per = _best(args.repeat, features) / n * 1e6
    print(f"features + state update: {per:.1f} µs/payment ({n} payments, 3 partitions)")
    rows = data.feature_rows()

    singles = []
    for row in rows[:500]:
        t = time.perf_counter()
        scorer.score(row, explain=False)
        singles.append(time.perf_counter() - t)
    singles.sort()
    print(
        f"score 1 row: median {statistics.median(singles) * 1e6:.1f} µs, "
        f"p99 {singles[int(len(singles) * 0.99)] * 1e6:.1f} µs"
    )
    for explain in (False, True):
        for size in (1, 10, 100, 1000):
            batches = [rows[i : i + size] for i in range(0, min(n, 2000), size)]
            total = sum(len(b) for b in batches)

            def run(batches: list = batches, explain: bool = explain) -> None:  # type: ignore[type-arg]
                for b in batches:
                    scorer.score_many(b, explain=explain)

            per = _best(args.repeat, run) / total * 1e6
            label = "with top features" if explain else "probability only"
            print(f"score_many batch {size:>4} ({label}): {per:.1f} µs/payment")
    return 0


if __name__ == "__main__":
    sys.exit(main())
