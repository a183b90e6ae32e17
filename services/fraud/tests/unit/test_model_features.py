"""Streaming features (fraud.domain.features): windows, profiles, geography, no peeking."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

import pytest

from fraud.domain.features import (
    CATEGORIES,
    FEATURE_NAMES,
    MCC_OF_CATEGORY,
    OTHER_CATEGORY,
    FeatureEngine,
    MemoryStore,
    Observation,
    card_key,
    category_code,
    category_key,
    haversine_km,
    key_partition,
    replay,
    shared_key,
)
from fraud.model.sparkov import luhn_check_digit, merchant_id, parse_row, replay_card_number

T0 = datetime(2020, 3, 1, 12, 0, 0)


def obs(minutes: float = 0, amount: int = 1_000, card: str = "c1", **kw: object) -> Observation:
    at = T0 + timedelta(minutes=minutes)
    return Observation(
        card=card,
        amount_minor=amount,
        event_time=at.replace(tzinfo=UTC).timestamp(),
        local_time=at,
        **kw,  # type: ignore[arg-type]
    )


def test_haversine_known_distances() -> None:
    assert haversine_km(0, 0, 0, 0) == 0
    assert haversine_km(0, 0, 0, 1) == pytest.approx(111.19, abs=0.05)
    assert haversine_km(41.0, 29.0, 39.9, 32.85) == pytest.approx(351, abs=5)


def test_distance_only_when_both_locations_are_known() -> None:
    f = FeatureEngine(MemoryStore())
    assert math.isnan(f.features(obs(billing_lat=1.0, billing_lon=2.0))["distance_km"])
    both = obs(billing_lat=0.0, billing_lon=0.0, merchant_lat=0.0, merchant_lon=1.0)
    assert f.features(both)["distance_km"] == pytest.approx(111.19, abs=0.05)


def test_country_mismatches() -> None:
    f = FeatureEngine(MemoryStore()).features
    same = f(obs(billing_country="TR", bin_country="TR", ip_country="TR"))
    assert same["country_mismatch_bin"] == 0.0 and same["country_mismatch_ip"] == 0.0
    other = f(obs(billing_country="TR", bin_country="US", ip_country="DE"))
    assert other["country_mismatch_bin"] == 1.0 and other["country_mismatch_ip"] == 1.0
    assert math.isnan(f(obs(billing_country="TR"))["country_mismatch_ip"])


@pytest.mark.parametrize(("hour", "night"), [(21, 0.0), (22, 1.0), (0, 1.0), (3, 1.0), (4, 0.0)])
def test_hour_and_night_from_the_payment_time(hour: int, night: float) -> None:
    row = FeatureEngine(MemoryStore()).features(obs(minutes=(hour - 12) * 60))
    assert row["hour"] == hour and row["night"] == night


def test_category_codes_come_from_the_mcc_and_unknown_is_other() -> None:
    assert len(CATEGORIES) == 14 and len(set(MCC_OF_CATEGORY.values())) == 14
    assert category_code(MCC_OF_CATEGORY["grocery_pos"]) == CATEGORIES.index("grocery_pos")
    assert category_code("0000") == OTHER_CATEGORY == category_code(None)


def test_a_first_payment_has_no_history() -> None:
    row = FeatureEngine(MemoryStore()).features(obs())
    assert set(row) == set(FEATURE_NAMES)
    assert row["card_prev_count"] == 0 and row["card_count_24h"] == 0
    for name in ("card_secs_since_prev", "card_amount_z", "card_amount_ratio", "ip_count_10m"):
        assert math.isnan(row[name]), name


def test_card_window_counts_across_bucket_and_window_boundaries() -> None:
    engine = FeatureEngine(MemoryStore())
    for minute in (0, 0.5, 5, 9.9):
        engine.observe(obs(minute, amount=500))
    # 10 min window = the last 10 one-minute buckets, the current one included
    at_9 = engine.features(obs(9.95))
    assert at_9["card_count_10m"] == 4 and at_9["card_sum_24h"] == 20.0
    at_10 = engine.features(obs(10.0))  # bucket 0 (minutes 0 and 0.5) just left the window
    assert at_10["card_count_10m"] == 2 and at_10["card_count_1h"] == 4
    at_60 = engine.features(obs(60.0))  # the 1 h window is 12 five-minute buckets: 5..60
    assert at_60["card_count_1h"] == 2 and at_60["card_count_24h"] == 4
    assert engine.features(obs(65.0))["card_count_1h"] == 0
    assert engine.features(obs(24 * 60 + 1))["card_count_24h"] == 0


def test_card_profile_is_the_cards_own_past() -> None:
    engine = FeatureEngine(MemoryStore())
    mcc = MCC_OF_CATEGORY["grocery_pos"]
    for minute, amount in ((0, 1_000), (30, 3_000)):
        engine.observe(obs(minute, amount=amount, mcc=mcc))
    row = engine.features(obs(90, amount=12_000, mcc=mcc))
    assert row["card_prev_count"] == 2
    assert row["card_secs_since_prev"] == 60 * 60
    assert row["card_amount_ratio"] == pytest.approx(6.0)  # 120.00 / mean 20.00
    assert row["card_amount_z"] == pytest.approx((12_000 - 2_000) / math.sqrt(2_000_000))
    assert row["card_category_share"] == 1.0
    night = engine.features(obs(14 * 60, mcc=MCC_OF_CATEGORY["travel"]))  # 02:00
    assert night["card_category_share"] == 0.0 and night["card_hour_share"] == 0.0


def test_other_cards_do_not_touch_a_cards_history_but_share_category_and_ip() -> None:
    engine = FeatureEngine(MemoryStore())
    mcc = MCC_OF_CATEGORY["travel"]
    for i in range(3):
        engine.observe(
            obs(i, amount=1_000 * (i + 1), card=f"other{i}", mcc=mcc, customer_ip="10.0.0.1")
        )
    row = engine.features(obs(5, amount=4_000, mcc=mcc, customer_ip="10.0.0.1"))
    assert row["card_prev_count"] == 0
    assert row["ip_count_10m"] == 3 and row["ip_sum_24h"] == 60.0
    assert row["category_amount_ratio"] == pytest.approx(2.0)  # 40.00 / mean 20.00
    assert row["category_amount_z"] == pytest.approx(2.0)  # (40 - 20) / std 10


def test_shared_state_kept_per_partition_reads_as_one() -> None:
    """Spread over 3 partitions, shared counts read back as one global counter."""
    spread, single = FeatureEngine(MemoryStore(), partitions=3), FeatureEngine(MemoryStore())
    for i in range(9):
        o = obs(i, amount=700 + i, card=f"c{i % 4}", merchant="m1", email="A@x.io", mcc="5411")
        assert spread.features(o) == single.features(o)
        spread.observe(o, partition=i % 3)
        single.observe(o)
    final = obs(10, merchant="m1", email="a@X.io".lower(), mcc="5411")
    assert spread.features(final) == single.features(final)
    assert single.features(final)["email_count_1h"] == 9


def test_replay_never_sees_the_payment_itself_or_later_ones() -> None:
    stream = [obs(0, 1_000), obs(1, 2_000), obs(2, 999_999)]
    rows = replay(stream)
    assert [r["card_prev_count"] for r in rows] == [0, 1, 2]
    assert rows[1]["card_amount_ratio"] == 2.0  # sees only the first payment
    assert rows[:2] == replay(stream[:2])


def test_sparkov_mapping() -> None:
    row = parse_row(
        {
            "trans_date_trans_time": "2019-01-01 06:15:18",
            "cc_num": "4063094974360571498",
            "merchant": "fraud_Pacocha-Bauch",
            "category": "shopping_pos",
            "amt": "1.95",
            "lat": "41.71",
            "long": "-111.9817",
            "merch_lat": "41.930677",
            "merch_long": "-111.044483",
            "dob": "1963-06-13",
            "is_fraud": "0",
        }
    )
    assert row.amount_minor == 195 and row.mcc == MCC_OF_CATEGORY["shopping_pos"]
    assert row.event_time == datetime(2019, 1, 1, 6, 15, 18, tzinfo=UTC).timestamp()
    o = row.observation()
    assert o.merchant == merchant_id("fraud_Pacocha-Bauch") != "fraud_Pacocha-Bauch"
    number = replay_card_number(row.cc_num)
    assert len(number) == 16 and number == replay_card_number(row.cc_num)
    assert number != replay_card_number("377026671291680")
    assert luhn_check_digit(number[:-1]) == number[-1]
    assert luhn_check_digit("411111111111111") == "1"  # the published test card


def test_a_key_names_the_partition_of_shared_state_but_not_of_a_card() -> None:
    assert key_partition(shared_key("email", "a|b@example.com", 11)) == 11
    assert key_partition(category_key(3, 0)) == 0
    assert key_partition(card_key("fp|with|bars")) is None
