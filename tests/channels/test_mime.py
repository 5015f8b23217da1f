"""The hand-built wire form reads back exactly through the standard `email` parser."""

from __future__ import annotations

import email
from email import policy

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mawb.channels import mime

pieces = st.text(st.characters(blacklist_categories=("Cs", "Cc")), max_size=30) | st.sampled_from(
    ["\n", "\r\n", ".", "=", "--", " ", "\t", "=_mawb_", "From ", "\n.\n", "x" * 120])
texts = st.lists(pieces, max_size=20).map("".join)
subjects = st.text(st.characters(blacklist_categories=("Cs", "Cc", "Zl", "Zp")), max_size=120)


def parse(raw: bytes) -> email.message.EmailMessage:
    return email.message_from_bytes(raw, policy=policy.default)  # type: ignore[return-value]


@settings(max_examples=60, deadline=None)
@given(subject=subjects, text=texts, html=st.none() | texts)
def test_round_trip(subject, text, html) -> None:
    raw = mime.build([("From", "a@b.example"), ("To", "c@d.example"), ("Subject", subject)],
                     text, html, "key")
    assert all(len(line) <= 998 for line in raw.split(b"\r\n"))
    assert raw.isascii()
    message = parse(raw)
    assert " ".join(str(message["Subject"]).split()) == " ".join(subject.split())
    normalized = text.replace("\r\n", "\n").replace("\r", "\n")
    assert message.get_body(("plain",)).get_content().replace("\r\n", "\n") == normalized
    if html is not None:
        assert message.get_content_type() == "multipart/alternative"
        body = message.get_body(("html",)).get_content().replace("\r\n", "\n")
        assert body == html.replace("\r\n", "\n").replace("\r", "\n")


def test_long_headers_fold_at_spaces() -> None:
    value = ", ".join(f"<https://go.example.com/u/{'x' * 60}{n}>" for n in range(3))
    line = mime.header_line("List-Unsubscribe", value)
    assert all(len(part) <= 100 for part in line.split("\r\n"))
    assert line.replace("\r\n", "") == f"List-Unsubscribe: {value}"


@pytest.mark.parametrize(("name", "value"), [("Subject", "hi\r\nBcc: x@y.example"),
                                             ("X-Note", "a\nb"), ("Bad Name", "v"),
                                             ("X:Y", "v")])
def test_header_injection_is_refused(name, value) -> None:
    with pytest.raises(ValueError, match=r"line break|field name"):
        mime.header_line(name, value)
