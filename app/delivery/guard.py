"""Outbound request safety: refuse webhook targets on non-public addresses (SSRF).

Users configure the URLs this service POSTs to. Without a guard, a user could point a
webhook at ``http://169.254.169.254/`` (cloud metadata credentials), ``http://localhost``
(the service's own admin endpoints, databases, caches) or anything else on the internal
network, and use the scheduler as a proxy into it. So only public unicast addresses may be
contacted, plus what the operator allows with ``ALLOW_PRIVATE_WEBHOOK_TARGETS``, parsed into a
:class:`PrivateTargets` policy by :func:`parse_private_targets`:

* ``false`` (the default): nothing more.
* ``true``: every address except the cloud metadata endpoints (:data:`METADATA_ADDRESSES`,
  :data:`METADATA_HOSTS`), which hand out credentials and are never what a webhook means.
* a comma-separated list of networks (``10.0.0.0/8``, ``fd00::/8``, a bare address for one
  address) and exact host names (``relay.internal``): the addresses inside a listed network, and
  the listed names whatever they resolve to. A metadata endpoint is allowed only by naming it:
  ``169.254.169.254`` (or ``/32``) opens it, ``169.254.0.0/16`` does not.

There are two checks, and they are not equivalent:

* :func:`check_url_target` runs when a URL is saved. It rejects bad schemes, URLs without
  a host, IP literals in any spelling a resolver accepts (``http://2130706433/``,
  ``http://0x7f000001/``, ``http://127.1/``, ``http://[::ffff:127.0.0.1]/``, ...) the
  policy does not allow, metadata names, and names that are obviously local when the policy
  allows no private address. It does NOT resolve names: that would be slow, and it would
  prove nothing.
* :func:`check_resolved_addresses` runs at connect time, on the addresses the sender has
  just resolved and is about to connect to. This is the check that counts. With DNS
  rebinding, a name can resolve to a public address when the URL is saved and to
  ``127.0.0.1`` when the request is sent, so the save-time check alone is not enough. The
  sender must connect to exactly the addresses that passed this check (not resolve again).

Redirects are not followed by the sender: a public target answering ``302 Location:
http://169.254.169.254/`` would otherwise bypass both checks.

Error messages are safe to show to users and to log: they name the host at most, never
the URL's path or query (webhook URLs carry their secret token there), and they name the setting
that would allow the target.

This module is pure: no DNS, no sockets, no environment access.
"""

from __future__ import annotations

import ipaddress
import re
import unicodedata
from dataclasses import dataclass
from functools import lru_cache
from urllib.parse import unquote, urlsplit

__all__ = [
    "ALLOWED_SCHEMES",
    "ALL_PRIVATE",
    "ANY_TARGET",
    "METADATA_ADDRESSES",
    "METADATA_HOSTS",
    "PUBLIC_ONLY",
    "SETTING",
    "PrivateTargets",
    "UnsafeTargetError",
    "check_resolved_addresses",
    "check_url_target",
    "is_public_address",
    "parse_literal_host",
    "parse_private_targets",
]

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

SETTING = "ALLOW_PRIVATE_WEBHOOK_TARGETS"

ALLOWED_SCHEMES = frozenset({"http", "https"})

_HOST_DISPLAY_MAX = 100


class UnsafeTargetError(ValueError):
    """A webhook target that must not be contacted; the message is safe to show and log."""


# --------------------------------------------------------------------- addresses

# Ranges that must never be contacted, listed explicitly even where ``is_global`` or the
# other ``ipaddress`` properties already cover them on this Python version: their exact
# coverage has changed between Python releases (e.g. CPython 3.11 reports 100.64.0.0/10 as
# neither private nor global, and reports fec0::/10, 3fff::/20 and ff0e::/16 as global).
_BLOCKED_V4 = tuple(
    ipaddress.IPv4Network(n)
    for n in (
        "0.0.0.0/8",  # "this network", unspecified; 0.0.0.0 reaches localhost on Linux
        "10.0.0.0/8",  # private
        "100.64.0.0/10",  # carrier-grade NAT (is_global is False, is_private is too)
        "127.0.0.0/8",  # loopback
        "169.254.0.0/16",  # link-local, incl. cloud metadata 169.254.169.254
        "172.16.0.0/12",  # private
        "192.0.0.0/24",  # IETF protocol assignments
        "192.0.2.0/24",  # documentation TEST-NET-1
        "192.88.99.0/24",  # deprecated 6to4 relay anycast
        "192.168.0.0/16",  # private
        "198.18.0.0/15",  # benchmarking
        "198.51.100.0/24",  # documentation TEST-NET-2
        "203.0.113.0/24",  # documentation TEST-NET-3
        "224.0.0.0/4",  # multicast
        "240.0.0.0/4",  # reserved, incl. broadcast 255.255.255.255
    )
)

_BLOCKED_V6 = tuple(
    ipaddress.IPv6Network(n)
    for n in (
        "::/96",  # unspecified, loopback and deprecated IPv4-compatible ::a.b.c.d
        "100::/64",  # discard-only
        "2001:db8::/32",  # documentation
        "3fff::/20",  # documentation (RFC 9637); is_global misses it on 3.11
        "64:ff9b:1::/48",  # local-use NAT64 (RFC 8215)
        "fc00::/7",  # unique local
        "fe80::/10",  # link-local
        "fec0::/10",  # deprecated site-local; is_global misses it on 3.11
        "ff00::/8",  # multicast; is_global misses ff0e:: (global scope) on 3.11
    )
)

_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")  # well-known NAT64 prefix (RFC 6052)
_IPV4_TRANSLATED = ipaddress.IPv6Network("::ffff:0:0:0/96")  # SIIT (RFC 2765)


def _is_public_v4(ip: ipaddress.IPv4Address) -> bool:
    # is_global is the base; the explicit list adds what it misses or may miss.
    return ip.is_global and not any(ip in net for net in _BLOCKED_V4)


def _embedded_v4(ip: ipaddress.IPv6Address) -> list[ipaddress.IPv4Address] | None:
    """IPv4 addresses carried by an IPv6 address that translates to IPv4, else None."""
    if ip.ipv4_mapped is not None:  # ::ffff:a.b.c.d
        return [ip.ipv4_mapped]
    if ip in _NAT64 or ip in _IPV4_TRANSLATED:  # 64:ff9b::a.b.c.d, ::ffff:0:a.b.c.d
        return [ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)]
    if ip.sixtofour is not None:  # 2002:aabb:ccdd::/48
        return [ip.sixtofour]
    if ip.teredo is not None:  # 2001:0::/32; traffic reaches both server and client
        server, client = ip.teredo
        return [server, client]
    return None


def is_public_address(ip: IPAddress) -> bool:
    """True only if ``ip`` is a public unicast address that may be contacted."""
    if isinstance(ip, ipaddress.IPv4Address):
        return _is_public_v4(ip)
    # ipaddress's IPv6 properties judge IPv4-mapped, NAT64, 6to4 and Teredo addresses by
    # their IPv6 prefix (e.g. ::ffff:127.0.0.1 counts as global on 3.11); what matters is
    # the IPv4 address the packets end up at.
    embedded = _embedded_v4(ip)
    if embedded is not None:
        return all(_is_public_v4(v4) for v4 in embedded)
    if ip.scope_id:  # fe80::1%eth0 and the like: scoped addresses are never public
        return False
    return ip.is_global and not any(ip in net for net in _BLOCKED_V6)


# ------------------------------------------------------------------- host names


def _normalize_host(host: str) -> str:
    """Lower-case, NFKC-folded host (fullwidth digits and dots become ASCII)."""
    host = unicodedata.normalize("NFKC", unquote(host)).strip().lower()
    for dot in ("\u3002", "\uff0e", "\uff61"):  # ideographic / fullwidth / halfwidth stops
        host = host.replace(dot, ".")
    return host


_HEX_DIGITS = frozenset("0123456789abcdefABCDEF")
_OCT_DIGITS = frozenset("01234567")


def _parse_inet_aton_part(part: str) -> int | None:
    """One inet_aton component: decimal, 0x-prefixed hex or 0-prefixed octal."""
    if part[:2] in ("0x", "0X"):
        digits = part[2:]
        if not set(digits) <= _HEX_DIGITS:
            return None
        return int(digits, 16) if digits else 0  # glibc accepts a bare "0x" as 0
    if not part.isascii() or not part.isdigit():
        return None
    if len(part) > 1 and part[0] == "0":
        return int(part, 8) if set(part) <= _OCT_DIGITS else None
    return int(part)


def _parse_inet_aton(host: str) -> ipaddress.IPv4Address | None:
    """Parse what libc inet_aton accepts: a, a.b, a.b.c or a.b.c.d, each dec/hex/octal.

    The last component fills all remaining bytes: "127.1" is 127.0.0.1 and "2130706433"
    is 127.0.0.1 too.
    """
    parts = host.split(".")
    if not 1 <= len(parts) <= 4 or "" in parts:
        return None
    values: list[int] = []
    for part in parts:
        value = _parse_inet_aton_part(part)
        if value is None:
            return None
        values.append(value)
    *leading, last = values
    last_bits = 8 * (5 - len(values))
    if any(v > 0xFF for v in leading) or last >= 1 << last_bits:
        return None
    number = 0
    for v in leading:
        number = (number << 8) | v
    return ipaddress.IPv4Address((number << last_bits) | last)


def parse_literal_host(host: str) -> IPAddress | None:
    """Return the IP address ``host`` denotes if it is an IP literal in any form, else None."""
    if not isinstance(host, str):
        return None
    host = _normalize_host(host)
    # glibc's inet_aton ignores anything after the first whitespace ("127.0.0.1 x").
    host = host.split()[0] if host.split() else ""
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    elif host.endswith(".") and ":" not in host:
        host = host[:-1]  # "127.0.0.1." is still 127.0.0.1 to most resolvers
    if not host:
        return None
    if ":" in host:
        try:
            return ipaddress.IPv6Address(host)
        except ValueError:
            return None
    return _parse_inet_aton(host)


# Exact names and suffixes that are local by definition or by convention.
_LOCAL_NAMES = frozenset(
    {"localhost", "localhost.localdomain", "ip6-localhost", "ip6-loopback", "broadcasthost"}
)
_LOCAL_SUFFIXES = (".localhost", ".localdomain", ".local", ".internal", ".home.arpa")


def _is_local_name(host: str) -> bool:
    return host in _LOCAL_NAMES or host.endswith(_LOCAL_SUFFIXES)


def _display(host: str) -> str:
    """The host as shown in error messages: printable and bounded."""
    shown = "".join(c if c.isprintable() and not c.isspace() else "?" for c in host)
    if len(shown) > _HOST_DISPLAY_MAX:
        shown = shown[:_HOST_DISPLAY_MAX] + "..."
    return shown or "?"


# ---------------------------------------------------------------------- policy

# Cloud metadata endpoints (AWS, GCP and Azure; AWS over IPv6; Alibaba Cloud): they hand out
# the machine's credentials, so ``true`` does not open them; only naming them does.
_METADATA_LITERALS = ("169.254.169.254", "fd00:ec2::254", "100.100.100.200")
METADATA_ADDRESSES = frozenset(ipaddress.ip_address(a) for a in _METADATA_LITERALS)
METADATA_HOSTS = frozenset({"metadata.google.internal"})

# Why a target is refused, as the messages say it.
_NON_PUBLIC = "a non-public address"
_METADATA_ADDRESS = "a cloud metadata address"
_LOCAL_NAME = "a local host name"
_METADATA_NAME = "a cloud metadata host name"

_TRUE_WORDS = frozenset({"true", "1", "yes", "on"})
_FALSE_WORDS = frozenset({"false", "0", "no", "off", ""})
_HOST_LABEL = re.compile(r"(?!-)[a-z0-9_-]{1,63}(?<!-)")
_HOST_NAME_MAX = 253
_SETTING_FORMS = "true, false or a comma-separated list of networks and host names"


def _name_key(host: str) -> str:
    """A host name as policies compare it: normalized, without the root's trailing dot."""
    return _normalize_host(host).rstrip(".")


def _destinations(ip: IPAddress) -> list[IPAddress]:
    """Where packets for ``ip`` end up: the IPv4 addresses an IPv6 translation carries, else ip."""
    embedded = _embedded_v4(ip) if isinstance(ip, ipaddress.IPv6Address) else None
    return [*embedded] if embedded else [ip]


@dataclass(frozen=True)
class PrivateTargets:
    """Which targets besides public addresses may be contacted (ALLOW_PRIVATE_WEBHOOK_TARGETS).

    ``every_private`` allows every address but the cloud metadata endpoints; ``networks`` the
    addresses inside them (a metadata endpoint only through a single-address network that is
    exactly it); ``hosts`` the names listed, whatever they resolve to.
    """

    every_private: bool = False
    networks: tuple[IPNetwork, ...] = ()
    hosts: frozenset[str] = frozenset()

    @staticmethod
    def of(value: PrivateTargets | bool) -> PrivateTargets:
        """The policy itself; for a bool, False is PUBLIC_ONLY and True ANY_TARGET (no limit)."""
        if isinstance(value, PrivateTargets):
            return value
        return ANY_TARGET if value else PUBLIC_ONLY

    def lists_name(self, host: str) -> bool:
        """True if ``host`` is a listed name, allowed whatever it resolves to."""
        return _name_key(host) in self.hosts

    def address_problem(self, ip: IPAddress) -> str | None:
        """Why ``ip`` may not be contacted under this policy, or None if it may."""
        destinations = _destinations(ip)
        if any(d in METADATA_ADDRESSES and not self._names(d) for d in destinations):
            return _METADATA_ADDRESS
        if all(is_public_address(d) or self._covers(d) for d in destinations):
            return None
        return _NON_PUBLIC

    def name_problem(self, host: str) -> str | None:
        """Why the name ``host`` may not be saved, judged without resolving it; None if it may."""
        name = _name_key(host)
        if name in self.hosts:
            return None
        if name in METADATA_HOSTS:
            return _METADATA_NAME
        if _is_local_name(name) and not (self.every_private or self.networks):
            return _LOCAL_NAME  # nothing in the policy could allow what it resolves to
        return None

    def hint(self, problem: str) -> str:
        """How the operator would allow a target refused for ``problem``."""
        if problem in (_METADATA_ADDRESS, _METADATA_NAME):
            return f"only listing it in {SETTING} allows it"
        if self.networks or self.hosts:
            return f"add it to {SETTING} to allow it"
        return f"set {SETTING} to allow it"

    def _covers(self, ip: IPAddress) -> bool:
        return self.every_private or any(ip in network for network in self.networks)

    def _names(self, ip: IPAddress) -> bool:
        return any(net.num_addresses == 1 and ip in net for net in self.networks)


PUBLIC_ONLY = PrivateTargets()  # the setting's ``false``
ALL_PRIVATE = PrivateTargets(every_private=True)  # the setting's ``true``
# What a bare ``True`` given to a check means: no limit at all, metadata endpoints included
# (app.schemas checks only a URL's form this way).
ANY_TARGET = PrivateTargets(
    every_private=True,
    networks=tuple(ipaddress.ip_network(a) for a in _METADATA_LITERALS),
    hosts=METADATA_HOSTS,
)


@lru_cache(maxsize=64, typed=True)
def parse_private_targets(value: bool | str) -> PrivateTargets:
    """The policy a value of ALLOW_PRIVATE_WEBHOOK_TARGETS stands for: a bool, a word (true /
    false, 1 / 0, yes / no, on / off) or a comma-separated list of networks and host names.

    Raises ValueError naming the setting for anything malformed.
    """
    if isinstance(value, bool):
        return ALL_PRIVATE if value else PUBLIC_ONLY
    if not isinstance(value, str):
        raise ValueError(f"{SETTING} must be {_SETTING_FORMS}")
    text = value.strip().lower()
    if text in _TRUE_WORDS:
        return ALL_PRIVATE
    if text in _FALSE_WORDS:
        return PUBLIC_ONLY
    items = [_parse_listed(item.strip()) for item in text.split(",") if item.strip()]
    networks = tuple(item for item in items if not isinstance(item, str))
    hosts = frozenset(item for item in items if isinstance(item, str))
    return PrivateTargets(networks=networks, hosts=hosts)


def _parse_listed(item: str) -> IPNetwork | str:
    """One item of the list form: a network (a bare address is a network of one) or a name."""
    if item in _TRUE_WORDS | _FALSE_WORDS:
        raise ValueError(f"{SETTING}: {item!r} cannot be part of a list; give {_SETTING_FORMS}")
    try:
        return ipaddress.ip_network(item)
    except ValueError as exc:
        reason = str(exc)
    name = item.rstrip(".")
    labels = name.split(".")
    if "/" in item or ":" in item or labels[-1].isdigit() or parse_literal_host(item) is not None:
        raise ValueError(
            f"{SETTING}: {item!r} is not a valid network or IP address ({reason}); give a "
            "network such as 10.0.0.0/8, an address in standard form, or a host name"
        )
    if len(name) > _HOST_NAME_MAX or not all(_HOST_LABEL.fullmatch(label) for label in labels):
        raise ValueError(
            f"{SETTING}: {item!r} is not a network (such as 10.0.0.0/8), an IP address or a "
            "host name (exact ASCII names, no wildcards)"
        )
    return name


# ---------------------------------------------------------------------- checks


def _url_hostname(url: str) -> str:
    """The host of an http(s) URL; UnsafeTargetError for any other URL."""
    if not isinstance(url, str):
        raise UnsafeTargetError("invalid URL")
    try:
        parts = urlsplit(url.strip())
        hostname = parts.hostname
        parts.port  # noqa: B018 - raises ValueError for a malformed or out-of-range port
    except ValueError:
        raise UnsafeTargetError("invalid URL") from None

    scheme = parts.scheme.lower()
    if scheme not in ALLOWED_SCHEMES:
        shown = _display(scheme[:20]) if scheme else "none"
        raise UnsafeTargetError(f"only http and https URLs are allowed (scheme: {shown})")
    if not hostname:
        raise UnsafeTargetError("URL has no host")
    return hostname


def check_url_target(url: str, *, allow_private: PrivateTargets | bool = False) -> None:
    """Raise UnsafeTargetError unless ``url`` is an http(s) URL whose host may be saved.

    The host is judged by the policy ``allow_private`` (a bool: see PrivateTargets.of): IP
    literals in any spelling by their address, names only when they are local or metadata
    names; other names are not resolved here (see check_resolved_addresses).
    """
    refusal = _url_target_refusal(url, PrivateTargets.of(allow_private))
    if refusal is not None:
        raise UnsafeTargetError(refusal)


@lru_cache(maxsize=4096)
def _url_target_refusal(url: str, targets: PrivateTargets) -> str | None:
    """Why ``url`` is refused under ``targets`` (None: it is not). Remembered, since every
    delivery checks its URL again and the answer depends on nothing else."""
    host = _normalize_host(_url_hostname(url))
    literal = parse_literal_host(host)
    if literal is not None:
        problem = targets.address_problem(literal)
    else:
        problem = targets.name_problem(host)
    if problem is None:
        return None
    return f"refusing to send to {_display(host)}: it is {problem}; {targets.hint(problem)}"


def check_resolved_addresses(
    host: str, addresses: list[str], *, allow_private: PrivateTargets | bool = False
) -> None:
    """Raise UnsafeTargetError unless ``host``, resolved to ``addresses``, may be contacted.

    A name listed in the policy ``allow_private`` may be, whatever it resolves to; otherwise
    every address must be allowed. Unparseable addresses and an empty list are refused
    (fail closed).
    """
    targets = PrivateTargets.of(allow_private)
    if targets.lists_name(str(host)):
        return
    shown = _display(str(host))
    if _name_key(str(host)) in METADATA_HOSTS:
        hint = targets.hint(_METADATA_NAME)
        raise UnsafeTargetError(f"refusing to connect to {shown}: it is {_METADATA_NAME}; {hint}")
    if not addresses:
        raise UnsafeTargetError(f"refusing to connect to {shown}: it resolves to no address")
    for address in addresses:
        text = str(address).strip()
        ip = _resolved_address(text)
        if ip is None:
            raise UnsafeTargetError(
                f"refusing to connect to {shown}: it resolves to an unrecognised address "
                f"({_display(text[:60])})"
            )
        problem = targets.address_problem(ip)
        if problem is not None:
            raise UnsafeTargetError(
                f"refusing to connect to {shown}: it resolves to {problem} ({_display(text)}); "
                f"{targets.hint(problem)}"
            )


def _resolved_address(text: str) -> IPAddress | None:
    """The address a resolver returned, or None if it is not one."""
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        return parse_literal_host(text)
