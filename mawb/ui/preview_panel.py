"""The Builder's message preview: what one message step would send a chosen contact, how
many SMS segments a text costs, and a test send of it to a typed address.

Rendering is the delivery code's own (`mawb.engine.preview`, the path a real send takes), so
the preview never disagrees with what goes out; test sends go through the step's real SMTP
connection (`mawb.ui.proof_send`). This module only draws them and counts segments.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from mawb import nodes
from mawb.nodes.base import Message

if TYPE_CHECKING:
    from pathlib import Path

    from mawb.model import Flow, Node

GSM7_BASIC = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà")
GSM7_EXTENDED = frozenset("^{}\\[~]|€\f")
"""GSM 03.38: the extension table's characters take two septets each."""
PREVIEWED = (Message.EMAIL, Message.SMS, Message.PUSH)  # messages a contact gets


@dataclass(frozen=True)
class Segments:
    encoding: str  # "GSM-7" or "UCS-2"
    units: int  # septets (GSM-7) or UTF-16 code units (UCS-2)
    segments: int

    def describe(self) -> str:
        per = "characters" if self.encoding == "GSM-7" else "UCS-2 units"
        return (f"{self.segments} segment{'s' * (self.segments != 1)} · {self.encoding} · "
                f"{self.units} {per}")


def sms_segments(text: str) -> Segments:
    """How a carrier splits `text`: GSM-7 when every character is in the GSM alphabet (160
    per message, 153 per part when concatenated), else UCS-2 (70, 67 per part)."""
    if all(ch in GSM7_BASIC or ch in GSM7_EXTENDED for ch in text):
        units = sum(2 if ch in GSM7_EXTENDED else 1 for ch in text)
        single, part, encoding = 160, 153, "GSM-7"
    else:
        units = len(text.encode("utf-16-le")) // 2
        single, part, encoding = 70, 67, "UCS-2"
    segments = 1 if units <= single else -(-units // part)
    return Segments(encoding, units, segments if text else 0)


def preview_available() -> bool:
    try:
        import mawb.engine.preview  # noqa: F401
    except ImportError:
        return False
    return True


def render_preview(flow: Flow, node: Node, home: Path, key: str) -> None:
    """Draw the preview controls of a message step (no-op for other steps)."""
    import streamlit as st

    message = nodes.get(node.type).message if nodes.has(node.type) else None
    if message not in PREVIEWED:
        return
    with st.expander("Preview for a contact", icon=":material/preview:"):
        if message is Message.SMS:
            body = str(node.params.get("body", ""))
            st.caption(f"Template: {sms_segments(body).describe()} (before personalisation)")
        if not preview_available():
            st.caption("Message preview is not part of this installation.")
            return
        from mawb.ui.pickers import sample_contacts

        samples = sample_contacts(home)
        contact_id = st.text_input("Contact id", key=f"{key}::preview_contact",
                                   placeholder=f"e.g. {samples[0] if samples else 'c0001'}")
        if not contact_id.strip():
            st.caption("Type a contact id of the workspace to see the message it would get"
                       + (f" (e.g. {', '.join(samples)})." if samples else "."))
            return
        if _show(flow, node, contact_id.strip(), home):
            _test_send(flow, node, contact_id.strip(), home, key)


def _test_send(flow: Flow, node: Node, contact_id: str, home: Path, key: str) -> None:
    """Send this preview to a typed address through the step's SMTP connection, as a test."""
    import streamlit as st

    from mawb.ui import proof_send

    if node.type != "email_send":
        return
    st.markdown("**Send test**")
    try:
        connection = proof_send.proof_connection(flow, node.id, home)
    except proof_send.ProofError as error:
        st.caption(f"Test send unavailable: {error}")
        return
    address = st.text_input("Send a test to", key=f"{key}::test_address",
                            placeholder="you@example.com",
                            help="Goes through the real connection, subject marked [TEST]; "
                            "not counted, not in the contact's history")
    if st.button("Send test", key=f"{key}::test_send", icon=":material/send:"):
        try:
            proof = proof_send.send_proof(flow, node.id, contact_id, address, home)
        except proof_send.ProofError as error:
            st.error(f"Not sent: {error}", icon=":material/error:")
        else:
            if proof.ok:
                st.success(f"Test sent to {proof.to} via {connection}.",
                           icon=":material/mark_email_read:")
            else:
                st.error(f"The test to {proof.to} failed: {proof.detail}",
                         icon=":material/error:")
    recent = proof_send.recent_proofs(home)
    if recent:
        st.caption("Recent test sends (test_sends.jsonl): " + "; ".join(
            f"{p['at']} → {p['to']} {'sent' if p['ok'] else 'failed'}" for p in recent))


def _show(flow: Flow, node: Node, contact_id: str, home: Path) -> bool:
    import streamlit as st

    from mawb.engine.preview import PreviewError, preview
    from mawb.personalize import TemplateError

    try:
        shown = preview(flow, node.id, contact_id, home=home)
    except (PreviewError, TemplateError, FileNotFoundError) as error:
        st.error(str(error), icon=":material/error:")
        return False
    st.markdown(f"**To:** {shown.recipient or '(no address)'}")
    if shown.subject:
        st.markdown(f"**Subject:** {shown.subject}")
    st.text(shown.body or "")
    if shown.channel == "sms":
        st.caption(sms_segments(shown.body or "").describe())
    for note in shown.notes:
        st.caption(note)
    return True
