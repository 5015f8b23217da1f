"""API keys for `/v1`: `mawb_<id>_<secret>`, stored only as a hash of the secret.

`keys.json` in the workspace (mode 0600, replaced atomically) holds per key its id, name,
SHA-256 of the secret, rate limit and created/revoked times. The secret is 32 random bytes, so a
plain SHA-256 is as strong as a slow hash here (nothing to brute-force) and costs a microsecond
per request; comparisons are constant-time. The key is printed once, at creation, and never
stored. The service re-reads the file when its modification time changes, so `mawb keys revoke`
takes effect on the next request without a restart.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import hmac
import json
import os
import re
import secrets
import time
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

KEYS_FILE = "keys.json"
PREFIX = "mawb"
_KEY_PATTERN = re.compile(r"^mawb_([0-9a-f]{12})_([A-Za-z0-9_-]{20,128})$")
_NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9 ._-]{0,63}$")


class KeysError(ValueError):
    """A key operation the user asked for that cannot be done (unknown id, bad name)."""


@dataclass(frozen=True)
class ApiKey:
    """One stored key (never the secret itself)."""

    id: str
    name: str
    hash: str
    rate: float | None
    created_at: str
    revoked_at: str | None = None

    @property
    def active(self) -> bool:
        return self.revoked_at is None

    def public(self) -> dict[str, Any]:
        """What `mawb keys list` shows: everything but the hash."""
        data = asdict(self)
        del data["hash"]
        data["active"] = self.active
        return data


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def read_keys(home: Path) -> list[ApiKey]:
    """The keys of a workspace (none when there is no keys.json)."""
    path = home / KEYS_FILE
    try:
        document = json.loads(path.read_text())
    except FileNotFoundError:
        return []
    except ValueError as error:
        raise KeysError(f"{path}: not valid JSON ({error}); fix or remove it") from None
    return [ApiKey(**entry) for entry in document.get("keys", [])]


def _write_keys(home: Path, keys: list[ApiKey]) -> None:
    path = home / KEYS_FILE
    tmp = path.with_name(f".{KEYS_FILE}.{secrets.token_hex(4)}.tmp")
    data = json.dumps({"version": 1, "keys": [asdict(key) for key in keys]}, indent=2) + "\n"
    descriptor = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(descriptor, "w") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        raise


@contextlib.contextmanager
def _locked(home: Path) -> Iterator[None]:
    """Serialise read-modify-write of keys.json between concurrent `mawb keys` commands."""
    home.mkdir(parents=True, exist_ok=True)
    descriptor = os.open(home / f".{KEYS_FILE}.lock", os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        fcntl.flock(descriptor, fcntl.LOCK_EX)
        yield
    finally:
        os.close(descriptor)


def create_key(home: Path, name: str, rate: float | None = None) -> tuple[ApiKey, str]:
    """A new key; returns the stored record and the full key (shown once, never stored)."""
    if not _NAME_PATTERN.match(name):
        raise KeysError(f"key name {name!r}: use 1-64 letters, digits, space, '.', '_' or '-'")
    if rate is not None and not rate > 0:
        raise KeysError(f"--rate {rate}: must be a positive number of requests per second")
    secret = secrets.token_urlsafe(32)
    with _locked(home):
        keys = read_keys(home)
        taken = {key.id for key in keys}
        key_id = secrets.token_hex(6)
        while key_id in taken:  # pragma: no cover - 48 random bits
            key_id = secrets.token_hex(6)
        record = ApiKey(key_id, name, _digest(secret), rate, _now())
        _write_keys(home, [*keys, record])
    return record, f"{PREFIX}_{key_id}_{secret}"


def revoke_key(home: Path, key_id: str) -> ApiKey:
    """Mark a key revoked (kept in the file, so `list` still shows who had it)."""
    with _locked(home):
        keys = read_keys(home)
        match = [key for key in keys if key.id == key_id]
        if not match:
            known = ", ".join(key.id for key in keys) or "none"
            raise KeysError(f"no key with id {key_id!r} (keys: {known})")
        if not match[0].active:
            return match[0]
        revoked = ApiKey(**{**asdict(match[0]), "revoked_at": _now()})
        _write_keys(home, [revoked if key.id == key_id else key for key in keys])
    return revoked


class KeyRing:
    """The service's view of keys.json, re-read when the file's mtime changes.

    The file is looked at no more than once per `recheck` seconds (a stat per request costs
    more than the rest of the authentication under load), and at once for a key id it does not
    know yet, so a new key works immediately and a revocation takes effect within `recheck`.
    """

    def __init__(self, home: Path, recheck: float = 1.0) -> None:
        self.path = home / KEYS_FILE
        self.home = home
        self.recheck = recheck
        self._checked = -float("inf")
        self._stamp: tuple[int, int] | None = None
        self._keys: dict[str, ApiKey] = {}

    def _refresh(self, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self._checked < self.recheck:
            return
        self._checked = now
        try:
            stat = self.path.stat()
            stamp = (stat.st_mtime_ns, stat.st_size)
        except FileNotFoundError:
            stamp = (0, 0)
        if stamp != self._stamp:
            # A torn read is impossible (the file is replaced by rename); a broken file keeps
            # the keys we had rather than locking everyone out.
            with contextlib.suppress(KeysError):
                self._keys = {key.id: key for key in read_keys(self.home)}
                self._stamp = stamp

    def authenticate(self, header: str | None) -> tuple[ApiKey | None, str]:
        """The active key named by an `Authorization: Bearer mawb_...` header, or why not."""
        if not header:
            return None, "missing Authorization header (Bearer mawb_<id>_<secret>)"
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            return None, "Authorization must be 'Bearer mawb_<id>_<secret>'"
        match = _KEY_PATTERN.match(token.strip())
        if match is None:
            return None, "malformed API key (expected mawb_<id>_<secret>)"
        self._refresh()
        if match.group(1) not in self._keys:
            self._refresh(force=True)
        key = self._keys.get(match.group(1))
        digest = _digest(match.group(2))
        if key is None or not hmac.compare_digest(key.hash, digest):
            return None, "unknown API key"
        if not key.active:
            return None, f"API key {key.id} was revoked at {key.revoked_at}"
        return key, ""
