"""Seeded synthetic contacts and events, and the committed demo set built from them.

Templates, simulations, benchmarks and the workbench all need a believable population to run on
without anyone's real customer data. This module generates one, fully vectorised (a million contacts
in about a second) and deterministic (same seed, same frame), with the correlations that make
simulations meaningful: engaged contacts score higher and produce more events, trials carry a trial
end date, customers a last purchase, open carts a cart value, and events never predate a contact's
creation nor follow their last visit. Frames come out in the normal form of `mawb.intake`, so a
CSV round trip through `write_csv` and `intake.read_contacts` gives the same frame back.

`python -m mawb.data --out data` regenerates the committed demo files.
"""

from __future__ import annotations

import argparse
from datetime import UTC, datetime
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np
import pandas as pd

from mawb import intake

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

DEMO_EPOCH = datetime(2026, 11, 2, tzinfo=UTC)
"""Demo history ends here and simulations start here."""

DEMO_CONTACTS = 3000
DEMO_SEED = 7
DEMO_DAYS = 21
DEMO_DIR = Path(__file__).resolve().parent.parent / "data"

INDUSTRIES = ("SaaS", "Fintech", "Healthcare", "Retail", "Manufacturing", "Education", "Media")
LIFECYCLES = ("lead", "mql", "sql", "customer", "churned")
PLANS = ("none", "trial", "pro", "enterprise")
EVENT_NAMES = (
    "page_view",
    "email_open",
    "email_click",
    "content_download",
    "form_submission",
    "customer_signup",
    "trial_started",
    "purchase",
    "cart_abandoned",
    "webinar_registration",
)

# (country, timezone, weight, phone prefix, lowest and highest national number)
_REGIONS = (
    ("US", "America/New_York", 0.16, "+1", 2012000000, 9899999999),
    ("US", "America/Chicago", 0.09, "+1", 2012000000, 9899999999),
    ("US", "America/Denver", 0.04, "+1", 2012000000, 9899999999),
    ("US", "America/Los_Angeles", 0.11, "+1", 2012000000, 9899999999),
    ("GB", "Europe/London", 0.12, "+44", 7400000000, 7999999999),
    ("DE", "Europe/Berlin", 0.12, "+49", 15100000000, 17999999999),
    ("FR", "Europe/Paris", 0.06, "+33", 600000000, 799999999),
    ("JP", "Asia/Tokyo", 0.08, "+81", 7000000000, 9099999999),
    ("AU", "Australia/Sydney", 0.07, "+61", 400000000, 499999999),
    ("CA", "America/Toronto", 0.06, "+1", 2042000000, 9059999999),
    ("IN", "Asia/Kolkata", 0.05, "+91", 6000000000, 9999999999),
    ("BR", "America/Sao_Paulo", 0.04, "+55", 11900000000, 99999999999),
)
_FIRST_NAMES = (
    "Ava", "Liam", "Mia", "Noah", "Emma", "Lucas", "Sofia", "Mateo", "Hana", "Kenji", "Priya",
    "Arjun", "Chloe", "Oliver", "Lena", "Felix", "Amara", "Kofi", "Isabel", "Diego", "Yuki",
    "Sara", "Omar", "Leila", "Jonas", "Clara", "Ethan", "Zoe", "Ravi", "Ana", "Tom", "Grace",
)  # fmt: skip
_LAST_NAMES = (
    "Smith", "Garcia", "Müller", "Schmidt", "Tanaka", "Sato", "Patel", "Sharma", "Brown",
    "Martin", "Dubois", "Silva", "Santos", "Wilson", "Taylor", "Nguyen", "Kim", "Lee", "Cohen",
    "Rossi", "Novak", "Jensen", "Okafor", "Mensah", "Clarke", "Walker", "Fischer", "Weber",
)  # fmt: skip
_COMPANY_STEMS = (
    "Northwind", "Bluepeak", "Brightline", "Cobalt", "Evergreen", "Fjord", "Granite", "Harbor",
    "Ironwood", "Juniper", "Keystone", "Lumen", "Meridian", "Nimbus", "Orchid", "Pioneer",
    "Quarry", "Redwood", "Summit", "Tidal", "Umber", "Vertex", "Willow", "Zephyr",
)  # fmt: skip
_COMPANY_SUFFIXES = (
    "Labs", "Analytics", "Systems", "Health", "Retail", "Works", "Learning", "Media", "Pay",
    "Cloud", "Group", "Partners",
)  # fmt: skip
_JOB_TITLES = (
    "Marketing Manager", "Head of Growth", "CMO", "Marketing Operations Lead", "Demand Gen Manager",
    "Content Strategist", "Product Manager", "CTO", "Data Analyst", "Sales Director",
    "Founder", "VP Marketing", "Customer Success Manager", "Software Engineer",
)  # fmt: skip

_COMPANIES = tuple(f"{stem} {suffix}" for stem in _COMPANY_STEMS for suffix in _COMPANY_SUFFIXES)
_DOMAINS = tuple(company.lower().replace(" ", "-") for company in _COMPANIES)

# Per lifecycle (rows follow LIFECYCLES): share of the population, engagement Beta(a, b),
# lead-score base, plan mix (columns follow PLANS), and behaviour-event mix.
_LIFECYCLE_SHARE = np.array([0.42, 0.18, 0.10, 0.24, 0.06])
_ENGAGEMENT_BETA = np.array([[1.6, 4.0], [2.5, 3.0], [3.5, 2.5], [4.0, 2.5], [1.2, 5.0]])
_SCORE_BASE = np.array([8.0, 30.0, 50.0, 45.0, 10.0])
_PLAN_MIX = np.array(
    [[0.85, 0.15, 0, 0], [0.70, 0.30, 0, 0], [0.40, 0.60, 0, 0], [0, 0, 0.75, 0.25], [1, 0, 0, 0]]
)
_BEHAVIOUR_NAMES = (
    "page_view",
    "email_open",
    "email_click",
    "content_download",
    "form_submission",
    "webinar_registration",
)
_BEHAVIOUR_MIX = np.array(
    [
        [0.50, 0.25, 0.10, 0.08, 0.04, 0.03],
        [0.42, 0.25, 0.12, 0.10, 0.07, 0.04],
        [0.40, 0.22, 0.12, 0.08, 0.12, 0.06],
        [0.55, 0.25, 0.12, 0.04, 0.02, 0.02],
        [0.50, 0.35, 0.08, 0.04, 0.02, 0.01],
    ]
)
_PAGE_URLS = (
    "/", "/pricing", "/features", "/launch", "/customers", "/integrations",
    "/docs/getting-started", "/blog/automation-playbook",
)  # fmt: skip
_BEHAVIOUR_PROPERTIES: dict[str, tuple[str, ...]] = {
    "page_view": tuple(f'{{"url": "{url}"}}' for url in _PAGE_URLS),
    "email_open": tuple(
        f'{{"campaign": "{c}"}}'
        for c in ("newsletter-2026-10", "product-update-q4", "webinar-invite", "launch-teaser")
    ),
    "email_click": (
        '{"campaign": "newsletter-2026-10", "url": "/blog/automation-playbook"}',
        '{"campaign": "product-update-q4", "url": "/features"}',
        '{"campaign": "webinar-invite", "url": "/webinars/automation-101"}',
        '{"campaign": "launch-teaser", "url": "/launch"}',
    ),
    "content_download": tuple(
        f'{{"asset": "{a}"}}' for a in ("ebook", "whitepaper", "case_study", "checklist")
    ),
    "form_submission": tuple(
        f'{{"form": "{f}"}}' for f in ("demo_request", "contact_sales", "newsletter_signup")
    ),
    "webinar_registration": ('{"webinar": "automation-101"}', '{"webinar": "launch-2026"}'),
}
_PLAN_PRICE = {"pro": 49.0, "enterprise": 499.0}
_TRIAL_DAYS = 14
_SECONDS_PER_DAY = 86_400


def synthetic_contacts(n: int, *, seed: int = 0, epoch: datetime = DEMO_EPOCH) -> pd.DataFrame:
    """`n` synthetic contacts whose history ends at `epoch`, identical for the same seed.

    Columns and dtypes are those of `mawb.intake.CONTACT_COLUMNS`.

    >>> synthetic_contacts(3, seed=1)["contact_id"].tolist()
    ['c0000001', 'c0000002', 'c0000003']
    """
    if n < 0:
        raise ValueError(f"n must be >= 0, got {n}")
    rng = np.random.default_rng(seed)
    lifecycle = rng.choice(len(LIFECYCLES), size=n, p=_LIFECYCLE_SHARE)
    engagement = np.round(
        rng.beta(_ENGAGEMENT_BETA[lifecycle, 0], _ENGAGEMENT_BETA[lifecycle, 1]), 4
    )
    plan = _pick_rows(rng, _PLAN_MIX[lifecycle])
    frame = {
        **_identities(rng, n),
        "lifecycle": _take(LIFECYCLES, lifecycle),
        "plan": _take(PLANS, plan),
        "engagement_score": engagement,
        "score": _lead_scores(rng, lifecycle, engagement),
        **_history(rng, lifecycle, plan, engagement, epoch),
        **_preferences(rng, lifecycle, engagement, epoch),
    }
    has_phone = frame.pop("_has_phone")
    frame["sms_consent"] &= has_phone
    return _typed(pd.DataFrame(frame), intake.CONTACT_COLUMNS)


def synthetic_events(
    contacts: pd.DataFrame, *, days: int = DEMO_DAYS, seed: int = 0, end: datetime = DEMO_EPOCH
) -> pd.DataFrame:
    """Behaviour of `contacts` over the `days` before `end`, identical for the same seed.

    Each contact's events fall between max(window start, created_at) and min(end, last_seen_at);
    their volume grows with engagement_score. Signups, trial starts and purchases are placed on
    the contact's own signup_date / last_purchase_date and open carts on last_seen_at, so a
    backtest over these events agrees with the attributes. Columns follow
    `mawb.intake.EVENT_COLUMNS`; ids are "e" + a sequence number in time order.
    """
    rng = np.random.default_rng(seed)
    start_us, end_us = _micros(end) - days * _SECONDS_PER_DAY * 10**6, _micros(end)
    low = np.maximum(_column_micros(contacts, "created_at", start_us), start_us)
    high = np.minimum(_column_micros(contacts, "last_seen_at", end_us), end_us)
    batches = [
        _behaviour_events(rng, contacts, low, high),
        *_milestone_events(rng, contacts, low, high),
    ]
    owner = np.concatenate([batch.owner for batch in batches])
    name = np.concatenate([batch.name for batch in batches])
    ts = np.concatenate([batch.ts for batch in batches])
    properties = pd.concat([batch.properties for batch in batches], ignore_index=True)
    order = np.lexsort((name, owner, ts))
    events = pd.DataFrame(
        {
            "event_id": _sequence_ids("e", len(order), width=8),
            "contact_id": pd.Series(contacts["contact_id"].array.take(owner[order])),
            "name": _take(EVENT_NAMES, name[order]),
            "ts": pd.to_datetime(ts[order], unit="us", utc=True),
            "properties": pd.Series(properties.array.take(order)),
        }
    )
    return _typed(events, intake.EVENT_COLUMNS)


@lru_cache(maxsize=1)
def _cached_demo() -> tuple[pd.DataFrame, pd.DataFrame]:
    contacts_path, events_path = DEMO_DIR / "contacts.csv", DEMO_DIR / "events.csv"
    if contacts_path.is_file() and events_path.is_file():
        return intake.read_contacts(contacts_path), intake.read_events(events_path)
    # Installed without the repository's data/ folder: the generator gives the same frames.
    contacts = synthetic_contacts(DEMO_CONTACTS, seed=DEMO_SEED)
    return contacts, synthetic_events(contacts, days=DEMO_DAYS, seed=DEMO_SEED)


def demo_contacts() -> pd.DataFrame:
    """The committed demo contacts (3,000, seed 7), read through `mawb.intake` (cached, copied)."""
    return _cached_demo()[0].copy()


def demo_events() -> pd.DataFrame:
    """The demo contacts' last 21 days of events up to `DEMO_EPOCH` (cached, copied)."""
    return _cached_demo()[1].copy()


def write_csv(frame: pd.DataFrame, path: str | Path) -> Path:
    """Write a normal-form frame as CSV that `mawb.intake` reads back to the same frame.

    Dates are written `YYYY-MM-DD`, timestamps `YYYY-MM-DDTHH:MM:SS[.ffffff]Z`, flags true/false.
    """
    text = frame.copy()
    for column in text.columns:
        values = text[column]
        if isinstance(values.dtype, pd.DatetimeTZDtype):
            has_fraction = bool((values.dt.microsecond.fillna(0) != 0).any())
            pattern = "%Y-%m-%dT%H:%M:%S.%fZ" if has_fraction else "%Y-%m-%dT%H:%M:%SZ"
            text[column] = values.dt.tz_convert("UTC").dt.strftime(pattern)
        elif pd.api.types.is_datetime64_dtype(values):
            text[column] = values.dt.strftime("%Y-%m-%d")
        elif pd.api.types.is_bool_dtype(values):
            text[column] = values.map({True: "true", False: "false"})
    path = Path(path)
    text.to_csv(path, index=False, lineterminator="\n")
    return path


def write_demo(out_dir: str | Path = DEMO_DIR) -> tuple[Path, Path]:
    """Regenerate `contacts.csv` and `events.csv` of the demo set into `out_dir`."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    contacts = synthetic_contacts(DEMO_CONTACTS, seed=DEMO_SEED)
    events = synthetic_events(contacts, days=DEMO_DAYS, seed=DEMO_SEED)
    return write_csv(contacts, out / "contacts.csv"), write_csv(events, out / "events.csv")


# --- contact attributes ---------------------------------------------------------------------------


def _identities(rng: np.random.Generator, n: int) -> dict[str, Any]:
    """Names, company, reachability and location; phone numbers are E.164."""
    first = rng.integers(len(_FIRST_NAMES), size=n)
    last = rng.integers(len(_LAST_NAMES), size=n)
    company = rng.integers(len(_COMPANIES), size=n)
    region = rng.choice(len(_REGIONS), size=n, p=[r[2] for r in _REGIONS])
    low = np.array([r[4] for r in _REGIONS])[region]
    high = np.array([r[5] for r in _REGIONS])[region]
    national = low + (rng.random(n) * (high - low)).astype(np.int64)
    has_phone = rng.random(n) < 0.85
    # The reserved .example top-level domain keeps demo sends from ever reaching a real inbox.
    email = (
        _take(_email_words(_FIRST_NAMES), first)
        + "."
        + _take(_email_words(_LAST_NAMES), last)
        + _text(np.arange(1, n + 1))
        + "@"
        + _take(_DOMAINS, company)
        + ".example"
    )
    return {
        "contact_id": _sequence_ids("c", n, width=7),
        "email": email,
        "phone": (_take([r[3] for r in _REGIONS], region) + _text(national)).where(has_phone),
        "first_name": _take(_FIRST_NAMES, first),
        "last_name": _take(_LAST_NAMES, last),
        "company": _take(_COMPANIES, company),
        # A company keeps one industry: derived from the company, not drawn per contact.
        "industry": _take(INDUSTRIES, (company * 7919) % len(INDUSTRIES)),
        "job_title": _take(_JOB_TITLES, rng.integers(len(_JOB_TITLES), size=n)),
        "country": _take([r[0] for r in _REGIONS], region),
        "timezone": _take([r[1] for r in _REGIONS], region),
        "_has_phone": has_phone,
    }


def _lead_scores(
    rng: np.random.Generator, lifecycle: np.ndarray, engagement: np.ndarray
) -> np.ndarray:
    raw = _SCORE_BASE[lifecycle] + 45.0 * engagement + rng.normal(0.0, 6.0, size=len(lifecycle))
    return np.clip(np.round(raw), 0, 100).astype(np.int64)


def _history(
    rng: np.random.Generator,
    lifecycle: np.ndarray,
    plan: np.ndarray,
    engagement: np.ndarray,
    epoch: datetime,
) -> dict[str, np.ndarray]:
    """Creation, signup, trial, purchase and last-seen moments, ordered as they happen.

    Ages are counted in days before `epoch`; whole-day ages give dates (always before the epoch's
    day), fractional ages give timestamps.
    """
    n = len(lifecycle)
    is_lead = np.isin(lifecycle, [0, 1, 2])
    is_trial = plan == PLANS.index("trial")
    is_customer = lifecycle == LIFECYCLES.index("customer")
    is_churned = lifecycle == LIFECYCLES.index("churned")
    created_age = np.where(
        is_lead, np.minimum(rng.exponential(90.0, n), 730.0), rng.uniform(30.0, 730.0, n)
    )
    created_age = np.where(is_churned, rng.uniform(200.0, 730.0, n), created_age)
    # Signup: some leads have a free account, everyone past lead has one.
    has_signup = (is_lead & (rng.random(n) < 0.15) & (created_age >= 1)) | ~is_lead | is_trial
    signup_age = 1 + np.floor(rng.random(n) * np.maximum(np.floor(created_age) - 1, 0))
    signup_age = np.where(is_churned, np.maximum(signup_age, 150), signup_age)
    signup_age = np.where(is_trial, rng.integers(1, _TRIAL_DAYS, n), signup_age)
    created_age = np.where(has_signup, np.maximum(created_age, signup_age), created_age)
    purchase_age = np.where(
        is_churned,
        90 + np.floor(rng.random(n) * (signup_age - 90)),
        np.minimum(signup_age, rng.integers(1, 46, n)),
    )
    has_purchase = is_customer | is_churned
    # Last seen: engaged contacts were here recently; never before their latest milestone.
    seen_scale = np.where(is_churned, 60.0, 1.0 + 25.0 * (1.0 - engagement) ** 2)
    # Milestone events happen before 20:00 on their day, so the latest one bounds last seen.
    latest_milestone = np.minimum(
        np.where(has_signup, signup_age, np.inf), np.where(has_purchase, purchase_age, np.inf)
    )
    seen_limit = np.minimum(created_age, latest_milestone - 20 / 24)
    seen_age = rng.exponential(seen_scale)
    seen_age = np.where(seen_age > seen_limit, rng.random(n) * seen_limit, seen_age)
    epoch_us, day_us = _micros(epoch), _day_start_micros(epoch)
    return {
        "signup_date": _dates(day_us, signup_age, has_signup),
        "trial_end_date": _dates(day_us, signup_age - _TRIAL_DAYS, is_trial),
        "last_purchase_date": _dates(day_us, purchase_age, has_purchase),
        "last_seen_at": _instants(epoch_us, seen_age),
        "created_at": _instants(epoch_us, created_age),
    }


def _preferences(
    rng: np.random.Generator, lifecycle: np.ndarray, engagement: np.ndarray, epoch: datetime
) -> dict[str, np.ndarray]:
    """Open carts, launch interest and consent flags (more engaged contacts opt in more)."""
    n = len(lifecycle)
    is_churned = lifecycle == LIFECYCLES.index("churned")
    open_cart = ~is_churned & (rng.random(n) < 0.03 + 0.12 * engagement)
    cart = np.round(rng.lognormal(np.log(80.0), 0.6, n), 2)
    launch_offset = np.where(rng.random(n) < 0.85, 14, 45)
    return {
        "cart_value": np.where(open_cart, cart, np.nan),
        "launch_date": _dates(_day_start_micros(epoch), -launch_offset, np.ones(n, dtype=bool)),
        "email_consent": rng.random(n) < np.where(lifecycle == 3, 0.95, 0.88),
        "sms_consent": rng.random(n) < 0.30 + 0.30 * engagement,
        "push_consent": rng.random(n) < 0.20 + 0.35 * engagement,
        # Independent of the consent flags so that every consent rule gets exercised.
        "unsubscribed": rng.random(n) < 0.02,
        "do_not_contact": rng.random(n) < 0.005,
    }


# --- events ---------------------------------------------------------------------------------------


class _EventBatch(NamedTuple):
    """Events as parallel arrays: contact position, EVENT_NAMES index, UTC micros, properties."""

    owner: np.ndarray
    name: np.ndarray
    ts: np.ndarray
    properties: pd.Series


def _behaviour_events(
    rng: np.random.Generator, contacts: pd.DataFrame, low: np.ndarray, high: np.ndarray
) -> _EventBatch:
    """Poisson counts per contact (rate grows with engagement), uniform times in each window."""
    engagement = _column_floats(contacts, "engagement_score", 0.3)
    span_days = np.maximum(high - low, 0) / (_SECONDS_PER_DAY * 10**6)
    counts = rng.poisson((0.03 + 0.45 * engagement**1.5) * span_days)
    owner = np.repeat(np.arange(len(contacts)), counts)
    offset = rng.random(len(owner)) * (high - low)[owner]
    ts = _floor_seconds(low[owner] + offset.astype(np.int64))
    kind = _pick_rows(rng, _BEHAVIOUR_MIX[_lifecycle_index(contacts)[owner]])
    name = np.array([EVENT_NAMES.index(name) for name in _BEHAVIOUR_NAMES])[kind]
    return _EventBatch(owner, name, ts, _behaviour_properties(rng, kind))


def _behaviour_properties(rng: np.random.Generator, kind: np.ndarray) -> pd.Series:
    """A properties object per event, drawn from the options of its kind (_BEHAVIOUR_NAMES)."""
    options = [_BEHAVIOUR_PROPERTIES[name] for name in _BEHAVIOUR_NAMES]
    flat = [text for choices in options for text in choices]
    sizes = np.array([len(choices) for choices in options])
    starts = np.concatenate([[0], np.cumsum(sizes)[:-1]])
    pick = starts[kind] + (rng.random(len(kind)) * sizes[kind]).astype(np.int64)
    return _take(flat, pick)


def _milestone_events(
    rng: np.random.Generator, contacts: pd.DataFrame, low: np.ndarray, high: np.ndarray
) -> list[_EventBatch]:
    """Signups, trial starts, purchases and abandoned carts on the contact's own dates."""
    n = len(contacts)
    plan = (
        contacts["plan"].astype("str").fillna("none")
        if "plan" in contacts.columns
        else _take(["none"], np.zeros(n, dtype=np.int64))
    )
    enterprise = plan.eq("enterprise").to_numpy()
    daytime = rng.integers(8 * 3600, 20 * 3600, size=(n, 2)) * 10**6
    signup = _column_micros(contacts, "signup_date", -1) + daytime[:, 0]
    purchase = _column_micros(contacts, "last_purchase_date", -1) + daytime[:, 1]
    seen = _column_micros(contacts, "last_seen_at", -1)
    cart = _column_floats(contacts, "cart_value", np.nan)
    has_signup = _column_present(contacts, "signup_date")
    purchases = [
        f'{{"amount": {_PLAN_PRICE[bought]}, "plan": "{bought}"}}'
        for bought in ("pro", "enterprise")
    ]
    trial = f'{{"plan": "pro", "trial_days": {_TRIAL_DAYS}}}'

    def signup_properties(owner: np.ndarray) -> pd.Series:
        return '{"plan": "' + pd.Series(plan.array.take(owner)) + '"}'

    candidates: list[tuple[str, np.ndarray, np.ndarray, Callable[[np.ndarray], pd.Series]]] = [
        ("customer_signup", signup, has_signup, signup_properties),
        (
            "trial_started",
            signup,
            has_signup & plan.eq("trial").to_numpy(),
            lambda owner: _take([trial], np.zeros(len(owner), dtype=np.int64)),
        ),
        (
            "purchase",
            purchase,
            _column_present(contacts, "last_purchase_date"),
            lambda owner: _take(purchases, enterprise[owner].astype(np.int64)),
        ),
        (
            "cart_abandoned",
            seen,
            ~np.isnan(cart) & (seen >= 0),
            lambda owner: '{"cart_value": ' + _text(cart[owner]) + "}",
        ),
    ]
    batches = []
    for name, ts, applies, properties in candidates:
        owner = np.flatnonzero(applies & (ts > low) & (ts <= high))
        code = np.full(len(owner), EVENT_NAMES.index(name))
        batches.append(_EventBatch(owner, code, ts[owner], properties(owner)))
    return batches


# --- small vectorised helpers ---------------------------------------------------------------------


def _pick_rows(rng: np.random.Generator, probabilities: np.ndarray) -> np.ndarray:
    """One categorical draw per row of a (rows, categories) probability matrix."""
    cumulative = np.cumsum(probabilities, axis=1)
    draws = rng.random(len(probabilities))[:, None] * cumulative[:, -1:]
    return np.minimum((draws >= cumulative).sum(axis=1), probabilities.shape[1] - 1)


def _take(options: Sequence[str], codes: np.ndarray) -> pd.Series:
    """`options[codes]` as a text Series (a take on a small string array: no per-row Python)."""
    return pd.Series(pd.array(list(options), dtype="str").take(codes))


def _text(values: np.ndarray) -> pd.Series:
    return pd.Series(values).astype("str")


def _sequence_ids(prefix: str, n: int, *, width: int) -> pd.Series:
    return prefix + _text(np.arange(1, n + 1)).str.zfill(width)


def _email_words(names: Sequence[str]) -> list[str]:
    """Lower-case ASCII spellings for email addresses (Müller -> mueller)."""
    words = []
    for name in names:
        word = name.lower()
        for letter, spelled in (("ä", "ae"), ("ö", "oe"), ("ü", "ue"), ("ß", "ss")):
            word = word.replace(letter, spelled)
        words.append(word)
    return words


def _utc(moment: datetime) -> pd.Timestamp:
    """A naive datetime is taken as UTC."""
    stamp = pd.Timestamp(moment)
    return stamp.tz_localize("UTC") if stamp.tz is None else stamp.tz_convert("UTC")


def _micros(moment: datetime) -> int:
    return int(_utc(moment).value // 1000)  # Timestamp.value is always nanoseconds


def _day_start_micros(moment: datetime) -> int:
    return int(_utc(moment).floor("D").value // 1000)


def _dates(day_us: int, age_days: np.ndarray, present: np.ndarray) -> np.ndarray:
    micros = day_us - age_days.astype(np.int64) * _SECONDS_PER_DAY * 10**6
    return np.where(present, micros, np.iinfo(np.int64).min).astype("datetime64[us]")


def _instants(epoch_us: int, age_days: np.ndarray) -> np.ndarray:
    seconds = np.round(age_days * _SECONDS_PER_DAY).astype(np.int64)
    return _floor_seconds(epoch_us - seconds * 10**6).astype("datetime64[us]")


def _floor_seconds(micros: np.ndarray) -> np.ndarray:
    return micros - micros % 10**6


def _typed(frame: pd.DataFrame, schema: dict[str, intake.ColumnKind]) -> pd.DataFrame:
    typed = {}
    for column, kind in schema.items():
        values = frame[column]
        if kind == "timestamp" and not isinstance(values.dtype, pd.DatetimeTZDtype):
            values = values.dt.tz_localize("UTC")
        typed[column] = values.astype(intake.DTYPES[kind])
    return pd.DataFrame(typed)


def _column_micros(contacts: pd.DataFrame, column: str, default: int) -> np.ndarray:
    """A date/timestamp column as int64 microseconds since 1970 (UTC), `default` where missing."""
    if column not in contacts.columns:
        return np.full(len(contacts), default, dtype=np.int64)
    values = contacts[column]
    if isinstance(values.dtype, pd.DatetimeTZDtype):
        values = values.dt.tz_convert("UTC").dt.tz_localize(None)
    micros = values.astype("datetime64[us]").to_numpy().astype(np.int64)
    return np.where(values.isna().to_numpy(), default, micros)


def _column_present(contacts: pd.DataFrame, column: str) -> np.ndarray:
    if column not in contacts.columns:
        return np.zeros(len(contacts), dtype=bool)
    return contacts[column].notna().to_numpy()


def _column_floats(contacts: pd.DataFrame, column: str, default: float) -> np.ndarray:
    if column not in contacts.columns:
        return np.full(len(contacts), default)
    return contacts[column].astype("float64").fillna(default).to_numpy()


def _lifecycle_index(contacts: pd.DataFrame) -> np.ndarray:
    """Row of each contact's lifecycle in the per-lifecycle tables (unknown values act as leads)."""
    if "lifecycle" not in contacts.columns:
        return np.zeros(len(contacts), dtype=np.int64)
    index = pd.Index(LIFECYCLES).get_indexer(contacts["lifecycle"].astype("str"))
    return np.where(index < 0, 0, index)


def _main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Regenerate mawb's demo contacts and events.")
    parser.add_argument("--out", default=str(DEMO_DIR), help="output directory")
    out = parser.parse_args(argv).out
    for path in write_demo(out):
        print(f"wrote {path}")


if __name__ == "__main__":
    _main()
