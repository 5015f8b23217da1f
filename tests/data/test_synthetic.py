"""Synthetic contacts and events: determinism, schema, and the correlations simulations rely on."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd
import pytest

from mawb import data, intake

COUNTRY_TIMEZONES = {
    "US": {"America/New_York", "America/Chicago", "America/Denver", "America/Los_Angeles"},
    "CA": {"America/Toronto", "America/Vancouver"},
    "GB": {"Europe/London"},
    "DE": {"Europe/Berlin"},
    "FR": {"Europe/Paris"},
    "JP": {"Asia/Tokyo"},
    "AU": {"Australia/Sydney"},
    "IN": {"Asia/Kolkata"},
    "BR": {"America/Sao_Paulo"},
}
EPOCH = pd.Timestamp(data.DEMO_EPOCH)


@pytest.fixture(scope="module")
def contacts() -> pd.DataFrame:
    return data.synthetic_contacts(20_000, seed=3)


@pytest.fixture(scope="module")
def events(contacts: pd.DataFrame) -> pd.DataFrame:
    return data.synthetic_events(contacts, days=21, seed=3)


def test_same_seed_gives_identical_frames() -> None:
    first = data.synthetic_contacts(500, seed=11)
    pd.testing.assert_frame_equal(first, data.synthetic_contacts(500, seed=11))
    pd.testing.assert_frame_equal(
        data.synthetic_events(first, seed=11), data.synthetic_events(first, seed=11)
    )
    other = data.synthetic_contacts(500, seed=12)
    assert not first["engagement_score"].equals(other["engagement_score"])
    assert not data.synthetic_events(first, seed=11).equals(data.synthetic_events(first, seed=12))


def test_contact_columns_and_dtypes_follow_the_intake_schema(contacts: pd.DataFrame) -> None:
    assert list(contacts.columns) == list(intake.CONTACT_COLUMNS)
    for column, kind in intake.CONTACT_COLUMNS.items():
        assert str(contacts[column].dtype) == intake.DTYPES[kind], column


def test_event_columns_and_dtypes_follow_the_intake_schema(events: pd.DataFrame) -> None:
    assert list(events.columns) == list(intake.EVENT_COLUMNS)
    for column, kind in intake.EVENT_COLUMNS.items():
        assert str(events[column].dtype) == intake.DTYPES[kind], column


def test_identities_are_unique_and_well_formed(contacts: pd.DataFrame) -> None:
    assert contacts["contact_id"].is_unique
    assert contacts["contact_id"].iloc[0] == "c0000001"
    assert contacts["contact_id"].str.fullmatch(r"c\d{7}").all()
    assert contacts["email"].is_unique
    assert contacts["email"].str.fullmatch(r"[a-z]+\.[a-z]+\d+@[a-z-]+\.example").all()
    phones = contacts["phone"].dropna()
    assert phones.str.fullmatch(r"\+[1-9]\d{7,14}").all()
    assert 0.75 < len(phones) / len(contacts) < 0.95


def test_timezone_matches_country(contacts: pd.DataFrame) -> None:
    pairs = contacts[["country", "timezone"]].drop_duplicates().itertuples(index=False)
    for country, timezone in pairs:
        assert timezone in COUNTRY_TIMEZONES[country], (country, timezone)
    assert contacts["timezone"].isin(intake._known_timezones()).all()


def test_categories_use_the_documented_values(contacts: pd.DataFrame) -> None:
    assert set(contacts["industry"]) == set(data.INDUSTRIES)
    assert set(contacts["lifecycle"]) == set(data.LIFECYCLES)
    assert set(contacts["plan"]) == set(data.PLANS)
    customers = contacts["lifecycle"] == "customer"
    assert contacts.loc[customers, "plan"].isin(["pro", "enterprise"]).all()
    assert (contacts.loc[contacts["lifecycle"] == "churned", "plan"] == "none").all()
    # A company keeps one industry.
    assert (contacts.groupby("company")["industry"].nunique() == 1).all()


def test_consent_and_opt_out_rates_are_plausible(contacts: pd.DataFrame) -> None:
    assert 0.85 < contacts["email_consent"].mean() < 0.97
    assert 0.2 < contacts["sms_consent"].mean() < 0.6
    assert 0.15 < contacts["push_consent"].mean() < 0.6
    assert 0.01 < contacts["unsubscribed"].mean() < 0.03
    assert 0.002 < contacts["do_not_contact"].mean() < 0.01
    assert not (contacts["sms_consent"] & contacts["phone"].isna()).any()


def test_engagement_is_a_probability_and_drives_the_score(contacts: pd.DataFrame) -> None:
    engagement = contacts["engagement_score"]
    assert engagement.between(0, 1).all()
    assert 0.3 < engagement.mean() < 0.55
    assert engagement.std() > 0.15
    assert contacts["score"].between(0, 100).all()
    assert engagement.corr(contacts["score"].astype(float)) > 0.6
    by_stage = contacts.groupby("lifecycle")["engagement_score"].mean()
    assert by_stage["sql"] > by_stage["lead"] > by_stage["churned"]


def test_dates_tell_a_consistent_story(contacts: pd.DataFrame) -> None:
    day = EPOCH.tz_convert(None).floor("D")
    trial = contacts["plan"] == "trial"
    assert contacts["trial_end_date"].notna().eq(trial).all()
    trial_rows = contacts[trial]
    assert (trial_rows["trial_end_date"] - trial_rows["signup_date"] == timedelta(days=14)).all()
    assert (trial_rows["trial_end_date"] > day).all()
    bought = contacts["last_purchase_date"].notna()
    assert bought.eq(contacts["lifecycle"].isin(["customer", "churned"])).all()
    assert (contacts.loc[bought, "last_purchase_date"] >= contacts.loc[bought, "signup_date"]).all()
    signed = contacts["signup_date"].notna()
    created_day = contacts["created_at"].dt.tz_convert(None).dt.floor("D")
    assert (created_day[signed] <= contacts.loc[signed, "signup_date"]).all()
    assert (contacts.loc[signed, "signup_date"] < day).all()
    assert (contacts["created_at"] <= contacts["last_seen_at"]).all()
    assert (contacts["last_seen_at"] <= EPOCH).all()
    assert contacts.loc[contacts["lifecycle"] == "lead", "signup_date"].isna().mean() > 0.6
    launch_share = contacts["launch_date"].value_counts(normalize=True).iloc[0]
    assert 0.75 < launch_share < 0.95
    assert (contacts["launch_date"] > day).all()


def test_open_carts_are_rare_and_positive(contacts: pd.DataFrame) -> None:
    carts = contacts["cart_value"].dropna()
    assert 0.03 < len(carts) / len(contacts) < 0.15
    assert (carts > 0).all()
    assert contacts.loc[contacts["lifecycle"] == "churned", "cart_value"].isna().all()


def test_epoch_moves_the_whole_history() -> None:
    later = datetime(2027, 3, 1, tzinfo=UTC)
    contacts = data.synthetic_contacts(300, seed=1, epoch=later)
    assert contacts["last_seen_at"].max() <= pd.Timestamp(later)
    assert contacts["last_seen_at"].max() > pd.Timestamp(data.DEMO_EPOCH)


def test_events_belong_to_known_contacts_inside_their_window(
    contacts: pd.DataFrame, events: pd.DataFrame
) -> None:
    assert events["event_id"].is_unique
    assert events["ts"].is_monotonic_increasing
    assert events["contact_id"].isin(contacts["contact_id"]).all()
    assert set(events["name"]) == set(data.EVENT_NAMES)
    assert (events["ts"] > EPOCH - timedelta(days=21)).all()
    assert (events["ts"] <= EPOCH).all()
    joined = events.merge(contacts, on="contact_id")
    assert (joined["ts"] >= joined["created_at"]).all()
    assert (joined["ts"] <= joined["last_seen_at"]).all()


def test_event_volume_grows_with_engagement(contacts: pd.DataFrame, events: pd.DataFrame) -> None:
    counts = events.groupby("contact_id").size().reindex(contacts["contact_id"], fill_value=0)
    correlation = np.corrcoef(counts.to_numpy(), contacts["engagement_score"].to_numpy())[0, 1]
    assert correlation > 0.4
    assert 1 < len(events) / len(contacts) < 8


def test_event_properties_are_json_objects_with_the_documented_keys(events: pd.DataFrame) -> None:
    expected_keys = {
        "page_view": {"url"},
        "email_open": {"campaign"},
        "email_click": {"campaign", "url"},
        "content_download": {"asset"},
        "form_submission": {"form"},
        "webinar_registration": {"webinar"},
        "customer_signup": {"plan"},
        "trial_started": {"plan", "trial_days"},
        "purchase": {"amount", "plan"},
        "cart_abandoned": {"cart_value"},
    }
    for name, text in events[["name", "properties"]].drop_duplicates().itertuples(index=False):
        properties = json.loads(text)
        assert set(properties) == expected_keys[name], (name, text)
    demo_forms = events.loc[events["name"] == "form_submission", "properties"]
    assert demo_forms.str.contains("demo_request").any()


def test_milestone_events_match_contact_attributes(
    contacts: pd.DataFrame, events: pd.DataFrame
) -> None:
    start = (EPOCH - timedelta(days=21)).tz_convert(None)
    trials = contacts[(contacts["plan"] == "trial") & (contacts["signup_date"] >= start)]
    started = events.loc[events["name"] == "trial_started", "contact_id"]
    assert set(trials["contact_id"]) == set(started)
    purchases = events[events["name"] == "purchase"].merge(contacts, on="contact_id")
    assert len(purchases) > 0
    purchase_day = purchases["ts"].dt.tz_convert(None).dt.floor("D")
    assert (purchase_day == purchases["last_purchase_date"]).all()
    carts = events[events["name"] == "cart_abandoned"].merge(contacts, on="contact_id")
    assert (carts["ts"] == carts["last_seen_at"]).all()
    amounts = carts["properties"].map(lambda text: json.loads(text)["cart_value"])
    assert np.allclose(amounts, carts["cart_value"])


def test_events_accept_contacts_read_from_a_user_file() -> None:
    contacts = intake.read_contacts(
        pd.DataFrame({"contact_id": ["a", "b"], "engagement_score": [0.9, 0.1]})
    )
    events = data.synthetic_events(contacts, days=30, seed=0)
    assert set(events["contact_id"]) <= {"a", "b"}
    assert set(events["name"]) <= set(data.EVENT_NAMES)


def test_negative_size_is_rejected() -> None:
    with pytest.raises(ValueError, match="n must be >= 0"):
        data.synthetic_contacts(-1)
    assert data.synthetic_contacts(0).empty
