"""Signed links: unsubscribe, open-pixel and click tokens that only this workspace can mint.

A token is `base64url(json payload) "." base64url(HMAC-SHA256(secret, payload))`. The payload
names the link kind (`u` unsubscribe, `o` open, `c` click), the contact, flow, version, node and
the message's idempotency key; a click token also carries the target URL. Because the target is
inside the signed payload, a URL an attacker writes never verifies: `/c/{token}` can never become
an open redirect, and the redirect needs no store read. The secret is per workspace
(`secret.key`, created 0600 on first use) and never leaves it.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import hmac
import json
import os
import secrets
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pathlib import Path

KINDS = {"u": "unsubscribe", "o": "open", "c": "click"}
SECRET_FILE = "secret.key"  # noqa: S105 - a file name, not a secret
MAX_TOKEN_LENGTH = 4096


class BadToken(ValueError):
    """A token that is malformed, of the wrong kind, or whose signature does not verify."""


def workspace_secret(home: Path) -> bytes:
    """The workspace's signing secret, created (32 random bytes, mode 0600) on first use.

    The secret is written to a private temporary file and hard-linked into place, so two
    processes starting at once agree on one secret and a crash never leaves an empty file.
    """
    path = home / SECRET_FILE
    if not path.exists():
        home.mkdir(parents=True, exist_ok=True)
        temporary = home / f".{SECRET_FILE}.{os.getpid()}.{secrets.token_hex(4)}"
        descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            with os.fdopen(descriptor, "w") as handle:
                handle.write(secrets.token_hex(32))
                handle.flush()
                os.fsync(handle.fileno())
            with contextlib.suppress(FileExistsError):  # another process won the race
                os.link(temporary, path)
        finally:
            temporary.unlink(missing_ok=True)
    return bytes.fromhex(path.read_text().strip())


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def sign(secret: bytes, kind: str, **fields: Any) -> str:
    """A token of `kind` ('u', 'o', 'c') carrying `fields` (c, f, v, n, k; clicks also url)."""
    if kind not in KINDS:
        raise ValueError(f"unknown link kind {kind!r}")
    body = json.dumps({"t": kind, **fields}, separators=(",", ":"), sort_keys=True).encode()
    mac = hmac.new(secret, body, hashlib.sha256).digest()
    return f"{_b64(body)}.{_b64(mac)}"


def verify(secret: bytes, token: str, kind: str) -> dict[str, Any]:
    """The payload of a valid token of `kind`; raises BadToken otherwise (constant-time check)."""
    if len(token) > MAX_TOKEN_LENGTH or token.count(".") != 1:
        raise BadToken("malformed token")
    encoded_body, encoded_mac = token.split(".")
    try:
        body, mac = _unb64(encoded_body), _unb64(encoded_mac)
    except (ValueError, TypeError):
        raise BadToken("malformed token") from None
    if not hmac.compare_digest(hmac.new(secret, body, hashlib.sha256).digest(), mac):
        raise BadToken("signature does not verify")
    try:
        payload = json.loads(body)
    except ValueError:
        raise BadToken("malformed token") from None
    if not isinstance(payload, dict) or payload.get("t") != kind:
        raise BadToken(f"not a token for {KINDS.get(kind, kind)} links")
    return payload


def link_url(base_url: str, secret: bytes, kind: str, **fields: Any) -> str:
    """The public URL of a signed link, e.g. `https://mail.example.com/u/<token>`."""
    return f"{base_url.rstrip('/')}/{kind}/{sign(secret, kind, **fields)}"
