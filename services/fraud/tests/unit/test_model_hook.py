"""The shipped model behind the scorer's ModelHook: attribute maps with stored features in,
ModelOutputs out; the same answer whether the features come straight from the engine or
back from their stored (JSON, NaN as null) form."""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime, timedelta

from fraud.domain.features import MCC_OF_CATEGORY, FeatureEngine, MemoryStore, Observation
from fraud.model.combine import model_points
from fraud.model.history import features_for_storage
from fraud.model.hook import ModelHook, features_of
from fraud.model.inference import ModelScorer

T0 = datetime(2020, 5, 1, 23, 30)


def _features(amount_minor: int, mcc: str) -> dict[str, float]:
    engine = FeatureEngine(MemoryStore())
    for i in range(30):  # a category profile of ordinary amounts
        at = T0 - timedelta(hours=i + 1)
        engine.observe(
            Observation(
                card=f"other{i}",
                amount_minor=4_000 + 100 * i,
                event_time=at.replace(tzinfo=UTC).timestamp(),
                local_time=at,
                mcc=mcc,
            )
        )
    payment = Observation(
        card="card",
        amount_minor=amount_minor,
        event_time=T0.replace(tzinfo=UTC).timestamp(),
        local_time=T0,
        mcc=mcc,
        billing_lat=40.0,
        billing_lon=-75.0,
        merchant_lat=40.5,
        merchant_lon=-75.5,
    )
    return engine.features(payment)


def test_the_hook_scores_stored_features_like_the_scorer_scores_live_ones() -> None:
    scorer = ModelScorer.load()
    hook = ModelHook(scorer)
    shopping_net = MCC_OF_CATEGORY["shopping_net"]
    live = [_features(2_500, shopping_net), _features(98_000, shopping_net)]
    stored = [
        {"amount": 1, "features": json.loads(json.dumps(features_for_storage(f)))} for f in live
    ]
    assert all(math.isnan(features_of(row)["card_amount_z"]) for row in stored)
    outputs = hook.predict(stored)
    direct = scorer.score_many(live)
    assert [o.probability for o in outputs] == [d.probability for d in direct]
    assert [o.points for o in outputs] == [model_points(d.probability) for d in direct]
    assert {o.version for o in outputs} == {scorer.version}
    # a large night-time online purchase far above its category's usual amount is riskier
    assert outputs[1].probability > outputs[0].probability
    assert outputs[1].top_features


def test_a_row_without_features_still_scores() -> None:
    (output,) = ModelHook.load().predict([{"amount": 100}])
    assert 0.0 <= output.probability <= 1.0
