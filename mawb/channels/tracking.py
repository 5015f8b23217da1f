"""Signed links in outgoing mail: unsubscribe, open pixel and click-tracked hrefs.

Every link is a `mawb.links` token under the public base URL, carrying the contact, flow,
version, node and idempotency key, so the intake service attributes an open or click to one
message without a store read, and a click token's target URL is signed (never an open redirect).
HTML is rewritten with the standard library's parser, not regular expressions over the whole
document: only `href` attributes of `<a>` start tags with http(s) targets change.
"""

from __future__ import annotations

import html as html_lib
import re
from html.parser import HTMLParser
from typing import TYPE_CHECKING, Any

from mawb.links import link_url

if TYPE_CHECKING:
    from collections.abc import Callable

    from mawb.channels.base import OutboundMessage
    from mawb.channels.connections import LinkContext

_HREF = re.compile(r"""(\bhref\s*=\s*)("[^"]*"|'[^']*'|[^\s>]+)""", re.IGNORECASE)
_BLOCKS = {"p", "div", "br", "tr", "li", "h1", "h2", "h3", "h4", "h5", "h6", "table", "ul",
           "ol", "blockquote", "hr"}


def _fields(message: OutboundMessage) -> dict[str, Any]:
    return {"c": message.contact_id, "f": message.flow_id, "v": message.flow_version,
            "n": message.node_id, "k": message.idempotency_key}


def unsubscribe_url(links: LinkContext, message: OutboundMessage) -> str:
    """`{base}/u/{token}`: GET confirms, POST is the RFC 8058 one-click unsubscribe."""
    return link_url(links.base_url, links.secret, "u", **_fields(message))


def open_url(links: LinkContext, message: OutboundMessage) -> str:
    return link_url(links.base_url, links.secret, "o", **_fields(message))


def click_url(links: LinkContext, message: OutboundMessage, target: str) -> str:
    return link_url(links.base_url, links.secret, "c", url=target, **_fields(message))


class _Anchors(HTMLParser):
    """Offsets and targets of `<a href>` start tags in the source."""

    def __init__(self, source: str) -> None:
        super().__init__(convert_charrefs=True)
        self._line_starts = [0]
        for match in re.finditer("\n", source):
            self._line_starts.append(match.end())
        self.anchors: list[tuple[int, str, str]] = []  # (offset, raw tag, href)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        href = dict(attrs).get("href")
        raw = self.get_starttag_text()
        if tag == "a" and href and raw:
            line, column = self.getpos()
            self.anchors.append((self._line_starts[line - 1] + column, raw, href))


def _quoted_href(url: str) -> Callable[[re.Match[str]], str]:
    """An `_HREF` replacement: the attribute's own `href=` with `url` (already escaped)."""
    return lambda match: f'{match[1]}"{url}"'


def track_html(source: str, links: LinkContext, message: OutboundMessage) -> str:
    """`source` with http(s) links through `/c/` and an open pixel before `</body>`."""
    parser = _Anchors(source)
    parser.feed(source)
    parser.close()
    own = f"{links.base_url}/"
    pieces, cursor = [], 0
    for offset, raw, href in parser.anchors:
        if not href.lower().startswith(("http://", "https://")) or href.startswith(own):
            continue
        tracked = html_lib.escape(click_url(links, message, href), quote=True)
        pieces += [source[cursor:offset], _HREF.sub(_quoted_href(tracked), raw, 1)]
        cursor = offset + len(raw)
    rewritten = "".join([*pieces, source[cursor:]])
    pixel = (f'<img src="{html_lib.escape(open_url(links, message), quote=True)}" width="1" '
             'height="1" alt="" style="display:none">')
    closing = rewritten.lower().rfind("</body>")
    if closing < 0:
        return rewritten + pixel
    return rewritten[:closing] + pixel + rewritten[closing:]


class _Text(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self._skip = 0
        self._href: list[str | None] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in {"style", "script", "head", "title"}:
            self._skip += 1
        elif tag in _BLOCKS:
            self.parts.append("\n")
        if tag == "a":
            self._href.append(dict(attrs).get("href"))

    def handle_endtag(self, tag: str) -> None:
        if tag in {"style", "script", "head", "title"}:
            self._skip = max(0, self._skip - 1)
        elif tag in _BLOCKS:
            self.parts.append("\n")
        if tag == "a" and self._href:
            href = self._href.pop()
            if href and href.lower().startswith(("http://", "https://", "mailto:")):
                self.parts.append(f" ({href})")

    def handle_data(self, data: str) -> None:
        if not self._skip:
            self.parts.append(data)


def html_to_text(source: str) -> str:
    """A readable text part for an HTML-only message: blocks become lines, links show URLs."""
    parser = _Text()
    parser.feed(source)
    parser.close()
    lines = [" ".join(line.split()) for line in "".join(parser.parts).splitlines()]
    text = "\n".join(lines)
    return re.sub(r"\n{3,}", "\n\n", text).strip() + "\n"
