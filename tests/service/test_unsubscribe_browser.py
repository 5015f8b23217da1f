"""A person opens the unsubscribe link of a message in Debian chromium and confirms."""

from __future__ import annotations

import pytest
from service_helpers import spooled_events
from support.browser import chromium_path, launch_chromium

from mawb import links

pytestmark = [pytest.mark.browser, pytest.mark.slow]


def test_unsubscribe_link_confirmed_in_the_browser(service, intake):
    if chromium_path() is None:
        pytest.skip("Debian chromium is not installed (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    url = links.link_url(service, links.workspace_secret(intake.home), "u", c="c-browser",
                         f="welcome", v=1, n="send_intro", k="welcome:1:c-browser:send_intro")
    with sync_playwright() as playwright:
        browser = launch_chromium(playwright)
        try:
            page = browser.new_page()
            page.goto(url)
            assert page.locator("h1").inner_text() == "Unsubscribe"
            assert not [e for e in spooled_events(intake.home).values()
                        if e["contact_id"] == "c-browser"], "opening the page changes nothing"
            page.get_by_role("button", name="Unsubscribe").click()
            page.wait_for_selector("text=You will not receive these messages any more.")
            assert page.locator("h1").inner_text() == "Unsubscribed"
        finally:
            browser.close()
    (event,) = [e for e in spooled_events(intake.home).values() if e["contact_id"] == "c-browser"]
    assert (event["name"], event["source"]) == ("unsubscribe", "link")
    assert event["properties"]["message_key"] == "welcome:1:c-browser:send_intro"
