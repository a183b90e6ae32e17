"""Train the fraud model from labeled transactions and write a pickle-free artifact.

    uv run --no-sync python -m fraud.model.train --data ../shared/data/fraud/sparkov_dev.csv \
        --seed 7 --out services/fraud/src/fraud/model/artifacts/fraud-model.json

`--data` is a labeled CSV (Sparkov columns, see /work/shared/data/fraud/README.md) or
`history`: the platform's own labeled payments, read from the fraud database
(`FRAUD_DATABASE_URL`): the features each decision stored, labeled by fraud reports
(`fraud.model.history`). Reproducible: features are replayed in event-time
order from the data alone, LightGBM runs with `deterministic=True`, one thread, row-wise
histograms and every seed derived from `--seed`, and `trained_at` comes from the data, not the
clock: same data + seed -> byte-identical artifact.

Hyper-parameters are fixed a priori for ~50 positives (small trees, shrinkage, L2, a floor on
leaf size); `fraud.model.evaluate` estimates how they generalise on held-out cards.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from datetime import datetime
from typing import Any, Protocol

import lightgbm as lgb
import numpy as np

from fraud.model.artifact import Artifact, write_artifact
from fraud.model.dataset import default_data_path, read_csv
from fraud.model.features import FEATURE_SETS, MODEL_FEATURES, categorical_among

DEFAULT_SEED = 7
NUM_BOOST_ROUND = 300

PARAMS: dict[str, Any] = {
    "objective": "binary",
    "learning_rate": 0.03,
    "num_leaves": 7,
    "max_depth": 4,
    "min_data_in_leaf": 30,
    "min_sum_hessian_in_leaf": 1e-3,
    "lambda_l2": 5.0,
    "feature_fraction": 0.8,
    "min_data_per_group": 50,
    "cat_smooth": 10.0,
    "max_bin": 255,
}
DETERMINISM: dict[str, Any] = {
    "deterministic": True,
    "num_threads": 1,
    "force_row_wise": True,
    "verbose": -1,
}


def lgb_params(seed: int, overrides: dict[str, Any] | None = None) -> dict[str, Any]:
    params = {**PARAMS, **(overrides or {}), **DETERMINISM}
    params["seed"] = seed  # LightGBM derives bagging/feature-fraction/... seeds from it
    return params


def fit_booster(
    x: np.ndarray,
    y: np.ndarray,
    feature_names: Sequence[str],
    seed: int = DEFAULT_SEED,
    num_boost_round: int = NUM_BOOST_ROUND,
    overrides: dict[str, Any] | None = None,
) -> lgb.Booster:
    """Train on the given columns; `category` is categorical when it is among them."""
    data = lgb.Dataset(
        x,
        label=y,
        feature_name=list(feature_names),
        categorical_feature=list(categorical_among(feature_names)),
        free_raw_data=True,
        params={"verbose": -1, "max_bin": PARAMS["max_bin"]},
    )
    return lgb.train(lgb_params(seed, overrides), data, num_boost_round=num_boost_round)


class TrainingData(Protocol):
    @property
    def labels(self) -> np.ndarray: ...

    def __len__(self) -> int: ...

    @property
    def cards(self) -> list[str]: ...

    @property
    def last_time(self) -> datetime: ...

    def features(self, names: Sequence[str]) -> np.ndarray: ...


def train(
    data: TrainingData,
    seed: int = DEFAULT_SEED,
    num_boost_round: int = NUM_BOOST_ROUND,
    features: Sequence[str] = MODEL_FEATURES,
    source: str = "csv",
) -> Artifact:
    if len(data) == 0 or int(data.labels.sum()) == 0:
        raise ValueError("need labeled rows with at least one fraud")
    names = tuple(features)
    booster = fit_booster(data.features(names), data.labels, names, seed, num_boost_round)
    return Artifact(
        model_text=booster.model_to_string(),
        feature_names=names,
        categorical_features=categorical_among(names),
        trained_at=data.last_time.isoformat(),
        metadata={
            "seed": seed,
            "num_boost_round": num_boost_round,
            "params": {k: v for k, v in lgb_params(seed).items() if k != "verbose"},
            "rows": len(data),
            "positives": int(data.labels.sum()),
            "cards": len(set(data.cards)),
            "source": source,
        },
    )


def load_data(spec: str, limit: int | None = None) -> tuple[TrainingData, str]:
    if spec == "history":
        from fraud.model.history import read_history

        return read_history(limit=limit), "history"
    return read_csv(spec, limit=limit), "csv"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m fraud.model.train", description=__doc__)
    parser.add_argument(
        "--data", "--csv", default=str(default_data_path()), help="labeled CSV, or 'history'"
    )
    parser.add_argument("--out", required=True, help="artifact path (.json)")
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED)
    parser.add_argument("--rounds", type=int, default=NUM_BOOST_ROUND)
    parser.add_argument("--features", choices=sorted(FEATURE_SETS), default="model")
    parser.add_argument("--limit", type=int, default=None, help="first N rows of the file")
    args = parser.parse_args(argv)
    data, source = load_data(args.data, args.limit)
    artifact = train(data, args.seed, args.rounds, FEATURE_SETS[args.features], source)
    path = write_artifact(artifact, args.out)
    print(
        f"{path}: {artifact.model_version}, {len(data)} rows, "
        f"{int(data.labels.sum())} fraud, trained_at {artifact.trained_at}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
