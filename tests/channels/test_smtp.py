"""SMTP provider against a real aiosmtpd server: STARTTLS, AUTH, MIME, headers, links, faults."""

from __future__ import annotations

import email
from email import policy
from typing import Any

import pytest
from channel_servers import SmtpServer, make_connection, smtp_settings

from mawb import links as signed
from mawb.channels.base import OutboundMessage
from mawb.channels.connections import provider_for
from mawb.channels.smtp import message_id

HTML = ('<html><body><h1>Welcome, Ada</h1><p>See <a href="https://shop.example/new?a=1&amp;b=2">'
        'what is new</a> or <a href="mailto:help@shop.example">write to us</a>.</p></body></html>')


def mail(key: str, recipient: str = "ada@example.org", **fields: Any) -> OutboundMessage:
    values: dict[str, Any] = {"subject": "Welcome", "html": HTML, "contact_id": "c1",
                              "flow_id": "lead_welcome_v1", "flow_version": 2,
                              "node_id": "welcome", **fields}
    return OutboundMessage(idempotency_key=key, channel="email", recipient=recipient, **values)


def smtp_provider(home, links, server, tls_files, **extra: Any) -> Any:
    return provider_for(make_connection(home, "mail", **smtp_settings(server, tls_files[0],
                                                                      **extra)), links)


def parsed(raw: bytes) -> email.message.EmailMessage:
    return email.message_from_bytes(raw, policy=policy.default)  # type: ignore[return-value]


def token_of(url: str, kind: str) -> str:
    marker = f"https://go.example.com/{kind}/"
    assert url.startswith(marker), url
    return url[len(marker):]


def test_multipart_message_over_starttls_and_auth(home, links, smtp_server, tls_files) -> None:
    connection = make_connection(home, "mail", **smtp_settings(smtp_server, tls_files[0],
                                                               unsubscribe_mailto="unsub@shop.example"))
    provider = provider_for(connection, links)
    results = provider.send_batch([mail("f:2:c1:welcome:1:0"),
                                   mail("f:2:c2:welcome:1:0", body="Plain only", html=None)])

    assert [r.ok for r in results] == [True, True], results
    assert smtp_server.mailbox.logins >= 1
    by_id = {parsed(raw)["Message-ID"]: (sender, rcpts, raw)
             for sender, rcpts, raw in smtp_server.mailbox.messages}
    sender, rcpts, raw = by_id[results[0].provider_ref]
    raw_text = by_id[results[1].provider_ref][2]
    assert sender == "news@shop.example" and rcpts == ["ada@example.org"]
    message = parsed(raw)
    assert message.get_content_type() == "multipart/alternative"
    text = message.get_body(("plain",)).get_content()
    html = message.get_body(("html",)).get_content()
    assert "Welcome, Ada" in text and "(https://shop.example/new?a=1&b=2)" in text
    assert 'href="https://shop.example/new?a=1&amp;b=2"' in html  # tracking is off by default
    assert "/c/" not in html and "/o/" not in html
    assert message["Message-ID"] == message_id("f:2:c1:welcome:1:0", "news@shop.example")
    assert message["From"] == "Shop News <news@shop.example>"
    assert results[0].provider_ref == message["Message-ID"]

    assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    web, mailto = [part.strip().strip("<>") for part in message["List-Unsubscribe"].split(",")]
    payload = signed.verify(links.secret, token_of(web, "u"), "u")
    assert payload == {"t": "u", "c": "c1", "f": "lead_welcome_v1", "v": 2, "n": "welcome",
                       "k": "f:2:c1:welcome:1:0"}
    assert mailto == "mailto:unsub@shop.example?subject=unsubscribe"
    assert web in text and web in html  # visible unsubscribe line in both parts

    plain = parsed(raw_text)
    assert plain.get_content_type() == "text/plain"
    assert plain.get_content().startswith("Plain only")


def test_message_id_is_the_same_for_every_attempt_of_a_key(home, links, smtp_server,
                                                            tls_files) -> None:
    provider = smtp_provider(home, links, smtp_server, tls_files)
    provider.send_batch([mail("k:1")])
    provider.send_batch([mail("k:1", attempt=2), mail("k:2")])
    ids = [parsed(raw)["Message-ID"] for _, _, raw in smtp_server.mailbox.messages]
    assert len(ids) == 3 and len(set(ids)) == 2  # the second k:1 attempt reused its id
    assert ids[0] in ids[1:] and ids[0].endswith("@shop.example>")


def test_tracking_rewrites_links_and_adds_the_open_pixel(home, links, smtp_server,
                                                         tls_files) -> None:
    connection = make_connection(home, "mail", **smtp_settings(smtp_server, tls_files[0],
                                                               tracking=True))
    assert provider_for(connection, links).send_batch([mail("k:t")])[0].ok
    html = parsed(smtp_server.mailbox.messages[0][2]).get_body(("html",)).get_content()
    clicks = [part.split('"')[0] for part in html.split('href="https://go.example.com/c/')[1:]]
    assert len(clicks) == 1
    click = signed.verify(links.secret, clicks[0].replace("&amp;", "&"), "c")
    assert click["url"] == "https://shop.example/new?a=1&b=2" and click["k"] == "k:t"
    assert 'href="mailto:help@shop.example"' in html  # only http(s) links are tracked
    assert 'href="https://go.example.com/u/' in html  # the unsubscribe link is not wrapped
    pixel = html.split('<img src="https://go.example.com/o/')[1].split('"')[0]
    assert signed.verify(links.secret, pixel, "o")["c"] == "c1"
    assert html.index("/o/") < html.lower().index("</body>")


def test_internal_mail_has_no_unsubscribe_and_no_tracking(home, links, smtp_server,
                                                          tls_files) -> None:
    connection = make_connection(home, "mail", **smtp_settings(smtp_server, tls_files[0],
                                                               tracking=True))
    message = mail("k:sales", recipient="sales@shop.example", internal=True)
    assert provider_for(connection, links).send_batch([message])[0].ok
    received = parsed(smtp_server.mailbox.messages[0][2])
    assert received["List-Unsubscribe"] is None
    html = received.get_body(("html",)).get_content()
    assert "go.example.com" not in html


def test_recipient_refusals_are_classified_by_code(home, links, smtp_server, tls_files) -> None:
    smtp_server.mailbox.refuse = {"gone@example.org": "550 5.1.1 no such user",
                                  "busy@example.org": "451 4.7.1 try again later"}
    provider = smtp_provider(home, links, smtp_server, tls_files)
    gone, busy, fine = provider.send_batch([mail("k:1", "gone@example.org"),
                                            mail("k:2", "busy@example.org"),
                                            mail("k:3", "ok@example.org")])
    assert (gone.ok, gone.retryable) == (False, False) and "550" in (gone.error or "")
    assert (busy.ok, busy.retryable) == (False, True) and "451" in (busy.error or "")
    assert fine.ok and len(smtp_server.mailbox.messages) == 1


def test_a_bad_recipient_is_permanent_and_sends_nothing(home, links, smtp_server,
                                                        tls_files) -> None:
    provider = smtp_provider(home, links, smtp_server, tls_files)
    injected, missing = provider.send_batch([mail("k:1", "a@example.org\r\nBcc: x@example.org"),
                                             mail("k:2", "")])
    assert not injected.ok and not injected.retryable and "not an email address" in injected.error
    assert not missing.ok and not missing.retryable
    assert smtp_server.mailbox.messages == []


def test_wrong_password_is_retryable(home, links, smtp_server, tls_files, monkeypatch) -> None:
    monkeypatch.setenv("MAIL_PASSWORD", "wrong")
    provider = smtp_provider(home, links, smtp_server, tls_files)
    results = provider.send_batch([mail("k:1"), mail("k:2")])
    assert all(r.retryable and "AUTH refused (535)" in (r.error or "") for r in results)
    assert smtp_server.mailbox.messages == []


def test_smtp_down_then_up(home, links, tls_files) -> None:
    server = SmtpServer(*tls_files)  # port reserved, nothing listening yet
    provider = provider_for(make_connection(home, "mail", **smtp_settings(server, tls_files[0])),
                            links)
    down = provider.send_batch([mail("k:1"), mail("k:2")])
    assert all(not r.ok and r.retryable and "connection refused" in (r.error or "") for r in down)
    server.start()
    try:
        up = provider.send_batch([mail("k:1", attempt=2), mail("k:2", attempt=2)])
    finally:
        server.stop()
    assert all(r.ok for r in up) and len(server.mailbox.messages) == 2


@pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS")
def test_implicit_tls(home, links, tls_files) -> None:
    server = SmtpServer(*tls_files, implicit_tls=True).start()
    try:
        connection = make_connection(home, "mail", **smtp_settings(server, tls_files[0],
                                                                   security="tls"))
        assert provider_for(connection, links).send_batch([mail("k:1")])[0].ok
        assert provider_for(connection, links).check().startswith(f"smtp 127.0.0.1:{server.port}")
    finally:
        server.stop()
    assert len(server.mailbox.messages) == 1


def test_a_batch_uses_one_session_per_worker(home, links, smtp_server, tls_files) -> None:
    connection = make_connection(home, "mail", **smtp_settings(smtp_server, tls_files[0],
                                                               concurrency=3))
    batch = [mail(f"k:{index}", f"c{index}@example.org") for index in range(30)]
    results = provider_for(connection, links).send_batch(batch)
    assert [r.idempotency_key for r in results] == [m.idempotency_key for m in batch]
    assert all(r.ok for r in results)
    assert smtp_server.mailbox.logins == 3
    assert sorted(r[1][0] for r in smtp_server.mailbox.messages) == sorted(
        m.recipient for m in batch)


def test_an_untrusted_certificate_is_refused(home, links, smtp_server, tls_files) -> None:
    settings = smtp_settings(smtp_server, tls_files[0])
    del settings["ca_file"]
    results = provider_for(make_connection(home, "mail", **settings), links).send_batch(
        [mail("k:1")])
    assert results[0].retryable and "CERTIFICATE_VERIFY_FAILED" in (results[0].error or "")
    assert smtp_server.mailbox.messages == []


@pytest.mark.parametrize("settings", [{"security": "none"}])
def test_a_password_is_never_sent_unencrypted(home, settings) -> None:
    from mawb.channels.connections import ConnectionsError

    with pytest.raises(ConnectionsError, match="unencrypted"):
        make_connection(home, "mail", kind="smtp", host="127.0.0.1", username="u",
                        password="env:MAIL_PASSWORD", **{"from": "a@b.example"}, **settings)
