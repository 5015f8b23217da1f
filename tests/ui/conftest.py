"""Shared browser fixture: one headless Debian chromium per test module (never a download)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest
from support.browser import chromium_path, launch_chromium

if TYPE_CHECKING:
    from collections.abc import Iterator


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    if chromium_path() is None:
        pytest.skip("Debian chromium is not installed (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = launch_chromium(playwright)
        yield launched
        launched.close()
