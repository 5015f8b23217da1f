"""/u /o /c against a real service process: only tokens this workspace signed do anything."""

from __future__ import annotations

import base64
import json

import pytest
from service_helpers import spooled_events

from mawb import links

FIELDS = {"c": "c42", "f": "welcome", "v": 3, "n": "send_intro", "k": "welcome:3:c42:send_intro"}


def token(intake, kind: str, **extra) -> str:
    return links.sign(links.workspace_secret(intake.home), kind, **FIELDS, **extra)


def _edited(good: str, **changes) -> str:
    """The token with its payload edited and the old signature kept (what an attacker can do)."""
    body, mac = good.split(".")
    payload = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
    payload.update(changes)
    encoded = base64.urlsafe_b64encode(json.dumps(payload).encode()).rstrip(b"=").decode()
    return f"{encoded}.{mac}"


def test_a_click_redirects_to_the_signed_url_and_records_it(client, intake):
    target = "https://shop.example.com/offer?id=7"
    response = client.get(f"/c/{token(intake, 'c', url=target)}")
    assert response.status_code == 302
    assert response.headers["location"] == target
    clicks = [e for e in spooled_events(intake.home).values() if e["name"] == "email_click"]
    assert clicks[-1]["contact_id"] == "c42" and clicks[-1]["source"] == "link"
    assert clicks[-1]["properties"] == {"flow_id": "welcome", "version": 3,
                                        "node_id": "send_intro",
                                        "message_key": "welcome:3:c42:send_intro",
                                        "url": target}


def test_an_edited_or_forged_click_never_redirects(client, intake):
    good = token(intake, "c", url="https://shop.example.com/")
    forged_secret = links.sign(b"not the workspace secret", "c", **FIELDS,
                               url="https://evil.example.net/")
    before = len(spooled_events(intake.home))
    for bad in (_edited(good, url="https://evil.example.net/"), forged_secret,
                good[:-2] + ("AA" if not good.endswith("AA") else "BB"), "garbage",
                token(intake, "o")):  # an open token is not a click token
        response = client.get(f"/c/{bad}")
        assert response.status_code == 404, bad
        assert "location" not in response.headers
        assert "not valid" in response.json()["error"]
    assert len(spooled_events(intake.home)) == before


def test_a_non_ascii_target_is_percent_encoded_in_the_redirect(client, intake):
    response = client.get(f"/c/{token(intake, 'c', url='https://shop.example.com/café?q=ü')}")
    assert response.status_code == 302
    assert response.headers["location"] == "https://shop.example.com/caf%C3%A9?q=%C3%BC"


@pytest.mark.parametrize("url", ["javascript:alert(1)", "//evil.example.net/", "ftp://x.example/",
                                 "http://[::1/",
                                 "https://ok.example/\r\nSet-Cookie: a=b", None])
def test_a_signed_click_to_a_non_http_target_is_refused(client, intake, url):
    extra = {} if url is None else {"url": url}
    response = client.get(f"/c/{token(intake, 'c', **extra)}")
    assert response.status_code == 400 and "location" not in response.headers


def test_the_open_pixel_is_a_gif_and_records_the_open(client, intake):
    response = client.get(f"/o/{token(intake, 'o')}")
    assert response.status_code == 200
    assert response.headers["content-type"] == "image/gif"
    assert len(response.content) == 43 and response.content.startswith(b"GIF89a")
    assert response.headers["cache-control"] == "no-store"
    opens = [e for e in spooled_events(intake.home).values() if e["name"] == "email_open"]
    assert opens and opens[-1]["contact_id"] == "c42"
    assert client.get(f"/o/{_edited(token(intake, 'o'), c='someone-else')}").status_code == 404


def test_unsubscribe_page_then_one_click(client, intake):
    good = token(intake, "u")
    page = client.get(f"/u/{good}")
    assert page.status_code == 200 and "text/html" in page.headers["content-type"]
    assert 'name="List-Unsubscribe" value="One-Click"' in page.text
    assert client.post(f"/u/{good}").status_code == 400  # not the RFC 8058 body
    done = client.post(f"/u/{good}", content="List-Unsubscribe=One-Click",
                       headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert done.status_code == 200 and "Unsubscribed" in done.text
    again = client.post(f"/u/{good}", data={"List-Unsubscribe": "One-Click"})
    assert again.status_code == 200
    unsubscribes = [e for e in spooled_events(intake.home).values()
                    if e["name"] == "unsubscribe" and e["contact_id"] == "c42"]
    assert len(unsubscribes) == 1  # a second click is the same event
    assert unsubscribes[0]["source"] == "link"


def test_a_bad_unsubscribe_link_shows_a_page_not_a_redirect(client, intake):
    response = client.get(f"/u/{_edited(token(intake, 'u'), c='c43')}")
    assert response.status_code == 404 and "location" not in response.headers
    assert "Link not valid" in response.text
    post = client.post(f"/u/{token(intake, 'c', url='https://x.example/')}",
                       data={"List-Unsubscribe": "One-Click"})
    assert post.status_code == 404
