"""Requests this project makes to addresses a user gave (webhooks): to public addresses only.

A configuration could otherwise make the daemon POST into a cloud metadata service
(``169.254.169.254``) or a private network. So an address is resolved and checked when a configuration
is created or updated and again when a request is sent; the request connects to the address that
was checked (a second DNS answer cannot swap it: no DNS rebinding), keeping the host name in the
``Host`` header and for TLS; redirects are not followed; credentials in a URL are refused.

The operator may allow more: ``CLUSTER_PIPELINE_ALLOW_PRIVATE_WEBHOOKS=1`` allows every address,
``CLUSTER_PIPELINE_WEBHOOK_HOSTS`` (comma-separated host names or addresses) allows those hosts.
"""

from __future__ import annotations

import http.client
import ipaddress
import os
import socket
import ssl
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit

from cluster_pipeline.core.errors import OutboundAddressError

ALLOW_PRIVATE_ENV = "CLUSTER_PIPELINE_ALLOW_PRIVATE_WEBHOOKS"
ALLOWED_HOSTS_ENV = "CLUSTER_PIPELINE_WEBHOOK_HOSTS"
_HOW_TO_ALLOW = (
    f"use a public address, or let the operator allow it ({ALLOWED_HOSTS_ENV}=<host>, or "
    f"{ALLOW_PRIVATE_ENV}=1 for every private address)"
)


@dataclass(frozen=True)
class Destination:
    """A checked URL: the host it names and the address a request connects to."""

    scheme: str
    host: str
    port: int
    address: str
    target: str  # path and query, as sent in the request line


class OutboundResponseError(OSError):
    """A receiver answered with something other than 2xx (a redirect included: it is not followed)."""

    def __init__(self, status: int) -> None:
        super().__init__(f"HTTP {status}")
        self.status = status


def _allowed_hosts() -> set[str]:
    return {
        host.strip().lower().strip("[]") for host in os.environ.get(ALLOWED_HOSTS_ENV, "").split(",") if host.strip()
    }


def _is_public(address: str) -> bool:
    ip = ipaddress.ip_address(address.split("%")[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_global and not ip.is_multicast


def check_url(url: str) -> Destination:
    """Where a request to ``url`` goes, checked; OutboundAddressError (one line, with the fix) when it
    may not go there."""
    parts = urlsplit(url)
    shown = f"{parts.scheme}://{parts.netloc.rpartition('@')[2]}"  # credentials never shown
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise OutboundAddressError(
            f"Webhook {shown}/… is not an http(s) URL with a host, e.g. https://example.com/hook."
        )
    if parts.username is not None or parts.password is not None:
        raise OutboundAddressError(
            f"Webhook {shown}/… holds credentials (user:password@); they are refused in URLs: put a token in its path "
            "or query instead, or rely on the signature."
        )
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        raise OutboundAddressError(f"Webhook {shown}/… has an invalid port; give a number from 1 to 65535.") from None
    try:
        answers = socket.getaddrinfo(parts.hostname, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as error:
        raise OutboundAddressError(
            f"Webhook host {parts.hostname!r} cannot be resolved ({error}); check its spelling."
        ) from None
    addresses = [str(answer[4][0]) for answer in answers]
    allowed = os.environ.get(ALLOW_PRIVATE_ENV) == "1" or parts.hostname.lower() in _allowed_hosts()
    private = [address for address in addresses if not _is_public(address)]
    if private and not allowed:
        raise OutboundAddressError(
            f"Webhook {shown}/… resolves to {private[0]}, which is not a public address; {_HOW_TO_ALLOW}."
        )
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    return Destination(parts.scheme, parts.hostname, port, addresses[0], target)


class _PinnedHTTPConnection(http.client.HTTPConnection):
    """An HTTP connection to a checked address, naming its host in ``Host``."""

    def __init__(self, destination: Destination, timeout: float) -> None:
        super().__init__(destination.host, destination.port, timeout=timeout)
        self.address = destination.address

    def connect(self) -> None:
        self.sock = socket.create_connection((self.address, self.port), self.timeout)


class _PinnedHTTPSConnection(http.client.HTTPSConnection):
    """An HTTPS connection to a checked address, its certificate checked for the host name (SNI kept)."""

    def __init__(self, destination: Destination, timeout: float) -> None:
        super().__init__(destination.host, destination.port, timeout=timeout)
        self.address = destination.address
        self.tls = ssl.create_default_context()

    def connect(self) -> None:
        raw = socket.create_connection((self.address, self.port), self.timeout)
        self.sock = self.tls.wrap_socket(raw, server_hostname=self.host)


def post(url: str, body: bytes, headers: Mapping[str, str], timeout: float) -> int:
    """POST ``body`` to ``url`` checked now (OutboundAddressError), connecting to the checked address;
    the 2xx status, or OutboundResponseError for any other answer (a redirect is not followed)."""
    destination = check_url(url)
    connection_type = _PinnedHTTPSConnection if destination.scheme == "https" else _PinnedHTTPConnection
    connection = connection_type(destination, timeout)
    try:
        connection.request("POST", destination.target, body=body, headers=dict(headers))
        response = connection.getresponse()
        response.read()
    finally:
        connection.close()
    if not 200 <= response.status < 300:
        raise OutboundResponseError(response.status)
    return response.status
