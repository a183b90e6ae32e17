"""fraud.model.features on hand-made rows: distance, age, night, category, streaming."""

from __future__ import annotations

import math
from datetime import date, datetime

import numpy as np
import pytest

from fraud.model.features import (
    CATEGORIES,
    FEATURE_NAMES,
    OTHER_CODE,
    CardState,
    PaymentRecord,
    age_years,
    category_code,
    extract,
    feature_matrix,
    haversine_km,
)

F = {name: i for i, name in enumerate(FEATURE_NAMES)}


def record(
    amount: float = 10.0,
    at: datetime = datetime(2020, 3, 4, 14, 30),  # a Wednesday
    **kwargs: object,
) -> PaymentRecord:
    return PaymentRecord(amount=amount, event_time=at.timestamp(), local_time=at, **kwargs)  # type: ignore[arg-type]


def test_haversine_known_distances() -> None:
    assert haversine_km(0, 0, 0, 0) == 0.0
    # one degree of latitude ~ 111.2 km
    assert haversine_km(10, 20, 11, 20) == pytest.approx(111.2, abs=0.1)
    # London -> Paris ~ 343.5 km
    assert haversine_km(51.5074, -0.1278, 48.8566, 2.3522) == pytest.approx(343.5, abs=1.0)


def test_distance_is_computed_only_when_all_coordinates_are_known() -> None:
    x = extract(record(home_lat=10.0, home_lon=20.0, merchant_lat=11.0, merchant_lon=20.0))
    assert x[F["distance_km"]] == pytest.approx(111.2, abs=0.1)
    assert math.isnan(extract(record(home_lat=10.0, home_lon=20.0))[F["distance_km"]])


def test_age_from_date_of_birth_on_the_payment_date() -> None:
    assert age_years(date(1990, 3, 4), date(2020, 3, 4)) == pytest.approx(30.0, abs=0.01)
    assert math.isnan(age_years(None, date(2020, 1, 1)))
    assert math.isnan(age_years(date(2021, 1, 1), date(2020, 1, 1)))
    x = extract(record(birth_date=date(1980, 3, 4)))
    assert x[F["age_years"]] == pytest.approx(40.0, abs=0.01)
    assert math.isnan(extract(record())[F["age_years"]])


@pytest.mark.parametrize(
    ("hour", "night"), [(21, 0.0), (22, 1.0), (23, 1.0), (0, 1.0), (3, 1.0), (4, 0.0), (12, 0.0)]
)
def test_hour_and_night_flag_come_from_local_time(hour: int, night: float) -> None:
    x = extract(record(at=datetime(2020, 3, 4, hour, 59)))
    assert x[F["hour"]] == hour
    assert x[F["night"]] == night
    assert x[F["day_of_week"]] == 2  # Wednesday


def test_amount_and_log_amount() -> None:
    x = extract(record(amount=99.0))
    assert x[F["amount"]] == 99.0
    assert x[F["log_amount"]] == pytest.approx(math.log(100.0))


def test_category_codes_are_fixed_and_unknown_is_other() -> None:
    assert CATEGORIES[0] == "entertainment" and len(CATEGORIES) == 14
    assert category_code("grocery_pos") == CATEGORIES.index("grocery_pos")
    assert category_code("GROCERY_POS ") == CATEGORIES.index("grocery_pos")
    assert category_code("crypto_exchange") == OTHER_CODE
    assert category_code(None) == OTHER_CODE
    assert extract(record(category="travel"))[F["category"]] == CATEGORIES.index("travel")


def test_first_payment_of_a_card_has_no_history() -> None:
    x = extract(record())
    assert x[F["card_prev_count"]] == 0
    for name in ("card_secs_since_prev", "card_amount_z", "card_amount_ratio"):
        assert math.isnan(x[F[name]])


def test_streaming_features_use_only_the_cards_earlier_payments() -> None:
    t0 = datetime(2020, 1, 1, 12, 0)
    a1 = record(10.0, t0)
    b1 = record(500.0, t0.replace(minute=5))
    a2 = record(20.0, t0.replace(hour=13))
    a3 = record(300.0, t0.replace(hour=15))
    rows = [("A", a1), ("B", b1), ("A", a2), ("A", a3)]
    x = feature_matrix(rows)
    # card A, 2nd payment: one earlier payment (10.0), an hour before; card B is not mixed in
    assert x[2, F["card_prev_count"]] == 1
    assert x[2, F["card_secs_since_prev"]] == 3600
    assert x[2, F["card_amount_ratio"]] == pytest.approx(2.0)
    assert math.isnan(x[2, F["card_amount_z"]])  # needs two earlier payments
    # card A, 3rd payment: mean 15, sample std 7.07 of the two earlier amounts
    assert x[3, F["card_prev_count"]] == 2
    assert x[3, F["card_secs_since_prev"]] == 7200
    assert x[3, F["card_amount_z"]] == pytest.approx((300 - 15) / math.sqrt(50))
    # card B is on its own
    assert x[1, F["card_prev_count"]] == 0


def test_streaming_features_do_not_peek_ahead() -> None:
    t0 = datetime(2020, 1, 1, 12, 0)
    rows = [("A", record(10.0 * (i + 1), t0.replace(hour=i))) for i in range(6)]
    full = feature_matrix(rows)
    for n in range(1, len(rows) + 1):
        prefix = feature_matrix(rows[:n])
        # a row's features are the same whatever comes after it (future rows, a huge amount)
        np.testing.assert_array_equal(prefix, full[:n])
    changed = [*rows[:3], ("A", record(1e6, t0.replace(hour=3))), *rows[4:]]
    # changing a later payment leaves every earlier row's features as they were
    np.testing.assert_array_equal(feature_matrix(changed)[:3], full[:3])
    assert feature_matrix(changed)[3, F["card_prev_count"]] == full[3, F["card_prev_count"]]


def test_card_state_round_trips_and_matches_welford() -> None:
    state = CardState()
    amounts = [12.0, 7.5, 100.0, 3.25]
    for i, amount in enumerate(amounts):
        state = state.updated(record(amount, datetime(2020, 1, 1, i, 0)))
    assert state.count == 4
    assert state.mean == pytest.approx(np.mean(amounts))
    assert state.m2 / (state.count - 1) == pytest.approx(np.var(amounts, ddof=1))
    assert CardState.from_dict(state.as_dict()) == state
    assert CardState.from_dict({}) == CardState()


def test_missing_amount_is_nan_not_an_error() -> None:
    x = extract(record(amount=math.nan))
    assert math.isnan(x[F["amount"]]) and math.isnan(x[F["log_amount"]])
