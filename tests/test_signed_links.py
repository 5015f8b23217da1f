"""Signed link tokens: only this workspace's secret mints them, and the secret is made once."""

from __future__ import annotations

from concurrent.futures import ProcessPoolExecutor

import pytest

from mawb import links


def test_a_token_verifies_only_unchanged_and_for_its_kind(tmp_path):
    secret = links.workspace_secret(tmp_path)
    token = links.sign(secret, "c", k="flow:1:c1:n:1:0", url="https://example.com/a")
    assert links.verify(secret, token, "c")["url"] == "https://example.com/a"
    body, mac = token.split(".")
    forged = links.sign(b"another workspace secret", "c", k="x", url="https://evil.test")
    for bad in (f"{body}x.{mac}", f"{body}.{mac[:-2]}", forged.split(".")[0] + "." + mac,
                "no-dot", "a.b.c"):
        with pytest.raises(links.BadToken):
            links.verify(secret, bad, "c")
    with pytest.raises(links.BadToken, match="not a token for unsubscribe links"):
        links.verify(secret, token, "u")


def test_concurrent_first_use_agrees_on_one_private_secret(tmp_path):
    with ProcessPoolExecutor(4) as pool:
        secrets = set(pool.map(links.workspace_secret, [tmp_path] * 12))
    assert len(secrets) == 1 and len(secrets.pop()) == 32
    assert [path.name for path in tmp_path.iterdir()] == ["secret.key"]
    assert (tmp_path / "secret.key").stat().st_mode & 0o777 == 0o600
