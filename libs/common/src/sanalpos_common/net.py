"""Which network addresses an outgoing webhook may reach (pure: no I/O).

Merchants choose webhook URLs, so without a check the platform would POST wherever it is
told: its own loopback, the cluster network, the cloud metadata service. Only globally
routable unicast addresses are allowed. The rule is applied twice: to the URL when an
endpoint is registered (IP literals and names that cannot be public), and to every address
a name resolves to when the connection is made (so a name that later resolves to a private
address — DNS rebinding — is refused too). Loopback can be allowed for local development.
"""

from __future__ import annotations

import ipaddress
import socket
from urllib.parse import urlsplit

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

# Not covered by `is_global` in every Python version, or worth naming.
_BLOCKED_NETWORKS = tuple(
    ipaddress.ip_network(n)
    for n in (
        "0.0.0.0/8",  # "this network"
        "100.64.0.0/10",  # carrier-grade NAT (also Alibaba's metadata 100.100.100.200)
        "169.254.0.0/16",  # link-local, cloud metadata 169.254.169.254
        "192.0.0.0/24",  # IETF protocol assignments
        "198.18.0.0/15",  # benchmarking
        "240.0.0.0/4",  # reserved, and the broadcast address
        "fc00::/7",  # unique local (AWS metadata fd00:ec2::254)
        "fe80::/10",  # link-local
        "fec0::/10",  # site-local (deprecated)
        "ff00::/8",  # multicast
        "100::/64",  # discard-only
        "2001:db8::/32",  # documentation
    )
)
# IPv6 forms that carry an IPv4 address a connection may end up at.
_NAT64 = ipaddress.ip_network("64:ff9b::/96")
_SIXTOFOUR = ipaddress.ip_network("2002::/16")

# Names that never denote a public host (RFC 6761, RFC 8375, common internal suffixes).
_INTERNAL_SUFFIXES = (
    ".localhost",
    ".local",
    ".internal",
    ".intranet",
    ".lan",
    ".home.arpa",
    ".corp",
    ".localdomain",
    ".svc",
    ".cluster.local",
)
LOOPBACK_NAMES = frozenset({"localhost", "localhost.localdomain"})


def embedded_ipv4(address: IPAddress) -> ipaddress.IPv4Address | None:
    """The IPv4 address inside an IPv4-mapped, IPv4-compatible, NAT64 or 6to4 address."""
    if not isinstance(address, ipaddress.IPv6Address):
        return None
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address.sixtofour is not None:
        return address.sixtofour
    packed = address.packed
    if address in _NAT64 or (packed[:12] == bytes(12) and int(address) > 0xFFFF):
        return ipaddress.IPv4Address(packed[12:])
    return None


def address_refusal(address: IPAddress, *, allow_loopback: bool = False) -> str | None:
    """Why a connection to `address` is refused; None when it is a public unicast address
    (or loopback, when `allow_loopback`)."""
    inner = embedded_ipv4(address)
    if inner is not None:
        refusal = address_refusal(inner, allow_loopback=allow_loopback)
        return None if refusal is None else f"{address} embeds {inner}: {refusal}"
    if address.is_loopback:
        return None if allow_loopback else f"{address} is a loopback address"
    if address.is_unspecified:
        return f"{address} is the unspecified address"
    if address.is_multicast:
        return f"{address} is a multicast address"
    if address.is_link_local:
        return f"{address} is link-local (cloud metadata lives there)"
    for network in _BLOCKED_NETWORKS:
        if address.version == network.version and address in network:
            return f"{address} is in the non-public range {network}"
    if address.is_private or address.is_reserved or not address.is_global:
        return f"{address} is not a public address"
    return None


def ip_literal(host: str) -> IPAddress | None:
    """The address a host string denotes by itself, in any form a resolver accepts:
    dotted quad, IPv6 (with or without brackets), and the legacy IPv4 forms
    (`2130706433`, `0x7f.1`, `127.1`) that getaddrinfo turns into addresses too."""
    text = host.strip("[]")
    try:
        return ipaddress.ip_address(text.split("%", 1)[0])
    except ValueError:
        pass
    try:
        return ipaddress.IPv4Address(socket.inet_aton(text))
    except (OSError, ValueError):
        return None


def host_refusal(host: str, *, allow_loopback: bool = False) -> str | None:
    """Why a URL host cannot be a webhook target, judged without resolving it."""
    name = host.rstrip(".").lower()
    if not name:
        return "the URL has no host"
    literal = ip_literal(name)
    if literal is not None:
        return address_refusal(literal, allow_loopback=allow_loopback)
    if name in LOOPBACK_NAMES or name.endswith(".localhost"):
        return None if allow_loopback else f"{host} names the loopback interface"
    if "." not in name:
        return f"{host} is not a fully qualified public host name"
    if name.endswith(_INTERNAL_SUFFIXES):
        return f"{host} is an internal host name"
    if name.rsplit(".", 1)[-1].isdigit() or name.rsplit(".", 1)[-1].startswith("0x"):
        # URL parsers read a host ending in a number as an IPv4 address.
        return f"{host} is not a valid host name"
    return None


def webhook_url_refusal(
    url: str, *, allow_http: bool = True, allow_loopback: bool = False
) -> str | None:
    """Why `url` cannot be a webhook endpoint; None when it may be registered."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return "not a valid URL"
    allowed = ("https", "http") if allow_http else ("https",)
    if parts.scheme not in allowed:
        return f"the scheme must be {' or '.join(allowed)}"
    if parts.username is not None or parts.password is not None:
        return "the URL must not carry credentials"
    if port == 0:
        return "port 0 is not a valid port"
    return host_refusal(parts.hostname or "", allow_loopback=allow_loopback)
