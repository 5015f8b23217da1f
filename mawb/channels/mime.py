"""The wire form of an outgoing mail: headers and a text (+ HTML) body, built directly as bytes.

The standard library's `email` package parses and refolds every header through its registry and
costs milliseconds per message, more than the SMTP exchange itself; a bulk sender builds
thousands. mawb writes the few shapes it sends itself: `text/plain` or `multipart/alternative`
(text, HTML), UTF-8 bodies in quoted-printable (readable, 7-bit clean, lines under 76 octets),
non-ASCII header values as RFC 2047 encoded-words, long headers folded at spaces. The boundary
starts with `=_`, which quoted-printable output can never contain. Tests parse the result with
the `email` package.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re

_HEADER_NAME = re.compile(r"^[!-9;-~]+$")  # printable ASCII except ':' (RFC 5322 field name)
LINE = 78
_WORD_BYTES = 45  # 45 bytes -> 60 base64 chars; with `=?utf-8?b?...?=` a 72-char encoded-word


def check_header(name: str, value: str) -> None:
    """Refuse what could inject headers: a bad field name or a line break in the value."""
    if not _HEADER_NAME.match(name):
        raise ValueError(f"header name {name!r} is not a field name")
    if "\r" in value or "\n" in value:
        raise ValueError(f"header {name} contains a line break")


def encoded_words(value: str) -> str:
    """`value` as RFC 2047 `=?utf-8?b?...?=` words (whole characters per word), space-joined."""
    words, chunk = [], b""
    for char in value:
        data = char.encode()
        if len(chunk) + len(data) > _WORD_BYTES:
            words.append(chunk)
            chunk = b""
        chunk += data
    words.append(chunk)
    return " ".join(f"=?utf-8?b?{base64.b64encode(word).decode()}?=" for word in words if word)


def header_line(name: str, value: str) -> str:
    """One header field, encoded if needed and folded at spaces to about 78 characters."""
    check_header(name, value)
    if not value.isascii():
        value = encoded_words(value)
    line = f"{name}: {value}"
    if len(line) <= LINE:
        return line
    lines, current = [], ""
    for token in line.split(" "):
        if current and len(current) + 1 + len(token) > LINE:
            lines.append(current)
            current = token
        else:
            current = f"{current} {token}" if current else token
    lines.append(current)
    return "\r\n ".join(lines)


def _qp(text: str) -> bytes:
    normalized = text.replace("\r\n", "\n").replace("\r", "\n").encode()
    return binascii.b2a_qp(normalized, istext=True).replace(b"\n", b"\r\n")


def _part(subtype: str, text: str) -> bytes:
    return (f'Content-Type: text/{subtype}; charset="utf-8"\r\n'
            "Content-Transfer-Encoding: quoted-printable\r\n\r\n").encode() + _qp(text)


def build(headers: list[tuple[str, str]], text: str, html: str | None, seed: str) -> bytes:
    """The message: `headers` (name, value) in order, then the body parts."""
    head = "\r\n".join(header_line(name, value) for name, value in headers)
    if html is None:
        return f"{head}\r\nMIME-Version: 1.0\r\n".encode() + _part("plain", text)
    boundary = "=_mawb_" + hashlib.sha256(seed.encode()).hexdigest()[:24]
    open_, close = f"\r\n--{boundary}\r\n".encode(), f"\r\n--{boundary}--\r\n".encode()
    return (f'{head}\r\nMIME-Version: 1.0\r\nContent-Type: multipart/alternative; '
            f'boundary="{boundary}"\r\n\r\nThis is a multipart message in MIME format.'
            ).encode() + open_ + _part("plain", text) + open_ + _part("html", html) + close
