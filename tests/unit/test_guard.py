"""Unit tests for app.delivery.guard (pure functions, no DNS, no network)."""

from __future__ import annotations

import ipaddress

import pytest

from app.delivery.guard import (
    UnsafeTargetError,
    check_resolved_addresses,
    check_url_target,
    is_public_address,
    parse_literal_host,
)

SECRET = "s3cr3t-T0KEN-do-not-leak"
ANY_V4 = "0.0.0.0"  # noqa: S104 - a test value, nothing binds to it
# "127.0.0.1" in fullwidth digits and full stops, and with ideographic full stops.
FULLWIDTH_LOOPBACK = "\uff11\uff12\uff17\uff0e\uff10\uff0e\uff10\uff0e\uff11"
IDEOGRAPHIC_LOOPBACK = "127\u30020\u30020\u30021"

# Refused unless allow_private (host-level problems).
PRIVATE_TARGETS = [
    "http://127.0.0.1/",
    "http://2130706433/",
    "http://0x7f000001/",
    "http://0177.0.0.1/",
    "http://127.1/",
    "http://127.0.0.1./",
    "http://0x7f.0.0.1/",
    "http://017700000001/",
    f"http://{ANY_V4}/",
    "http://0/",
    "http://[::]/",
    "http://[::1]/",
    "http://[0:0:0:0:0:0:0:1]/",
    "http://[::ffff:127.0.0.1]/",
    "http://[::ffff:7f00:1]/",
    "http://[::ffff:169.254.169.254]/",
    "http://[64:ff9b::a9fe:a9fe]/",
    "http://[2002:7f00:1::]/",
    "http://[fe80::1%25eth0]/",
    "http://169.254.169.254/",
    "http://169.254.169.254/latest/meta-data/iam/security-credentials/",
    "http://100.64.0.1/",
    "http://10.0.0.1/",
    "http://192.168.1.1/",
    "http://172.16.0.1/",
    "http://172.31.255.255/",
    "http://[fd00::1]/",
    "http://[fe80::1]/",
    "http://[fec0::1]/",
    "http://198.18.0.1/",
    "http://192.0.2.1/",
    "http://224.0.0.1/",
    "http://255.255.255.255/",
    "http://localhost/",
    "http://LOCALHOST/",
    "http://localhost./",
    "http://localhost:8080/admin",
    "http://foo.localhost/",
    "http://localhost.localdomain/",
    "http://ip6-localhost/",
    "http://printer.local/",
    "http://metadata.google.internal/",
    "http://metadata.google.internal./computeMetadata/v1/",
    "https://user:pass@127.0.0.1:8443/x",
    f"http://{FULLWIDTH_LOOPBACK}/",
    f"http://{IDEOGRAPHIC_LOOPBACK}/",
    "http://%31%32%37.0.0.1/",
]

BAD_SCHEME_OR_HOST = [
    "ftp://example.com/",
    "file:///etc/passwd",
    "gopher://127.0.0.1:6379/_INFO",
    "javascript:alert(1)",
    "example.com/hook",
    "//example.com/hook",
    "http:///nohost",
    "http://",
    "https://:443/x",
    "",
    "http://[::1/",
    "http://example.com:99999/",
    "http://example.com:port/",
]

ALLOWED_TARGETS = [
    "https://discord.com/api/webhooks/1/x",
    "https://discord.com/api/v10/webhooks/123456789012345678/" + SECRET,
    "http://93.184.216.34/",
    "https://[2606:4700::1111]/",
    "https://example.com/hook?token=abc",
    "https://hooks.slack.com/services/T0/B0/xyz",
    "http://8.8.8.8:8080/x",
    "https://[::ffff:8.8.8.8]/",
    "https://localhost.example.com/",  # only the exact name and the suffixes are local
    "https://internal.example.com/",
    "https://local.example.com/",
    "https://0x.example.com/",
]


# ----------------------------------------------------------------- is_public_address


@pytest.mark.parametrize(
    "address",
    [
        "127.0.0.1",
        "127.255.255.254",
        "10.0.0.1",
        "10.255.255.255",
        "172.16.0.1",
        "172.31.255.255",
        "192.168.0.1",
        "169.254.169.254",
        "169.254.0.1",
        "100.64.0.1",
        "100.127.255.254",
        ANY_V4,
        "0.1.2.3",
        "224.0.0.1",
        "239.255.255.250",
        "240.0.0.1",
        "255.255.255.255",
        "198.18.0.1",
        "198.19.255.255",
        "192.0.0.1",
        "192.0.0.170",
        "192.0.2.1",
        "198.51.100.1",
        "203.0.113.1",
        "::",
        "::1",
        "::ffff:127.0.0.1",
        "::ffff:10.0.0.5",
        "::ffff:169.254.169.254",
        "::ffff:0:127.0.0.1",
        "::127.0.0.1",
        "::8.8.8.8",
        "64:ff9b::7f00:1",
        "64:ff9b::a00:1",
        "64:ff9b:1::808:808",
        "2002:7f00:1::1",
        "2002:a00:1::",
        "2002:c0a8:101::1",
        "2001:0:4136:e378:8000:63bf:3fff:fdd2",  # Teredo: server 65.54.227.120, client 192.0.2.45
        "2001:0:a00:1::ffff:ffff",  # Teredo with private server
        "fc00::1",
        "fd00::1",
        "fdff:ffff::1",
        "fe80::1",
        "fe80::1%eth0",
        "febf::1",
        "fec0::1",
        "feff::1",
        "ff02::1",
        "ff0e::1",
        "2001:db8::1",
        "3fff::1",
        "100::1",
    ],
)
def test_non_public_addresses(address: str) -> None:
    assert is_public_address(ipaddress.ip_address(address)) is False


@pytest.mark.parametrize(
    "address",
    [
        "93.184.216.34",
        "8.8.8.8",
        "1.1.1.1",
        "162.159.128.233",
        "100.63.255.255",  # just below CGNAT
        "100.128.0.0",  # just above CGNAT
        "172.15.255.255",
        "172.32.0.0",
        "198.17.255.255",
        "198.20.0.0",
        "2606:4700::1111",
        "2001:4860:4860::8888",
        "2a00:1450:4001:81c::200e",
        "::ffff:8.8.8.8",
        "::ffff:0:8.8.8.8",
        "64:ff9b::808:808",
        "2002:5db8:d822::1",  # 6to4 of 93.184.216.34
        "2001:0:4136:e378:8000:63bf:a2ff:fffe",  # Teredo: client 93.0.0.1 (obfuscated)
    ],
)
def test_public_addresses(address: str) -> None:
    assert is_public_address(ipaddress.ip_address(address)) is True


# ---------------------------------------------------------------- parse_literal_host


@pytest.mark.parametrize(
    ("host", "expected"),
    [
        ("127.0.0.1", "127.0.0.1"),
        ("2130706433", "127.0.0.1"),
        ("0x7f000001", "127.0.0.1"),
        ("0X7F000001", "127.0.0.1"),
        ("0177.0.0.1", "127.0.0.1"),
        ("0177.0000.0.01", "127.0.0.1"),
        ("127.1", "127.0.0.1"),
        ("127.0.1", "127.0.0.1"),
        ("0x7f.1", "127.0.0.1"),
        ("0x7f.0x0.0x0.0x1", "127.0.0.1"),
        ("017700000001", "127.0.0.1"),
        ("0", ANY_V4),
        ("0x", ANY_V4),
        ("169.254.43518", "169.254.169.254"),
        ("0xa9fea9fe", "169.254.169.254"),
        ("2852039166", "169.254.169.254"),
        ("10.1", "10.0.0.1"),
        ("4294967295", "255.255.255.255"),
        ("93.184.216.34", "93.184.216.34"),
        ("127.0.0.1.", "127.0.0.1"),
        (FULLWIDTH_LOOPBACK, "127.0.0.1"),
        (IDEOGRAPHIC_LOOPBACK, "127.0.0.1"),
        ("[::1]", "::1"),
        ("::1", "::1"),
        ("[::]", "::"),
        ("[::ffff:127.0.0.1]", "::ffff:127.0.0.1"),
        ("[2606:4700::1111]", "2606:4700::1111"),
        ("[FE80::1]", "fe80::1"),
        ("[fe80::1%25eth0]", "fe80::1%eth0"),
    ],
)
def test_parse_literal_host(host: str, expected: str) -> None:
    assert parse_literal_host(host) == ipaddress.ip_address(expected)


@pytest.mark.parametrize(
    "host",
    [
        "example.com",
        "discord.com",
        "localhost",
        "1.2.3.4.5",
        "256.0.0.1",
        "1.256.0.1",
        "1.2.65536",
        "1.16777216",
        "4294967296",
        "08.0.0.1",
        "0x7g.0.0.1",
        "127..1",
        ".127.0.0.1",
        "1e10",
        "-1",
        "+1",
        "0x.example.com",
        "123.example",
        "[not-ipv6]",
        "[1:2:3:4:5:6:7:8:9]",
        "",
        "[]",
    ],
)
def test_parse_literal_host_names_and_junk(host: str) -> None:
    assert parse_literal_host(host) is None


# ------------------------------------------------------------------ check_url_target


@pytest.mark.parametrize("url", PRIVATE_TARGETS + BAD_SCHEME_OR_HOST)
def test_check_url_target_refuses(url: str) -> None:
    with pytest.raises(UnsafeTargetError):
        check_url_target(url, allow_private=False)


@pytest.mark.parametrize("url", ALLOWED_TARGETS)
def test_check_url_target_allows_public(url: str) -> None:
    check_url_target(url, allow_private=False)


@pytest.mark.parametrize("url", PRIVATE_TARGETS + ALLOWED_TARGETS)
def test_check_url_target_allow_private_lets_private_through(url: str) -> None:
    check_url_target(url, allow_private=True)


@pytest.mark.parametrize("url", BAD_SCHEME_OR_HOST)
def test_check_url_target_allow_private_still_refuses_bad_scheme_or_host(url: str) -> None:
    with pytest.raises(UnsafeTargetError):
        check_url_target(url, allow_private=True)


def test_unsafe_target_error_is_a_value_error() -> None:
    assert issubclass(UnsafeTargetError, ValueError)
    with pytest.raises(ValueError):
        check_url_target("ftp://example.com/", allow_private=False)


@pytest.mark.parametrize(
    ("url", "fragment"),
    [
        ("ftp://example.com/", "only http and https"),
        ("http:///nohost", "no host"),
        ("http://10.0.0.1/", "10.0.0.1"),
        ("http://10.0.0.1/", "non-public address"),
        ("http://localhost/", "local host name"),
        ("http://metadata.google.internal/", "metadata.google.internal"),
    ],
)
def test_check_url_target_messages(url: str, fragment: str) -> None:
    with pytest.raises(UnsafeTargetError) as excinfo:
        check_url_target(url, allow_private=False)
    assert fragment in str(excinfo.value)


@pytest.mark.parametrize(
    "url",
    [
        f"http://127.0.0.1/api/webhooks/1/{SECRET}",
        f"http://10.0.0.1/hook?token={SECRET}",
        f"http://localhost/{SECRET}#{SECRET}",
        f"http://user:{SECRET}@169.254.169.254/latest",
        f"ftp://example.com/{SECRET}?k={SECRET}",
        f"gopher://example.com/{SECRET}",
        f"http:///{SECRET}?{SECRET}",
        f"http://[::1/{SECRET}",
        f"http://example.com:{SECRET}/x",
        f"file:///{SECRET}",
    ],
)
def test_check_url_target_message_never_leaks_path_query_or_userinfo(url: str) -> None:
    with pytest.raises(UnsafeTargetError) as excinfo:
        check_url_target(url, allow_private=False)
    assert SECRET not in str(excinfo.value)
    assert SECRET not in repr(excinfo.value)


# ----------------------------------------------------------- check_resolved_addresses


@pytest.mark.parametrize(
    "addresses",
    [
        ["93.184.216.34"],
        ["93.184.216.34", "2606:2800:220:1:248:1893:25c8:1946"],
        ["8.8.8.8", "8.8.4.4", "2001:4860:4860::8888"],
        ["::ffff:8.8.8.8"],
    ],
)
def test_check_resolved_addresses_all_public(addresses: list[str]) -> None:
    check_resolved_addresses("example.com", addresses, allow_private=False)


@pytest.mark.parametrize(
    ("addresses", "culprit"),
    [
        (["10.0.0.5"], "10.0.0.5"),
        (["93.184.216.34", "10.0.0.5"], "10.0.0.5"),
        (["10.0.0.5", "93.184.216.34"], "10.0.0.5"),
        (["8.8.8.8", "2606:4700::1111", "127.0.0.1"], "127.0.0.1"),
        (["93.184.216.34", "::1"], "::1"),
        (["93.184.216.34", "fd12:3456::1"], "fd12:3456::1"),
        (["169.254.169.254"], "169.254.169.254"),
        (["100.64.0.1", "8.8.8.8"], "100.64.0.1"),
        (["::ffff:127.0.0.1"], "::ffff:127.0.0.1"),
        (["fe80::1%eth0"], "fe80::1%eth0"),
        ([ANY_V4], ANY_V4),
    ],
)
def test_check_resolved_addresses_refuses_any_non_public(
    addresses: list[str], culprit: str
) -> None:
    with pytest.raises(UnsafeTargetError) as excinfo:
        check_resolved_addresses("rebind.example", addresses, allow_private=False)
    assert str(excinfo.value) == (
        f"refusing to connect to rebind.example: it resolves to a non-public address ({culprit})"
    )


def test_check_resolved_addresses_message_example() -> None:
    with pytest.raises(UnsafeTargetError, match=r"^refusing to connect to hooks\.example\.com: "):
        check_resolved_addresses(
            "hooks.example.com", ["93.184.216.34", "10.0.0.5"], allow_private=False
        )


@pytest.mark.parametrize("addresses", [[], ["not-an-ip"], ["93.184.216.34", "junk"]])
def test_check_resolved_addresses_fails_closed(addresses: list[str]) -> None:
    with pytest.raises(UnsafeTargetError, match=r"^refusing to connect to example\.com: "):
        check_resolved_addresses("example.com", addresses, allow_private=False)


@pytest.mark.parametrize(
    "addresses",
    [["10.0.0.5"], ["127.0.0.1", "::1"], ["93.184.216.34", "192.168.1.1"], [], ["junk"]],
)
def test_check_resolved_addresses_allow_private(addresses: list[str]) -> None:
    check_resolved_addresses("db.internal", addresses, allow_private=True)


def test_check_resolved_addresses_accepts_tuple_and_ip_objects_as_strings() -> None:
    check_resolved_addresses("example.com", ("8.8.8.8",), allow_private=False)  # type: ignore[arg-type]
    with pytest.raises(UnsafeTargetError):
        check_resolved_addresses(
            "example.com",
            [ipaddress.ip_address("10.0.0.1")],  # type: ignore[list-item]
            allow_private=False,
        )
