"""Contact columns no flow step may write: consent, suppression and engine-owned state.

Consent and suppression change only through consent events (an unsubscribe, a resubscribe by
the contact) or an import that says so explicitly; engagement counters and conversion marks are
maintained by the engine from events. A `data_update`, a `database_query` or a CRM step that
mirrors attributes could otherwise re-subscribe someone who unsubscribed, so validation refuses
such names and the engine's steps check again before they write.
"""

from __future__ import annotations

import re

PROTECTED_COLUMNS: frozenset[str] = frozenset({
    "contact_id", "attributes", "unsubscribed", "do_not_contact", "email_opens",
    "email_clicks", "last_open_at", "last_click_at", "converted", "converted_at",
    "email_consent", "sms_consent", "push_consent",
})  # fmt: skip
# Families of names that are protected however they are spelled out (future consent channels,
# conversion marks, engine timestamps).
_PROTECTED_PATTERN = re.compile(r"^(.+_consent|converted.*|last_.+_at)$")


def is_protected(name: str) -> bool:
    """Whether `name` is a consent, suppression or engine-owned contact column (case-exact)."""
    return name in PROTECTED_COLUMNS or bool(_PROTECTED_PATTERN.match(name))


def protected_message(name: str) -> str:
    """The one explanation every refusal uses, so the UI, the CLI and the engine agree."""
    if name == "contact_id":
        return "'contact_id' is managed by mawb and cannot be written"
    return (f"{name!r} is a consent, suppression or engine-owned column: flows may read it but "
            "never write it (it changes only through consent events or an explicit import)")
