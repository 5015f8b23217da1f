"""Email over SMTP (smtplib): STARTTLS or implicit TLS, AUTH, multipart text + HTML.

A batch is split over `concurrency` workers; each opens one session (EHLO, STARTTLS, EHLO, AUTH)
and sends its share over it, reconnecting after a dropped session. Every message gets
`Message-ID: <sha256(idempotency key)[:32]@sender domain>`, so a re-send after an expired lease
carries the same id (receivers and mailbox providers collapse it: at-least-once delivery,
recognisable duplicates). Marketing mail carries `List-Unsubscribe` (signed `/u/` link, plus
`mailto:` when configured) and `List-Unsubscribe-Post: List-Unsubscribe=One-Click` (RFC 8058);
with `tracking` on, an open pixel and click-tracked links. A message to an internal recipient
(`internal=True`) carries neither: it is not the contact's mail.

The wire form is built by `mawb.channels.mime` (the `email` package's header registry costs more
per message than the SMTP exchange); `compose` parses it back for previews.

Outcomes: connection refused/reset/timeout, a dropped session, AUTH refusal and 4xx replies are
retryable; 5xx replies to MAIL/RCPT/DATA (recipient or message refused) are permanent.
"""

from __future__ import annotations

import email
import hashlib
import re
import smtplib
import ssl
from email.policy import compat32
from email.utils import formataddr, formatdate
from typing import TYPE_CHECKING, Any

from mawb.channels import mime
from mawb.channels.base import CheckFailed, SendResult
from mawb.channels.pool import RateLimiter, chunks, run_bounded
from mawb.channels.tracking import html_to_text, track_html, unsubscribe_url

if TYPE_CHECKING:
    from email.message import Message

    from mawb.channels.base import OutboundMessage
    from mawb.channels.connections import LinkContext

# Headers a message may not set itself: the provider owns identity and unsubscribe semantics.
RESERVED_HEADERS = frozenset({"from", "to", "cc", "bcc", "subject", "date", "message-id",
                              "mime-version", "content-type", "content-transfer-encoding",
                              "list-unsubscribe", "list-unsubscribe-post"})
_ADDRESS = re.compile(r"^[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)+$")


def message_id(idempotency_key: str, sender: str) -> str:
    """The Message-ID of every attempt of one outbox row."""
    digest = hashlib.sha256(idempotency_key.encode()).hexdigest()[:32]
    return f"<{digest}@{sender.rpartition('@')[2] or 'mawb.invalid'}>"


class SmtpProvider:
    name = "smtp"

    def __init__(self, connection: Any, links: LinkContext) -> None:
        self.connection = connection
        self.links = links
        self.password = connection.secret("password")
        self.limiter = RateLimiter(connection.rate_per_second)
        self._from = formataddr((connection.from_name or "", connection.from_address))

    # -- sessions
    def _tls(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=self.connection.ca_file)

    def open(self) -> smtplib.SMTP:
        """A ready session: connected, encrypted as configured, authenticated."""
        conn, timeout = self.connection, self.connection.timeout_seconds
        session: smtplib.SMTP
        if conn.security == "tls":
            session = smtplib.SMTP_SSL(conn.host, conn.port, timeout=timeout, context=self._tls())
        else:
            session = smtplib.SMTP(conn.host, conn.port, timeout=timeout)
        try:
            session.ehlo()
            if conn.security == "starttls":
                if not session.has_extn("starttls"):
                    raise smtplib.SMTPNotSupportedError("the server does not offer STARTTLS")
                session.starttls(context=self._tls())
                session.ehlo()
            if conn.username:
                session.login(conn.username, self.password or "")
        except BaseException:
            _close(session)
            raise
        return session

    def check(self) -> str:
        """EHLO, STARTTLS (or TLS), AUTH, NOOP, QUIT: a real handshake, nothing sent."""
        conn = self.connection
        try:
            session = self.open()
            cipher = session.sock.version() if isinstance(session.sock, ssl.SSLSocket) else None
            session.noop()
            session.quit()
        except (OSError, smtplib.SMTPException) as error:
            raise CheckFailed(f"smtp {conn.host}:{conn.port}: {_describe(error)}") from None
        steps = ["EHLO ok", f"{'STARTTLS' if conn.security == 'starttls' else 'TLS'} ok "
                 f"({cipher})" if cipher else "unencrypted"]
        if conn.username:
            steps.append(f"AUTH ok as {conn.username}")
        return f"smtp {conn.host}:{conn.port}: {', '.join(steps)}; nothing was sent"

    # -- sending
    def send_batch(self, messages: list[OutboundMessage]) -> list[SendResult]:
        if not messages:
            return []
        return run_bounded(chunks(messages, self.connection.concurrency), self._send_share,
                           self.connection.concurrency)

    def _send_share(self, share: list[OutboundMessage]) -> list[SendResult]:
        results: list[SendResult] = []
        session: smtplib.SMTP | None = None
        try:
            for index, message in enumerate(share):
                try:
                    composed = self.compose_bytes(message)
                except ValueError as error:
                    results.append(SendResult(message.idempotency_key, ok=False,
                                              error=f"smtp: bad message: {error}"))
                    continue
                if session is None:
                    try:
                        session = self.open()
                    except (OSError, smtplib.SMTPException) as error:
                        results += _all_retryable(share[index:], _describe(error))
                        return results
                self.limiter.wait()
                result, alive = self._send(session, message, composed)
                results.append(result)
                if not alive:
                    _close(session)
                    session = None
        finally:
            if session is not None:
                _close(session, quit_=True)
        return results

    def _send(self, session: smtplib.SMTP, message: OutboundMessage,
              composed: tuple[bytes, str]) -> tuple[SendResult, bool]:
        """The result of one message and whether the session is still usable."""
        key, recipient = message.idempotency_key, (message.recipient or "").strip()
        raw, identifier = composed
        try:
            session.sendmail(self.connection.from_address, [recipient], raw)
        except smtplib.SMTPRecipientsRefused as error:
            code, reply = next(iter(error.recipients.values()))
            return _refused(key, code, reply, "recipient refused"), True
        except smtplib.SMTPResponseException as error:  # sender refused, data refused, ...
            return _refused(key, error.smtp_code, error.smtp_error, "refused"), True
        except (OSError, smtplib.SMTPException) as error:  # dropped session, timeout
            failure = SendResult(key, ok=False, retryable=True, error=f"smtp: {_describe(error)}")
            return failure, False
        return SendResult(key, ok=True, provider_ref=identifier), True

    def compose(self, message: OutboundMessage) -> Message:
        """The message as the `email` package reads it (previews, tests)."""
        return email.message_from_bytes(self.compose_bytes(message)[0], policy=compat32)

    def compose_bytes(self, message: OutboundMessage) -> tuple[bytes, str]:
        """(wire bytes, Message-ID) of one outbox row; ValueError for unusable content."""
        conn = self.connection
        recipient = (message.recipient or "").strip()
        if not _ADDRESS.match(recipient):
            raise ValueError(f"recipient {recipient!r} is not an email address")
        marketing = not message.internal
        unsubscribe = unsubscribe_url(self.links, message) if marketing else None
        text, html = self._parts(message, unsubscribe)
        identifier = message_id(message.idempotency_key, conn.from_address)
        headers = [("From", self._from), ("To", recipient), ("Subject", message.subject or ""),
                   ("Date", formatdate(usegmt=True)), ("Message-ID", identifier)]
        if conn.reply_to:
            headers.append(("Reply-To", conn.reply_to))
        if unsubscribe:
            entries = [f"<{unsubscribe}>"]
            if conn.unsubscribe_mailto:
                entries.append(f"<mailto:{conn.unsubscribe_mailto}?subject=unsubscribe>")
            headers += [("List-Unsubscribe", ", ".join(entries)),
                        ("List-Unsubscribe-Post", "List-Unsubscribe=One-Click")]
        for name, value in message.headers.items():
            if name.lower() in RESERVED_HEADERS:
                raise ValueError(f"header {name} is set by the provider")
            headers.append((name, str(value)))
        return mime.build(headers, text, html, message.idempotency_key), identifier

    def _parts(self, message: OutboundMessage, unsubscribe: str | None) -> tuple[str, str | None]:
        """Text and HTML bodies: preheader, visible unsubscribe line, tracking (marketing only)."""
        html = message.html
        preheader = str(message.payload.get("preheader") or "")
        if html and preheader:
            html = (f'<div style="display:none;max-height:0;overflow:hidden">{preheader}</div>'
                    + html)
        text = message.body or (html_to_text(message.html) if message.html else "")
        if unsubscribe and self.connection.unsubscribe_footer:
            text = f"{text.rstrip()}\n\n--\nUnsubscribe: {unsubscribe}\n"
            if html:
                html = _before_body_end(html, f'<p style="font-size:12px;color:#666">'
                                              f'<a href="{unsubscribe}">Unsubscribe</a></p>')
        if html and unsubscribe and self.connection.tracking:
            html = track_html(html, self.links, message)
        return text, html


def _before_body_end(html: str, snippet: str) -> str:
    closing = html.lower().rfind("</body>")
    return html + snippet if closing < 0 else html[:closing] + snippet + html[closing:]


def _refused(key: str, code: int, reply: bytes | str, what: str) -> SendResult:
    text = reply.decode("utf-8", "replace") if isinstance(reply, bytes) else str(reply)
    error = f"smtp: {what} ({code} {' '.join(text.split())})"
    return SendResult(key, ok=False, error=error, retryable=not 500 <= code < 600)


def _all_retryable(messages: list[OutboundMessage], reason: str) -> list[SendResult]:
    return [SendResult(m.idempotency_key, ok=False, retryable=True, error=f"smtp: {reason}")
            for m in messages]


def _describe(error: BaseException) -> str:
    if isinstance(error, smtplib.SMTPAuthenticationError):
        return f"AUTH refused ({error.smtp_code})"
    if isinstance(error, smtplib.SMTPResponseException):
        text = error.smtp_error.decode("utf-8", "replace") if isinstance(
            error.smtp_error, bytes) else str(error.smtp_error)
        return f"{error.smtp_code} {' '.join(text.split())}"
    if isinstance(error, TimeoutError):
        return "timeout"
    if isinstance(error, ConnectionRefusedError):
        return "connection refused"
    return f"{type(error).__name__}: {error}" if str(error) else type(error).__name__


def _close(session: smtplib.SMTP, quit_: bool = False) -> None:
    try:
        if quit_:
            session.quit()
        else:
            session.close()
    except (OSError, smtplib.SMTPException):
        session.close()
