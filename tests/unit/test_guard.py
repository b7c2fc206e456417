"""Unit tests for app.delivery.guard (pure functions, no DNS, no network)."""

from __future__ import annotations

import ipaddress

import pytest

from app.delivery.guard import (
    ALL_PRIVATE,
    ANY_TARGET,
    PUBLIC_ONLY,
    SETTING,
    PrivateTargets,
    UnsafeTargetError,
    check_resolved_addresses,
    check_url_target,
    is_public_address,
    parse_literal_host,
    parse_private_targets,
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
        ("http://10.0.0.1/", "; set ALLOW_PRIVATE_WEBHOOK_TARGETS to allow it"),
        ("http://localhost/", "local host name"),
        ("http://localhost/", "; set ALLOW_PRIVATE_WEBHOOK_TARGETS to allow it"),
        ("http://metadata.google.internal/", "metadata.google.internal"),
        ("http://169.254.169.254/", "cloud metadata address"),
        ("http://169.254.169.254/", "only listing it in ALLOW_PRIVATE_WEBHOOK_TARGETS"),
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
        f"refusing to connect to rebind.example: it resolves to a non-public address ({culprit}); "
        "set ALLOW_PRIVATE_WEBHOOK_TARGETS to allow it"
    )


def test_check_resolved_addresses_names_a_metadata_address() -> None:
    with pytest.raises(UnsafeTargetError) as excinfo:
        check_resolved_addresses("rebind.example", ["169.254.169.254"], allow_private=False)
    assert str(excinfo.value) == (
        "refusing to connect to rebind.example: it resolves to a cloud metadata address "
        "(169.254.169.254); only listing it in ALLOW_PRIVATE_WEBHOOK_TARGETS allows it"
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
    [["10.0.0.5"], ["127.0.0.1", "::1"], ["93.184.216.34", "192.168.1.1"], ["169.254.169.254"]],
)
def test_check_resolved_addresses_allow_private(addresses: list[str]) -> None:
    check_resolved_addresses("db.internal", addresses, allow_private=True)


@pytest.mark.parametrize("allow_private", [True, ALL_PRIVATE])
@pytest.mark.parametrize("addresses", [[], ["junk"], ["10.0.0.5", "junk"]])
def test_check_resolved_addresses_fails_closed_whatever_is_allowed(
    addresses: list[str], allow_private: PrivateTargets | bool
) -> None:
    with pytest.raises(UnsafeTargetError, match=r"^refusing to connect to db\.internal: "):
        check_resolved_addresses("db.internal", addresses, allow_private=allow_private)


def test_check_resolved_addresses_accepts_tuple_and_ip_objects_as_strings() -> None:
    check_resolved_addresses("example.com", ("8.8.8.8",), allow_private=False)  # type: ignore[arg-type]
    with pytest.raises(UnsafeTargetError):
        check_resolved_addresses(
            "example.com",
            [ipaddress.ip_address("10.0.0.1")],  # type: ignore[list-item]
            allow_private=False,
        )


# ------------------------------------------------------------- the private-target policy

OK, NO = True, False
# The policies of the table below, in its column order: the setting's value.
TABLE_SETTINGS = [
    "false",
    "true",
    "127.0.0.1/32",
    "10.0.0.0/8,relay.internal",
    "169.254.169.254,fd00:ec2::254/128,100.100.100.200/32,metadata.google.internal",
    "169.254.0.0/16,fd00::/8,100.64.0.0/10",  # wide networks do not open metadata endpoints
]

# The host of a URL (each bypass spelling of FIELD_NOTES), then whether saving it is allowed
# under each policy of TABLE_SETTINGS.
SAVE_TABLE = [
    ("2130706433", [NO, OK, OK, NO, NO, NO]),
    ("0x7f.1", [NO, OK, OK, NO, NO, NO]),
    ("127.1", [NO, OK, OK, NO, NO, NO]),
    ("[::ffff:127.0.0.1]", [NO, OK, OK, NO, NO, NO]),
    ("[64:ff9b::7f00:1]", [NO, OK, OK, NO, NO, NO]),
    ("127.0.0.2", [NO, OK, NO, NO, NO, NO]),
    ("[::1]", [NO, OK, NO, NO, NO, NO]),
    ("[::]", [NO, OK, NO, NO, NO, NO]),
    (ANY_V4, [NO, OK, NO, NO, NO, NO]),
    ("0", [NO, OK, NO, NO, NO, NO]),
    ("100.64.0.1", [NO, OK, NO, NO, NO, OK]),
    ("10.1.2.3", [NO, OK, NO, OK, NO, NO]),
    ("012.1.2.3", [NO, OK, NO, OK, NO, NO]),
    ("[fd00::1]", [NO, OK, NO, NO, NO, OK]),
    ("169.254.1.1", [NO, OK, NO, NO, NO, OK]),
    ("8.8.8.8", [OK, OK, OK, OK, OK, OK]),
    ("[::ffff:8.8.8.8]", [OK, OK, OK, OK, OK, OK]),
    ("hooks.example.com", [OK, OK, OK, OK, OK, OK]),
    ("169.254.169.254", [NO, NO, NO, NO, OK, NO]),
    ("2852039166", [NO, NO, NO, NO, OK, NO]),
    ("0xa9fea9fe", [NO, NO, NO, NO, OK, NO]),
    ("0251.0376.0251.0376", [NO, NO, NO, NO, OK, NO]),
    ("169.254.43518", [NO, NO, NO, NO, OK, NO]),
    ("[::ffff:169.254.169.254]", [NO, NO, NO, NO, OK, NO]),
    ("[::ffff:a9fe:a9fe]", [NO, NO, NO, NO, OK, NO]),
    ("[64:ff9b::a9fe:a9fe]", [NO, NO, NO, NO, OK, NO]),
    ("[2002:a9fe:a9fe::]", [NO, NO, NO, NO, OK, NO]),
    ("[fd00:ec2::254]", [NO, NO, NO, NO, OK, NO]),
    ("[FD00:0EC2:0:0::254]", [NO, NO, NO, NO, OK, NO]),
    ("100.100.100.200", [NO, NO, NO, NO, OK, NO]),
    ("1684301000", [NO, NO, NO, NO, OK, NO]),
    ("metadata.google.internal", [NO, NO, NO, NO, OK, NO]),
    ("METADATA.Google.Internal.", [NO, NO, NO, NO, OK, NO]),
    # Names are judged by what they resolve to when the connection is made, so a policy that
    # allows some private network lets local names be saved.
    ("localhost", [NO, OK, OK, OK, OK, OK]),
    ("relay.internal", [NO, OK, OK, OK, OK, OK]),
]


def _table_cases(table: list) -> list:
    return [
        pytest.param(subject, setting, allowed, id=f"{subject}-under-{setting}")
        for subject, row in table
        for setting, allowed in zip(TABLE_SETTINGS, row, strict=True)
    ]


@pytest.mark.parametrize(("host", "setting", "allowed"), _table_cases(SAVE_TABLE))
def test_saving_under_each_policy(host: str, setting: str, allowed: bool) -> None:
    url = f"http://{host}:8080/api/webhooks/1/{SECRET}?token={SECRET}"
    policy = parse_private_targets(setting)
    if allowed:
        check_url_target(url, allow_private=policy)
        return
    with pytest.raises(UnsafeTargetError) as excinfo:
        check_url_target(url, allow_private=policy)
    message = str(excinfo.value)
    assert SETTING in message
    assert SECRET not in message
    assert "/api/webhooks" not in message


# What a name resolved to when connecting, then whether connecting is allowed under each policy.
CONNECT_TABLE = [
    (("127.0.0.1",), [NO, OK, OK, NO, NO, NO]),
    (("::ffff:127.0.0.1",), [NO, OK, OK, NO, NO, NO]),
    (("::1",), [NO, OK, NO, NO, NO, NO]),
    (("::",), [NO, OK, NO, NO, NO, NO]),
    ((ANY_V4,), [NO, OK, NO, NO, NO, NO]),
    (("10.0.0.5",), [NO, OK, NO, OK, NO, NO]),
    (("8.8.8.8", "10.0.0.5"), [NO, OK, NO, OK, NO, NO]),
    (("127.0.0.1", "10.0.0.5"), [NO, OK, NO, NO, NO, NO]),
    (("100.64.0.1",), [NO, OK, NO, NO, NO, OK]),
    (("8.8.8.8", "2606:4700::1111"), [OK, OK, OK, OK, OK, OK]),
    (("169.254.169.254",), [NO, NO, NO, NO, OK, NO]),
    (("8.8.8.8", "169.254.169.254"), [NO, NO, NO, NO, OK, NO]),
    (("::ffff:169.254.169.254",), [NO, NO, NO, NO, OK, NO]),
    (("fd00:ec2::254",), [NO, NO, NO, NO, OK, NO]),
    (("100.100.100.200",), [NO, NO, NO, NO, OK, NO]),
]


@pytest.mark.parametrize(("addresses", "setting", "allowed"), _table_cases(CONNECT_TABLE))
def test_connecting_under_each_policy(
    addresses: tuple[str, ...], setting: str, allowed: bool
) -> None:
    policy = parse_private_targets(setting)
    if allowed:
        check_resolved_addresses("hooks.example", list(addresses), allow_private=policy)
        return
    with pytest.raises(UnsafeTargetError, match=SETTING):
        check_resolved_addresses("hooks.example", list(addresses), allow_private=policy)


@pytest.mark.parametrize("host", ["relay.internal", "RELAY.Internal", "relay.internal."])
@pytest.mark.parametrize("addresses", [["10.9.8.7"], ["127.0.0.1"], ["169.254.169.254"], []])
def test_a_listed_name_is_allowed_whatever_it_resolves_to(host: str, addresses: list[str]):
    policy = parse_private_targets("10.0.0.0/8,relay.internal")
    check_url_target(f"http://{host}/hook", allow_private=policy)
    check_resolved_addresses(host, addresses, allow_private=policy)


def test_a_name_not_listed_is_judged_by_its_addresses() -> None:
    policy = parse_private_targets("10.0.0.0/8,relay.internal")
    check_resolved_addresses("db.internal", ["10.9.8.7"], allow_private=policy)
    with pytest.raises(UnsafeTargetError) as excinfo:
        check_resolved_addresses("localhost", ["127.0.0.1"], allow_private=policy)
    assert str(excinfo.value) == (
        "refusing to connect to localhost: it resolves to a non-public address (127.0.0.1); "
        "add it to ALLOW_PRIVATE_WEBHOOK_TARGETS to allow it"
    )


def test_a_list_of_names_only_still_refuses_other_local_names_when_saved() -> None:
    policy = parse_private_targets("relay.internal")
    check_url_target("http://relay.internal/", allow_private=policy)
    with pytest.raises(UnsafeTargetError, match="local host name; add it to ALLOW_PRIVATE"):
        check_url_target("http://db.internal/", allow_private=policy)


@pytest.mark.parametrize("setting", ["true", "169.254.169.254", "0.0.0.0/0,::/0"])
def test_the_metadata_name_is_refused_when_connecting_unless_listed(setting: str) -> None:
    with pytest.raises(UnsafeTargetError, match="cloud metadata host name"):
        check_resolved_addresses(
            "metadata.google.internal", ["8.8.8.8"], allow_private=parse_private_targets(setting)
        )
    listed = parse_private_targets("metadata.google.internal")
    check_resolved_addresses("metadata.google.internal", ["169.254.169.254"], allow_private=listed)


def test_a_bool_is_the_older_form_of_the_policy() -> None:
    assert PrivateTargets.of(False) is PUBLIC_ONLY
    assert PrivateTargets.of(True) is ANY_TARGET  # no limit at all: a check of the form only
    assert PrivateTargets.of(ALL_PRIVATE) is ALL_PRIVATE
    for url in (
        "http://169.254.169.254/",
        "http://[fd00:ec2::254]/",
        "http://metadata.google.internal/",
    ):
        check_url_target(url, allow_private=True)
    check_resolved_addresses("metadata.google.internal", ["169.254.169.254"], allow_private=True)


# ------------------------------------------------------------- parsing the setting


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (False, PUBLIC_ONLY),
        (True, ALL_PRIVATE),
        ("false", PUBLIC_ONLY),
        ("  FALSE ", PUBLIC_ONLY),
        ("0", PUBLIC_ONLY),
        ("no", PUBLIC_ONLY),
        ("", PUBLIC_ONLY),
        ("true", ALL_PRIVATE),
        ("True", ALL_PRIVATE),
        ("1", ALL_PRIVATE),
        ("yes", ALL_PRIVATE),
        (
            "127.0.0.1/32, 10.0.0.0/8 ,fd00::/8,Relay.Internal.",
            PrivateTargets(
                networks=(
                    ipaddress.ip_network("127.0.0.1/32"),
                    ipaddress.ip_network("10.0.0.0/8"),
                    ipaddress.ip_network("fd00::/8"),
                ),
                hosts=frozenset({"relay.internal"}),
            ),
        ),
        (
            "192.168.1.20,FD00::1,,",
            PrivateTargets(
                networks=(
                    ipaddress.ip_network("192.168.1.20/32"),
                    ipaddress.ip_network("fd00::1/128"),
                )
            ),
        ),
        (
            "hooks_relay,my-relay.corp",
            PrivateTargets(hosts=frozenset({"hooks_relay", "my-relay.corp"})),
        ),
    ],
)
def test_parse_private_targets(value: bool | str, expected: PrivateTargets) -> None:
    assert parse_private_targets(value) == expected


@pytest.mark.parametrize(
    ("value", "culprit"),
    [
        ("10.0.0.0/33", "'10.0.0.0/33'"),
        ("10.0.0.1/8", "has host bits set"),
        ("10.0.0.0/8,300.1.2.3", "'300.1.2.3'"),
        ("2130706433", "'2130706433'"),
        ("0x7f.1", "'0x7f.1'"),
        ("127.1", "'127.1'"),
        ("fd00::/129", "'fd00::/129'"),
        ("[::1]", "'[::1]'"),
        ("*.internal", "no wildcards"),
        ("relay..internal", "'relay..internal'"),
        ("-relay.internal", "'-relay.internal'"),
        ("relay internal", "'relay internal'"),
        ("relay\n.internal", "no wildcards"),
        ("http://relay.internal/", "'http://relay.internal/'"),
        ("true,10.0.0.0/8", "'true' cannot be part of a list"),
        ("10.0.0.0/8;192.168.0.0/16", "'10.0.0.0/8;192.168.0.0/16'"),
        ("r\u00e9lay.internal", "exact ASCII names"),
    ],
)
def test_parse_private_targets_refuses_malformed_values(value: str, culprit: str) -> None:
    with pytest.raises(ValueError) as excinfo:
        parse_private_targets(value)
    assert str(excinfo.value).startswith("ALLOW_PRIVATE_WEBHOOK_TARGETS")
    assert culprit in str(excinfo.value)


def test_parse_private_targets_refuses_other_types() -> None:
    with pytest.raises(ValueError, match=r"^ALLOW_PRIVATE_WEBHOOK_TARGETS must be"):
        parse_private_targets(1.5)  # type: ignore[arg-type]
