"""Outbound safety: forbidden addresses are refused after resolution and on every redirect,
before any socket connects."""

from __future__ import annotations

import socket

import pytest
from channel_servers import Answer, make_connection

from mawb.channels.base import OutboundMessage
from mawb.channels.connections import provider_for
from mawb.channels.netguard import address_problem


def call(url: str) -> OutboundMessage:
    return OutboundMessage("k", "api", None, payload={"method": "GET", "url": url})


@pytest.fixture
def connects(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, int]]:
    """Every TCP connect the HTTP stack makes (the check must come before any)."""
    made: list[tuple[str, int]] = []
    real = socket.create_connection

    def recording(address, *args, **kwargs):
        made.append(address)
        return real(address, *args, **kwargs)

    monkeypatch.setattr(socket, "create_connection", recording)
    return made


@pytest.mark.parametrize(("address", "problem"), [
    ("93.184.216.34", None), ("2606:2800:220:1:248:1893:25c8:1946", None),
    ("127.0.0.1", "loopback"), ("::1", "loopback"), ("::ffff:127.0.0.1", "loopback"),
    ("10.0.0.1", "private"), ("192.168.1.9", "private"), ("fc00::1", "private"),
    ("169.254.169.254", "cloud metadata"), ("fd00:ec2::254", "cloud metadata"),
    ("169.254.1.1", "link-local"), ("fe80::1", "link-local"), ("224.0.0.251", "multicast"),
    ("0.0.0.0", "unspecified"), ("240.0.0.1", "reserved"), ("100.64.0.1", "non-public"),
])
def test_address_classes(address, problem) -> None:
    assert address_problem(address) == problem


@pytest.mark.parametrize(("url", "words"), [
    ("http://127.0.0.1:{port}/x", "refused 127.0.0.1 a loopback address"),
    ("http://[::1]:{port}/x", "refused ::1 a loopback address"),
    ("http://169.254.169.254/latest/meta-data/", "cloud metadata"),
    ("http://localhost:{port}/x", "localhost resolves to"),
])
def test_forbidden_destinations_are_refused_before_connecting(
        home, links, http_server, connects, url, words) -> None:
    connection = make_connection(home, "api", kind="http")
    (result,) = provider_for(connection, links).send_batch([call(
        url.format(port=http_server.port))])
    assert not result.ok and not result.retryable
    assert words in result.error and "allow_hosts" in result.error
    assert connects == [] and http_server.requests == []


def test_a_name_resolving_to_a_private_address(home, links, connects, monkeypatch) -> None:
    def resolve(host, port, *args, **kwargs):
        assert host == "crm.internal.example"
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("10.0.0.1", port))]

    monkeypatch.setattr(socket, "getaddrinfo", resolve)
    connection = make_connection(home, "api", kind="http")
    (result,) = provider_for(connection, links).send_batch([call(
        "https://crm.internal.example/v1")])
    assert "crm.internal.example resolves to 10.0.0.1, a private address" in result.error
    assert not result.retryable and connects == []


def test_one_forbidden_answer_among_public_ones_refuses(home, links, connects,
                                                        monkeypatch) -> None:
    monkeypatch.setattr(socket, "getaddrinfo", lambda host, port, *a, **k: [
        (socket.AF_INET, socket.SOCK_STREAM, 6, "", ("93.184.216.34", port)),
        (socket.AF_INET, socket.SOCK_STREAM, 6, "", ("127.0.0.1", port))])
    (result,) = provider_for(make_connection(home, "api", kind="http"), links).send_batch(
        [call("https://mixed.example/")])
    assert "loopback" in result.error and connects == []


@pytest.mark.parametrize("target", [
    "http://169.254.169.254/latest/meta-data/", "http://localhost:{port}/again",
    "http://[::1]:{port}/", "file:///etc/passwd"])
def test_a_redirect_to_a_forbidden_address_is_refused(home, links, http_server, connects,
                                                      target) -> None:
    http_server.answer = lambda r: Answer(302, b"", {"Location": target.format(
        port=http_server.port)})
    connection = make_connection(home, "api", kind="http", allow_hosts=["127.0.0.1"])
    (result,) = provider_for(connection, links).send_batch([call(f"{http_server.url}/start")])
    assert not result.ok and not result.retryable and "refused" in result.error
    assert [r.path for r in http_server.requests] == ["/start"]
    assert connects == [("127.0.0.1", http_server.port)]


def test_allowed_redirects_are_followed_and_bounded(home, links, http_server) -> None:
    def answer(received):
        hop = int(received.path.rsplit("/", 1)[1])
        if hop == 2:
            return Answer(200, b'{"done": true}')
        return Answer(307, b"", {"Location": f"/hop/{hop + 1}"})

    http_server.answer = answer
    connection = make_connection(home, "api", kind="http", allow_hosts=["127.0.0.1"])
    provider = provider_for(connection, links)
    (result,) = provider.send_batch([OutboundMessage("k", "api", None, payload={
        "url": f"{http_server.url}/hop/0", "store": {"done": "done"}})])
    assert result.ok and result.response == {"done": True}
    assert [r.method for r in http_server.requests] == ["POST"] * 3  # 307 keeps the method

    http_server.answer = lambda r: Answer(302, b"", {"Location": "/loop"})
    (looped,) = provider.send_batch([call(f"{http_server.url}/loop")])
    assert not looped.ok and not looped.retryable and "more than 5 redirects" in looped.error


def test_credentials_stay_with_their_host_across_redirects(home, links, http_server,
                                                           monkeypatch) -> None:
    monkeypatch.setenv("API_TOKEN", "api-token")
    http_server.answer = lambda r: Answer(200) if r.path == "/next" else Answer(
        307, b"", {"Location": f"http://localhost:{http_server.port}/next"})
    connection = make_connection(home, "api", kind="http", token="env:API_TOKEN",
                                 headers={"X-Api-Key": "env:API_TOKEN", "X-Team": "growth"},
                                 allow_hosts=["127.0.0.1", "localhost"])
    (result,) = provider_for(connection, links).send_batch([call(f"{http_server.url}/first")])
    assert result.ok
    first, second = http_server.requests
    assert first.headers["authorization"] == "Bearer api-token"
    assert first.headers["x-api-key"] == "api-token"
    assert "authorization" not in second.headers and "x-api-key" not in second.headers
    assert second.headers["x-team"] == "growth" and second.headers["host"].startswith("localhost")
