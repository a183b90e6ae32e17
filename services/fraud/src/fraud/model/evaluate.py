"""Honest generalisation estimate: cross-validation with folds split by card.

    uv run --no-sync python -m fraud.model.evaluate --csv ../shared/data/fraud/sparkov_dev.csv \
        --folds 5 --seed 7 --png /tmp/fraud-eval.png

Every card (cc_num) is in exactly one test fold (StratifiedGroupKFold: GroupKFold by card
that also spreads the fraud-bearing cards evenly over folds; with ~50 frauds a plain
GroupKFold can leave a fold with a handful). For each fold the model is trained on the
other cards and scores the held-out cards. Features are replayed once over the whole file
in event-time order, as the service would see the payments: per-card features use only
the card's own earlier payments; the shared profiles (merchant category amounts, merchant
velocity) include earlier payments of every card, unlabeled, as in production. No label
ever enters a feature.

Compared under identical folds:
- model: LightGBM on MODEL_FEATURES (train.PARAMS, fixed a priori);
- baseline: the same learner and parameters on amount, hour, night, category, age,
  distance (the data set README's "plain gradient-boosting model");
- all features: the same learner on every streaming feature;
- amount: ranking by amount alone (no training).

Metrics: ROC AUC, average precision, recall in the top 1% of scores, and precision/recall
at a decline probability threshold; pooled over all out-of-fold scores and per fold
(mean ± std). Uses scikit-learn and matplotlib (evaluation only; not runtime).
"""

from __future__ import annotations

import argparse
import math
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from sklearn.metrics import average_precision_score, roc_auc_score
from sklearn.model_selection import StratifiedGroupKFold

from fraud.domain.features import FEATURE_NAMES
from fraud.model.dataset import BASELINE_FEATURES, Labeled, default_data_path, matrix, read_csv
from fraud.model.features import MODEL_FEATURES
from fraud.model.train import DEFAULT_SEED, NUM_BOOST_ROUND, fit_booster

DECLINE_THRESHOLD = 0.5
TOP_FRACTION = 0.01


@dataclass(frozen=True)
class Metrics:
    roc_auc: float
    average_precision: float
    recall_top1: float
    precision_at_threshold: float
    recall_at_threshold: float
    positives: int
    rows: int

    def as_dict(self) -> dict[str, float]:
        return {
            "roc_auc": self.roc_auc,
            "ap": self.average_precision,
            "recall@top1%": self.recall_top1,
            "precision@thr": self.precision_at_threshold,
            "recall@thr": self.recall_at_threshold,
        }


def recall_at_top(y: np.ndarray, scores: np.ndarray, fraction: float = TOP_FRACTION) -> float:
    """Share of frauds among the ceil(fraction * n) highest scores (ties: stable order)."""
    positives = int(y.sum())
    if positives == 0:
        return math.nan
    k = max(1, math.ceil(fraction * len(y)))
    top = np.argsort(-scores, kind="stable")[:k]
    return float(y[top].sum()) / positives


def metrics(y: np.ndarray, scores: np.ndarray, threshold: float | None) -> Metrics:
    positives = int(y.sum())
    both = 0 < positives < len(y)
    precision = recall = math.nan
    if threshold is not None:
        flagged = scores >= threshold
        hits = int(y[flagged].sum())
        precision = hits / int(flagged.sum()) if flagged.any() else math.nan
        recall = hits / positives if positives else math.nan
    return Metrics(
        roc_auc=float(roc_auc_score(y, scores)) if both else math.nan,
        average_precision=float(average_precision_score(y, scores)) if both else math.nan,
        recall_top1=recall_at_top(y, scores),
        precision_at_threshold=precision,
        recall_at_threshold=recall,
        positives=positives,
        rows=len(y),
    )


Scorer = Callable[[np.ndarray, np.ndarray, np.ndarray], np.ndarray]
"""(x_train, y_train, x_test) -> scores for x_test."""


def gbm_scorer(columns: Sequence[str], seed: int, rounds: int) -> Scorer:
    def score(x_train: np.ndarray, y_train: np.ndarray, x_test: np.ndarray) -> np.ndarray:
        booster = fit_booster(x_train, y_train, columns, seed, rounds)
        return np.asarray(booster.predict(x_test), dtype=np.float64)

    return score


def amount_scorer(x_train: np.ndarray, y_train: np.ndarray, x_test: np.ndarray) -> np.ndarray:
    return x_test[:, 0].astype(np.float64)


@dataclass
class Result:
    name: str
    threshold: float | None
    oof: np.ndarray
    folds: list[Metrics] = field(default_factory=list)

    def pooled(self, y: np.ndarray) -> Metrics:
        return metrics(y, self.oof, self.threshold)


def candidates(
    data: Labeled, seed: int, rounds: int, threshold: float
) -> dict[str, tuple[np.ndarray, Scorer, float | None]]:
    """name -> (feature matrix, scorer, decision threshold), all on the same rows."""
    rows = data.feature_rows()
    return {
        "model": (
            matrix(rows, MODEL_FEATURES),
            gbm_scorer(MODEL_FEATURES, seed, rounds),
            threshold,
        ),
        "baseline": (
            data.baseline_features(),
            gbm_scorer(BASELINE_FEATURES, seed, rounds),
            threshold,
        ),
        "all features": (
            matrix(rows, FEATURE_NAMES),
            gbm_scorer(FEATURE_NAMES, seed, rounds),
            threshold,
        ),
        "amount": (matrix(rows, ("amount",)), amount_scorer, None),
    }


def cross_validate(
    data: Labeled,
    folds: int = 5,
    seed: int = DEFAULT_SEED,
    rounds: int = NUM_BOOST_ROUND,
    threshold: float = DECLINE_THRESHOLD,
    split_seed: int | None = None,
) -> tuple[np.ndarray, dict[str, Result]]:
    y = data.labels.astype(np.int64)
    groups = np.array(data.cards)
    scorers = candidates(data, seed, rounds, threshold)
    results = {
        name: Result(name, thr, np.full(len(y), math.nan)) for name, (_, _, thr) in scorers.items()
    }
    splitter = StratifiedGroupKFold(
        n_splits=folds, shuffle=True, random_state=seed if split_seed is None else split_seed
    )
    for train_idx, test_idx in splitter.split(np.zeros(len(y)), y, groups):
        assert not set(groups[train_idx]) & set(groups[test_idx])
        for name, (x, scorer, thr) in scorers.items():
            scores = scorer(x[train_idx], y[train_idx], x[test_idx])
            results[name].oof[test_idx] = scores
            results[name].folds.append(metrics(y[test_idx], scores, thr))
    return y, results


def _fmt(value: float) -> str:
    return "  n/a" if math.isnan(value) else f"{value:.3f}"


def report(y: np.ndarray, results: dict[str, Result]) -> str:
    keys = list(next(iter(results.values())).pooled(y).as_dict())
    lines = [f"rows {len(y)}, frauds {int(y.sum())}", ""]
    lines.append("pooled out-of-fold         " + "  ".join(f"{k:>13}" for k in keys))
    for name, res in results.items():
        pooled = res.pooled(y).as_dict()
        lines.append(f"  {name:<24} " + "  ".join(f"{_fmt(pooled[k]):>13}" for k in keys))
    lines.append("")
    lines.append("per fold mean ± std        " + "  ".join(f"{k:>13}" for k in keys))
    for name, res in results.items():
        cells = []
        for k in keys:
            values = np.array([m.as_dict()[k] for m in res.folds], dtype=np.float64)
            values = values[~np.isnan(values)]
            cells.append(f"{values.mean():.3f}±{values.std():.3f}" if len(values) else "n/a")
        lines.append(f"  {name:<24} " + "  ".join(f"{c:>13}" for c in cells))
    lines.append("")
    lines.append("per fold (roc_auc / ap / recall@top1%; frauds in fold)")
    for name, res in results.items():
        cells = [
            f"{_fmt(m.roc_auc)}/{_fmt(m.average_precision)}/{_fmt(m.recall_top1)} ({m.positives})"
            for m in res.folds
        ]
        lines.append(f"  {name:<24} " + "  ".join(cells))
    return "\n".join(lines)


def plot(y: np.ndarray, results: dict[str, Result], path: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from sklearn.metrics import precision_recall_curve, roc_curve

    fig, (roc_ax, pr_ax) = plt.subplots(1, 2, figsize=(11, 4.8))
    for name, res in results.items():
        pooled = res.pooled(y)
        fpr, tpr, _ = roc_curve(y, res.oof)
        roc_ax.plot(fpr, tpr, label=f"{name} (AUC {pooled.roc_auc:.3f})")
        precision, recall, _ = precision_recall_curve(y, res.oof)
        pr_ax.step(
            recall, precision, where="post", label=f"{name} (AP {pooled.average_precision:.3f})"
        )
    roc_ax.plot([0, 1], [0, 1], color="grey", linestyle=":", linewidth=1)
    roc_ax.set(
        xlabel="false positive rate", ylabel="true positive rate", title="ROC (pooled OOF, by card)"
    )
    pr_ax.set(xlabel="recall", ylabel="precision", title="precision-recall (pooled OOF, by card)")
    for ax in (roc_ax, pr_ax):
        ax.legend(loc="lower right" if ax is roc_ax else "upper right")
        ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m fraud.model.evaluate", description=__doc__)
    parser.add_argument("--csv", default=str(default_data_path()))
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED)
    parser.add_argument("--rounds", type=int, default=NUM_BOOST_ROUND)
    parser.add_argument("--threshold", type=float, default=DECLINE_THRESHOLD)
    parser.add_argument("--limit", type=int, default=None)
    parser.add_argument("--png", default=None)
    parser.add_argument(
        "--split-seeds", default=None, help="comma-separated split seeds; mean over them"
    )
    args = parser.parse_args(argv)
    data = read_csv(args.csv, limit=args.limit)
    if args.split_seeds:
        print(repeated(data, [int(v) for v in args.split_seeds.split(",")], args))
        return 0
    y, results = cross_validate(data, args.folds, args.seed, args.rounds, args.threshold)
    print(report(y, results))
    if args.png:
        plot(y, results, args.png)
        print(f"\nwrote {args.png}")
    return 0


def repeated(data: Labeled, split_seeds: Sequence[int], args: argparse.Namespace) -> str:
    """Pooled metrics averaged over several split seeds (less luck of one split)."""
    table: dict[str, list[dict[str, float]]] = {}
    for split_seed in split_seeds:
        y, results = cross_validate(
            data, args.folds, args.seed, args.rounds, args.threshold, split_seed=split_seed
        )
        for name, values in summary(y, results).items():
            table.setdefault(name, []).append(values)
    keys = list(next(iter(table.values()))[0])
    lines = [f"pooled OOF, mean over split seeds {list(split_seeds)}"]
    lines.append(" " * 20 + "  ".join(f"{k:>13}" for k in keys))
    for name, runs in table.items():
        means = [float(np.mean([r[k] for r in runs])) for k in keys]  # nan stays nan
        lines.append(f"  {name:<17} " + "  ".join(f"{m:>13.3f}" for m in means))
    return "\n".join(lines)


def summary(y: np.ndarray, results: dict[str, Result]) -> dict[str, Any]:
    return {name: res.pooled(y).as_dict() for name, res in results.items()}


if __name__ == "__main__":
    sys.exit(main())
