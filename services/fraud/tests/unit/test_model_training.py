"""Training, the artifact, inference and evaluation on slices of the labeled data set.

The data file is read from `SANALPOS_FRAUD_DATA` (default
`<repo>/../shared/data/fraud/sparkov_dev.csv`); it is never part of the repository. It is
present in CI, so a missing file is a failure, not a skip.
"""

from __future__ import annotations

import json
import math
from datetime import datetime
from pathlib import Path

import numpy as np
import pytest

from fraud.domain.features import FeatureEngine, MemoryStore, Observation
from fraud.model.artifact import FORMAT, Artifact, ArtifactError, load_artifact, write_artifact
from fraud.model.combine import REASON_MIN_P
from fraud.model.dataset import DATA_ENV, Labeled, default_data_path, read_csv
from fraud.model.evaluate import cross_validate, metrics, recall_at_top, summary
from fraud.model.features import MODEL_FEATURES
from fraud.model.inference import SHIPPED_ARTIFACT, ModelScorer
from fraud.model.train import train

SLICE = 3000  # first rows of the file: ~580 cards, 12 frauds
ROUNDS = 40


@pytest.fixture(scope="module")
def data() -> Labeled:
    path = default_data_path()
    if not path.is_file():
        pytest.fail(
            f"labeled fraud data not found at {path}: set {DATA_ENV} to sparkov_dev.csv "
            "(see /work/shared/data/fraud/README.md)"
        )
    labeled = read_csv(path, limit=SLICE)
    assert int(labeled.labels.sum()) >= 5
    return labeled


@pytest.fixture(scope="module")
def artifact(data: Labeled) -> Artifact:
    return train(data, seed=7, num_boost_round=ROUNDS)


@pytest.fixture(scope="module")
def model_path(artifact: Artifact, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_artifact(artifact, tmp_path_factory.mktemp("model") / "fraud-model.json")


def test_rows_are_in_event_time_order(data: Labeled) -> None:
    times = [r.event_time for r in data.rows]
    assert times == sorted(times)


def test_same_data_and_seed_give_a_byte_identical_artifact(
    data: Labeled, model_path: Path, tmp_path: Path
) -> None:
    again = write_artifact(train(data, seed=7, num_boost_round=ROUNDS), tmp_path / "again.json")
    assert again.read_bytes() == model_path.read_bytes()


def test_another_seed_is_recorded(data: Labeled, artifact: Artifact) -> None:
    other = train(data, seed=8, num_boost_round=ROUNDS)
    assert other.metadata["seed"] == 8 and artifact.metadata["seed"] == 7


def test_artifact_envelope(artifact: Artifact, model_path: Path, data: Labeled) -> None:
    envelope = json.loads(model_path.read_text())
    assert envelope["format"] == FORMAT
    assert envelope["version"] == 2
    assert envelope["feature_names"] == list(MODEL_FEATURES)
    assert len(envelope["categories"]) == 14
    # trained_at comes from the data (its latest payment), not from the clock
    assert envelope["trained_at"] == data.last_time.isoformat()
    assert envelope["model_version"] == artifact.model_version
    assert envelope["metadata"]["params"]["deterministic"] is True
    assert envelope["metadata"]["params"]["num_threads"] == 1
    assert b"pickle" not in model_path.read_bytes().lower()


def test_round_trip(artifact: Artifact, model_path: Path) -> None:
    loaded = load_artifact(model_path)
    assert loaded == artifact
    assert ModelScorer.load(model_path).version == artifact.model_version


def _tampered(model_path: Path, tmp_path: Path, edit: object) -> Path:
    envelope = json.loads(model_path.read_text())
    edit(envelope)  # type: ignore[operator]
    path = tmp_path / "tampered.json"
    path.write_text(json.dumps(envelope))
    return path


def test_a_changed_model_text_is_refused(model_path: Path, tmp_path: Path) -> None:
    def flip_a_leaf(envelope: dict[str, str]) -> None:
        text = envelope["model"]
        i = text.index("leaf_value=") + len("leaf_value=")
        envelope["model"] = text[:i] + ("1" if text[i] != "1" else "2") + text[i + 1 :]

    with pytest.raises(ArtifactError, match="sha256"):
        ModelScorer.load(_tampered(model_path, tmp_path, flip_a_leaf))


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda e: e.update(format="something-else"), "not a sanalpos-fraud-model"),
        (lambda e: e.update(version=99), "unsupported"),
        (lambda e: e.update(model_sha256="0" * 64), "sha256"),
        (lambda e: e.update(model_version="lgbm-000000000000"), "model_version"),
        (lambda e: e.pop("feature_names"), "malformed"),
    ],
)
def test_a_bad_envelope_is_refused(
    model_path: Path, tmp_path: Path, edit: object, message: str
) -> None:
    with pytest.raises(ArtifactError, match=message):
        load_artifact(_tampered(model_path, tmp_path, edit))


def test_features_the_code_does_not_compute_are_refused(model_path: Path, tmp_path: Path) -> None:
    def rename(envelope: dict[str, list[str]]) -> None:
        envelope["feature_names"] = [*envelope["feature_names"][:-1], "renamed"]

    with pytest.raises(ArtifactError, match="does not compute"):
        ModelScorer.load(_tampered(model_path, tmp_path, rename))


def test_another_category_list_is_refused(model_path: Path, tmp_path: Path) -> None:
    def reorder(envelope: dict[str, list[str]]) -> None:
        envelope["categories"] = list(reversed(envelope["categories"]))

    with pytest.raises(ArtifactError, match="retrain"):
        ModelScorer.load(_tampered(model_path, tmp_path, reorder))


def test_not_json_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "x.json"
    path.write_bytes(b"\x80\x04\x95 pickle-ish")
    with pytest.raises((ArtifactError, UnicodeDecodeError)):
        load_artifact(path)


def test_inference_is_deterministic_for_a_fixed_artifact(model_path: Path, data: Labeled) -> None:
    rows = data.feature_rows()[:500]
    first, second = ModelScorer.load(model_path), ModelScorer.load(model_path)
    batch = first.score_many(rows)
    probabilities = np.array([s.probability for s in batch])
    assert np.all((probabilities >= 0) & (probabilities <= 1))
    assert batch == second.score_many(rows)
    assert batch == first.score_many(rows)
    singles = [first.score(row) for row in rows[:50]]
    assert singles == batch[:50]  # one row or a batch: the same numbers, bit for bit
    assert {s.version for s in batch} == {first.version}


def test_top_features_explain_the_score(model_path: Path, data: Labeled) -> None:
    model = ModelScorer.load(model_path)
    rows = data.feature_rows()
    scores = model.score_many(rows, explain=False)
    assert all(s.top_features == () for s in scores)
    explained = model.score_many(rows[:300])  # only rows at or above the explain threshold
    assert all(bool(s.top_features) <= (s.probability >= REASON_MIN_P) for s in explained)
    row = rows[int(np.argmax([s.probability for s in scores]))]
    x = model.matrix([row])
    raw = float(model.contributions(x)[0].sum())
    result = model.score(row, explain_min=0.0)
    assert 1 / (1 + math.exp(-raw)) == pytest.approx(result.probability, abs=1e-9)
    top = result.top_features
    assert 1 <= len(top) <= 3
    assert all(name in MODEL_FEATURES and value > 0 for name, value in top)
    assert [v for _, v in top] == sorted((v for _, v in top), reverse=True)


def test_a_live_payment_with_little_context_scores(model_path: Path) -> None:
    model = ModelScorer.load(model_path)
    at = datetime(2020, 6, 1, 2, 30)
    obs = Observation(card="fp", amount_minor=95_000, event_time=at.timestamp(), local_time=at)
    result = model.score(FeatureEngine(MemoryStore()).features(obs))
    assert 0.0 <= result.probability <= 1.0


def test_the_shipped_artifact_loads_and_uses_the_model_features() -> None:
    scorer = ModelScorer.load()
    assert scorer.feature_names == MODEL_FEATURES
    assert scorer.artifact.metadata["rows"] == 9863  # trained on sparkov_dev.csv
    assert ModelScorer.load(SHIPPED_ARTIFACT).version == scorer.version


def test_metrics_on_a_known_ranking() -> None:
    y = np.array([0] * 98 + [1, 1])
    scores = np.arange(100, dtype=np.float64)  # both frauds ranked on top
    m = metrics(y, scores, threshold=98.5)
    assert m.roc_auc == 1.0 and m.average_precision == 1.0
    assert recall_at_top(y, scores) == 0.5  # top 1% of 100 rows is one row
    assert m.precision_at_threshold == 1.0 and m.recall_at_threshold == 0.5


def test_a_small_cross_validation_gives_finite_metrics(data: Labeled) -> None:
    y, results = cross_validate(data, folds=3, seed=7, rounds=ROUNDS)
    assert set(results) == {"model", "baseline", "all features", "amount"}
    for name, pooled in summary(y, results).items():
        for key in ("roc_auc", "ap", "recall@top1%"):
            assert math.isfinite(pooled[key]), (name, key)
            assert 0.0 <= pooled[key] <= 1.0
    for res in results.values():
        assert len(res.folds) == 3
        assert not np.isnan(res.oof).any()  # every row scored exactly once, out of fold


def test_the_command_lines_run_on_a_slice(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from fraud.model import evaluate as evaluate_cli
    from fraud.model import train as train_cli

    csv = str(default_data_path())
    out = tmp_path / "m.json"
    args = ["--data", csv, "--out", str(out), "--seed", "7", "--limit", "2000", "--rounds", "20"]
    assert train_cli.main(args) == 0
    first = out.read_bytes()
    assert train_cli.main(args) == 0
    assert out.read_bytes() == first
    from fraud.entrypoints import cli

    assert cli.main(["train", *args]) == 0  # `sanalpos fraud train ...`
    assert out.read_bytes() == first
    png = tmp_path / "eval.png"
    assert (
        evaluate_cli.main(
            ["--csv", csv, "--folds", "3", "--limit", "3000", "--rounds", "20", "--png", str(png)]
        )
        == 0
    )
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    printed = capsys.readouterr().out
    assert "pooled out-of-fold" in printed and "baseline" in printed


def test_training_from_stored_history_matches_training_from_the_replay(data: Labeled) -> None:
    """Features stored with each decision (NaN as null, through JSON) train the same model."""
    from fraud.model.history import features_for_storage, from_records

    records = [
        {
            "card_fingerprint": card,
            "payment_created_at": row.local_time,
            "features": json.dumps(features_for_storage(features)),
            "label": int(label),
        }
        for card, row, features, label in zip(
            data.cards, data.rows, data.feature_rows(), data.labels, strict=True
        )
    ]
    history = from_records(records)
    np.testing.assert_array_equal(history.features(MODEL_FEATURES), data.features(MODEL_FEATURES))
    stored = train(history, seed=7, num_boost_round=ROUNDS, source="history")
    assert stored.model_text == train(data, seed=7, num_boost_round=ROUNDS).model_text
    assert stored.metadata["source"] == "history"
