"""Where an outbound delivery may be sent: http(s), to a public address, and nowhere else unless allowed.

Why: a URL someone else chose (a sandbox institution's webhook URL, the bank's notification URL)
is POSTed to, and a delivery log reports the answer's status. Unchecked, that is a way into this
machine's private networks (cloud metadata at 169.254.169.254, services on 10/8) and a port
scanner for them. So the URL is checked when it is set and again at every delivery, since a name
can resolve elsewhere by then; the delivery connects to the very address that was checked
(`WebhookTarget.addresses`), never to the result of a second lookup.

What else is allowed is the caller's `TargetPolicy`: loopback for the sandbox (its demo receiver is
this app on 127.0.0.1) and for a development configuration; private addresses only when a
developer says so explicitly; https only in a live configuration.
"""

from __future__ import annotations

import ipaddress
import socket
from dataclasses import dataclass
from urllib.parse import urlsplit

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

_NAT64 = ipaddress.ip_network("64:ff9b::/96")
# What `TargetPolicy.allow_private` opens: a developer's own networks (RFC 1918, carrier-grade NAT, IPv6
# unique local). Never link-local: 169.254.169.254 is cloud metadata, in development as anywhere.
_PRIVATE_NETWORKS = tuple(ipaddress.ip_network(n) for n in (
    "10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "100.64.0.0/10", "fc00::/7"))
_DEFAULT_PORTS = {"http": 80, "https": 443}


@dataclass(frozen=True)
class TargetPolicy:
    """What a URL may point at beyond public unicast addresses. The default is the sandbox's."""

    allow_loopback: bool = True
    # A developer's own networks (_PRIVATE_NETWORKS): an explicit switch, never a default.
    allow_private: bool = False
    https_only: bool = False

    @property
    def where_deliveries_go(self) -> str:
        if self.allow_private:
            return ("deliveries go to public, private or loopback addresses, never to link-local, multicast, "
                    "reserved or unspecified ones")
        if self.allow_loopback:
            return ("webhooks go to public addresses (or loopback), never to private, link-local, multicast, "
                    "reserved or unspecified ones")
        return ("deliveries go to public addresses, never to private, loopback, link-local, multicast, "
                "reserved or unspecified ones")

    @classmethod
    def for_notifications(cls, *, embedded_sandbox: bool, development: bool) -> TargetPolicy:
        """The bank's notification URL: public https in a live configuration. With the embedded sandbox,
        loopback and http too (as the sandbox's own webhooks); with the development switch, private too."""
        return cls(allow_loopback=embedded_sandbox or development, allow_private=development,
                   https_only=not (embedded_sandbox or development))


SANDBOX_POLICY = TargetPolicy()


class RefusedTarget(ValueError):
    """This URL may not receive deliveries. `str()` is a sentence for a person; `short` fits a log line."""

    def __init__(self, message: str, short: str | None = None) -> None:
        super().__init__(message)
        self.short = short or message


@dataclass(frozen=True)
class WebhookTarget:
    """A checked delivery URL: where to connect, and what to call the host on the wire."""

    scheme: str
    host: str  # as written, lower-case, without brackets: for Host, TLS SNI and the certificate check
    port: int
    request_target: str  # path and query, as sent on the request line
    addresses: tuple[str, ...]  # every address the host resolved to, each one allowed; connect to these

    @property
    def host_header(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return host if self.port == _DEFAULT_PORTS[self.scheme] else f"{host}:{self.port}"


def address_allowed(address: IPAddress, policy: TargetPolicy = SANDBOX_POLICY) -> bool:
    """A public unicast address, or one `policy` allows. IPv6 forms that carry an IPv4 address are judged by it."""
    embedded = _embedded_ipv4(address)
    if embedded is not None:
        return address_allowed(embedded, policy)
    if address.is_loopback:
        return policy.allow_loopback
    if policy.allow_private and any(address in network for network in _PRIVATE_NETWORKS):
        return True
    return address.is_global and not (
        address.is_private
        or address.is_link_local
        or address.is_multicast
        or address.is_reserved
        or address.is_unspecified
    )


def loopback_host(host: str | None) -> bool:
    """`localhost` or a loopback address (127.0.0.0/8, ::1): a connection to it never leaves this machine."""
    if not host:
        return False
    if host.lower() == "localhost":
        return True
    literal = _ip_literal(host)
    return literal is not None and literal.is_loopback


def _embedded_ipv4(address: IPAddress) -> ipaddress.IPv4Address | None:
    """The IPv4 address inside ::ffff:a.b.c.d, 6to4 (2002::/16) and NAT64 (64:ff9b::/96) forms."""
    if not isinstance(address, ipaddress.IPv6Address):
        return None
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address.sixtofour is not None:
        return address.sixtofour
    if address in _NAT64:
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return None


def resolve_target(url: str, policy: TargetPolicy = SANDBOX_POLICY) -> WebhookTarget:
    """Check `url` against `policy` and resolve its host once; raise RefusedTarget saying why it may not be used.

    Every address the host resolves to must be allowed: a name that answers with one public and
    one private address is refused, as the client could be steered to either.
    """
    scheme, host, port, request_target, literal = _checked_parts(url, policy)
    addresses = (literal,) if literal is not None else _resolve(host, port)
    for address in addresses:
        _check_address(address, policy)
    return WebhookTarget(scheme, host, port, request_target, tuple(str(address) for address in addresses))


def refusal_without_lookup(url: str, policy: TargetPolicy) -> None:
    """Raise RefusedTarget for what can be told from `url` alone (scheme, form, an address written in it),
    asking no DNS: for checks at start-up, where a name is left to `resolve_target` at each delivery."""
    _scheme, host, _port, _request_target, literal = _checked_parts(url, policy)
    if literal is not None:
        _check_address(literal, policy)


def _checked_parts(url: str, policy: TargetPolicy) -> tuple[str, str, int, str, IPAddress | None]:
    """The URL's scheme, host, port, request target and the address written as its host, if one is."""
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError:
        raise RefusedTarget("url is not a valid address, or its port is outside 1–65535.", "invalid url") from None
    scheme = parts.scheme.lower()
    if scheme not in _DEFAULT_PORTS or not parts.netloc:
        raise RefusedTarget("url must be an http:// or https:// address.", "not http(s)")
    if policy.https_only and scheme != "https":
        raise RefusedTarget("url must be an https:// address.", "not https")
    if "@" in parts.netloc:
        raise RefusedTarget("url must not carry a user name or password.", "credentials in url")
    host = parts.hostname or ""
    if not host or "%" in host:
        raise RefusedTarget("url must name a host, without a network interface.", "no usable host")
    if port == 0:
        raise RefusedTarget("url has a port outside 1–65535.", "port 0")
    port = port or _DEFAULT_PORTS[scheme]
    literal = _ip_literal(host)
    if literal is None and _loose_ipv4(host):
        raise RefusedTarget(
            f"url writes an IPv4 address in a shorthand form ({host}); write it as four decimal numbers, "
            "like 203.0.113.7.",
            "address not written as four decimal numbers",
        )
    request_target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    return scheme, host, port, request_target, literal


def _check_address(address: IPAddress, policy: TargetPolicy) -> None:
    if not address_allowed(address, policy):
        raise RefusedTarget(
            f"url points at {address}, which is not allowed: {policy.where_deliveries_go}.",
            f"address not allowed ({address})",
        )


def _ip_literal(host: str) -> IPAddress | None:
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        return None


def _loose_ipv4(host: str) -> bool:
    """True for 0x7f000001, 2130706433, 0177.0.0.1, 127.1: forms the C resolver reads as IPv4 addresses.

    They are only ever written to slip past a filter, so they are refused, whatever they point at.
    """
    try:
        socket.inet_aton(host)
    except (OSError, ValueError):
        return False
    return True


# RFC 6761/2606 names that never resolve on the internet: answered here, with no DNS query sent.
_NEVER_RESOLVE = (".invalid", ".test", ".example", ".local")


def _resolve(host: str, port: int) -> tuple[IPAddress, ...]:
    name = host.rstrip(".").lower()
    if name.endswith(_NEVER_RESOLVE) or name in ("invalid", "test", "example", "local"):
        raise RefusedTarget(
            f"url names a host that could not be resolved ({host[:100]}).", "host could not be resolved"
        )
    try:
        answers = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP)
    except (OSError, UnicodeError):
        raise RefusedTarget(
            f"url names a host that could not be resolved ({host[:100]}).", "host could not be resolved"
        ) from None
    addresses: dict[IPAddress, None] = {}
    for _family, _type, _proto, _canonical, sockaddr in answers:
        addresses[ipaddress.ip_address(str(sockaddr[0]).split("%")[0])] = None
    if not addresses:
        raise RefusedTarget(f"url names a host that could not be resolved ({host[:100]}).", "host has no address")
    return tuple(addresses)
