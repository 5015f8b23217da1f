"""Outbound safety: HTTP calls go to public addresses only, checked where the socket connects.

Flow content decides where integration nodes call (an `api_call` URL is a template; a push
endpoint comes from the contact's browser), so a flow or a contact could aim mawb at the
service's own loopback ports, the private network or a cloud metadata endpoint. The guard refuses
loopback, private, link-local, multicast, reserved, unspecified, shared (CGNAT) and
cloud-metadata addresses unless the host is in the connection's `allow_hosts`.

How: httpx opens sockets through httpcore's network backend. `GuardedTransport` gives the pool a
backend whose `connect_tcp` resolves the host (getaddrinfo), refuses the connection if any
address is forbidden, and connects to the checked IP itself. The socket is therefore pinned to
the address that was checked (a DNS answer that changes between check and connect, "DNS
rebinding", cannot slip through), while TLS SNI, certificate checks and the Host header still use
the URL's host name (httpcore passes the origin host to `start_tls`, httpx builds Host from the
URL). Because the check sits at connect time, every redirect hop and every new pooled connection
is checked too; `fetch` follows redirects by hand (bounded) so each hop is also scheme-checked,
loses credential headers when the host changes, and is counted. Proxies from the environment are
ignored (`trust_env=False`): a proxy would connect on the guard's behalf.
"""

from __future__ import annotations

import functools
import ipaddress
import socket
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import httpcore
import httpx

from mawb.channels.connections import SENSITIVE_HEADERS

if TYPE_CHECKING:
    import ssl
    from collections.abc import Iterable

# Metadata services answer on link-local / ULA addresses (already refused as such); named here so
# the error says what the address is.
METADATA_ADDRESSES = frozenset(ipaddress.ip_address(a) for a in (
    "169.254.169.254", "fd00:ec2::254", "169.254.170.2", "100.100.100.200"))
REDIRECT_CODES = frozenset({301, 302, 303, 307, 308})
MAX_REDIRECTS = 5


class OutboundBlocked(Exception):
    """A call refused before connecting (forbidden address, scheme or too many redirects)."""


class ResponseTooLarge(Exception):
    """The response body exceeded the connection's `max_response_bytes`; reading stopped."""


def address_problem(address: str) -> str | None:
    """Why `address` (an IP literal) may not be called, or None when it is a public address."""
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    checks = (
        (ip in METADATA_ADDRESSES, "cloud metadata"),
        (ip.is_unspecified, "unspecified"),
        (ip.is_loopback, "loopback"),
        (ip.is_link_local, "link-local"),
        (ip.is_multicast, "multicast"),
        (ip.is_reserved, "reserved"),
        (ip.is_private, "private"),
        (not ip.is_global, "non-public"),
    )
    return next((reason for failed, reason in checks if failed), None)


def normalize_host(host: str) -> str:
    return host.strip().strip("[]").lower().rstrip(".")


def checked_addresses(host: str, port: int, allow_hosts: Iterable[str] = ()) -> list[str]:
    """The IPs `host` resolves to, all public; raises OutboundBlocked naming the first that is
    not. A host in `allow_hosts` is returned unresolved (`[host]`)."""
    name = normalize_host(host)
    if name in {normalize_host(h) for h in allow_hosts}:
        return [host]
    try:
        infos = socket.getaddrinfo(name, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as error:
        raise httpcore.ConnectError(f"cannot resolve {name}: {error}") from None
    addresses = list(dict.fromkeys(str(info[4][0]) for info in infos))
    for address in addresses:
        problem = address_problem(address)
        if problem:
            shown = name if name == address else f"{name} resolves to {address},"
            raise OutboundBlocked(
                f"refused {shown} a {problem} address: outbound calls go to public addresses "
                f"only (list {name!r} in the connection's allow_hosts to permit it)")
    if not addresses:
        raise httpcore.ConnectError(f"cannot resolve {name}: no addresses")
    return addresses


class GuardedBackend(httpcore.NetworkBackend):
    """httpcore's sync backend, connecting only to checked addresses (see module docstring)."""

    def __init__(self, allow_hosts: Iterable[str] = ()) -> None:
        self._inner = httpcore.SyncBackend()
        self._allow = tuple(allow_hosts)

    def connect_tcp(self, host: str, port: int, timeout: float | None = None,
                    local_address: str | None = None,
                    socket_options: Iterable[Any] | None = None) -> httpcore.NetworkStream:
        failure: Exception | None = None
        for address in checked_addresses(host, port, self._allow):
            try:
                return self._inner.connect_tcp(address, port, timeout, local_address,
                                               socket_options)
            except httpcore.ConnectError as error:  # try the next checked address
                failure = error
        assert failure is not None
        raise failure

    def connect_unix_socket(self, path: str, timeout: float | None = None,
                            socket_options: Iterable[Any] | None = None) -> httpcore.NetworkStream:
        raise OutboundBlocked("unix sockets are never an outbound destination")

    def sleep(self, seconds: float) -> None:
        self._inner.sleep(seconds)


@functools.cache
def default_tls() -> ssl.SSLContext:
    """The verifying TLS context, built once (loading the CA bundle costs tens of ms)."""
    return httpx.create_ssl_context(trust_env=False)


class GuardedTransport(httpx.HTTPTransport):
    """httpx's transport over a pool whose sockets come from `GuardedBackend`.

    httpx does not take a network backend, so the pool it builds is replaced by an identical
    one that has the guard's; the SSRF tests fail if a future httpx changes that attribute."""

    def __init__(self, allow_hosts: Iterable[str] = (), *, max_connections: int = 10,
                 tls: ssl.SSLContext | None = None) -> None:
        context = tls or default_tls()
        super().__init__(verify=context, trust_env=False)
        self._pool.close()
        self._pool = httpcore.ConnectionPool(
            ssl_context=context, max_connections=max_connections,
            max_keepalive_connections=max_connections, keepalive_expiry=5.0,
            network_backend=GuardedBackend(allow_hosts))


def guarded_client(allow_hosts: Iterable[str] = (), *, timeout: float = 10,
                   max_connections: int = 10) -> httpx.Client:
    """An httpx.Client that never follows redirects itself and connects through the guard."""
    return httpx.Client(
        transport=GuardedTransport(allow_hosts, max_connections=max_connections),
        timeout=httpx.Timeout(timeout, connect=min(timeout, 5.0)),
        follow_redirects=False, trust_env=False)


@dataclass(frozen=True)
class Reply:
    """A response read whole (within the size and time limits)."""

    status: int
    headers: httpx.Headers
    body: bytes
    url: str

    def json(self) -> Any:
        import json

        return json.loads(self.body)


def fetch(client: httpx.Client, method: str, url: str, *, headers: dict[str, str] | None = None,
          content: bytes | None = None, max_bytes: int = 1 << 20, time_limit: float = 30,
          max_redirects: int = MAX_REDIRECTS) -> Reply:
    """One request, redirects followed by hand (each hop checked), body cut at `max_bytes`.

    Raises OutboundBlocked, ResponseTooLarge or httpx.TransportError (timeouts included; a body
    still arriving after `time_limit` seconds is a ReadTimeout)."""
    deadline = time.monotonic() + time_limit
    current, sent_headers = httpx.URL(url), dict(headers or {})
    for _hop in range(max_redirects + 1):
        if current.scheme not in {"http", "https"}:
            raise OutboundBlocked(f"refused {current}: only http and https URLs are called")
        request = client.build_request(method, current, headers=sent_headers, content=content)
        response = client.send(request, stream=True)
        try:
            location = response.headers.get("location")
            if response.status_code in REDIRECT_CODES and location:
                target = current.join(location)
                if response.status_code == 303 or (
                        response.status_code in {301, 302} and method == "POST"):
                    method, content = "GET", None
                    sent_headers = {k: v for k, v in sent_headers.items()
                                    if k.lower() != "content-type"}
                if target.host != current.host:  # credentials stay with their host
                    sent_headers = {k: v for k, v in sent_headers.items()
                                    if k.lower() not in SENSITIVE_HEADERS}
                current = target
                continue
            body = _read_limited(response, max_bytes, deadline)
            return Reply(response.status_code, response.headers, body, str(current))
        finally:
            response.close()
    raise OutboundBlocked(f"refused {url}: more than {max_redirects} redirects")


def _read_limited(response: httpx.Response, max_bytes: int, deadline: float) -> bytes:
    declared = response.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > max_bytes:
        raise ResponseTooLarge(f"response of {declared} bytes is over the {max_bytes}-byte limit")
    chunks: list[bytes] = []
    size = 0
    for chunk in response.iter_bytes():
        size += len(chunk)
        if size > max_bytes:
            raise ResponseTooLarge(f"response over the {max_bytes}-byte limit; reading stopped")
        if time.monotonic() > deadline:
            raise httpx.ReadTimeout("response still arriving at the time limit")
        chunks.append(chunk)
    return b"".join(chunks)
