"""Which addresses a webhook may reach: the rule both registration (intake) and every
connection (notification) apply."""

from __future__ import annotations

import ipaddress

import pytest

from sanalpos_common.net import address_refusal, host_refusal, webhook_url_refusal

BLOCKED = [
    "127.0.0.1",
    "127.255.0.9",
    "10.0.0.1",
    "172.16.5.4",
    "192.168.0.1",
    "169.254.169.254",  # cloud metadata
    "100.64.0.1",  # CGNAT
    "100.100.100.200",  # a cloud's metadata, inside CGNAT
    "0.0.0.0",
    "0.1.2.3",
    "224.0.0.251",  # multicast
    "240.0.0.1",  # reserved
    "255.255.255.255",
    "198.18.0.1",  # benchmarking
    "192.0.0.8",
    "::1",
    "::",
    "fe80::1",
    "fc00::1",
    "fd00:ec2::254",  # AWS metadata over IPv6
    "ff02::1",
    "::ffff:127.0.0.1",  # IPv4-mapped loopback
    "::ffff:169.254.169.254",
    "::ffff:10.0.0.1",
    "64:ff9b::a9fe:a9fe",  # NAT64 of 169.254.169.254
    "2002:a00:1::",  # 6to4 of 10.0.0.1
    "2001:db8::1",
]
PUBLIC = ["93.184.216.34", "8.8.8.8", "1.1.1.1", "2606:4700:4700::1111", "::ffff:8.8.8.8"]


@pytest.mark.parametrize("address", BLOCKED)
def test_non_public_addresses_are_refused(address: str) -> None:
    assert address_refusal(ipaddress.ip_address(address)) is not None


@pytest.mark.parametrize("address", PUBLIC)
def test_public_addresses_are_allowed(address: str) -> None:
    assert address_refusal(ipaddress.ip_address(address)) is None


def test_loopback_only_with_the_development_switch() -> None:
    for text in ("127.0.0.1", "::1", "::ffff:127.0.0.1"):
        assert address_refusal(ipaddress.ip_address(text), allow_loopback=True) is None
    for text in ("10.0.0.1", "169.254.169.254", "::ffff:192.168.1.1"):
        assert address_refusal(ipaddress.ip_address(text), allow_loopback=True) is not None


@pytest.mark.parametrize(
    "host",
    [
        "localhost",
        "LOCALHOST.",
        "api.localhost",
        "metadata",
        "db.internal",
        "nas.local",
        "router.home.arpa",
        "2130706433",
        "0x7f.1",
        "127.1",
        "017700000001",
        "10.0.0.1.",
        "[::1]",
        "example.123",
    ],
)
def test_hosts_that_cannot_be_public_are_refused_without_resolving(host: str) -> None:
    assert host_refusal(host) is not None


def test_public_names_and_loopback_names_in_development() -> None:
    assert host_refusal("shop.example") is None
    assert host_refusal("hooks.shop.example.com.") is None
    assert host_refusal("localhost", allow_loopback=True) is None
    assert host_refusal("127.0.0.1", allow_loopback=True) is None
    assert host_refusal("10.0.0.1", allow_loopback=True) is not None


def test_url_rules() -> None:
    assert webhook_url_refusal("https://shop.example/h") is None
    assert webhook_url_refusal("http://shop.example:8080/h") is None
    assert webhook_url_refusal("http://shop.example/h", allow_http=False) is not None
    assert webhook_url_refusal("ftp://shop.example/h") is not None
    assert webhook_url_refusal("https://user:pw@shop.example/h") is not None
    assert webhook_url_refusal("https://user@shop.example/h") is not None
    assert webhook_url_refusal("https:///h") is not None
    assert webhook_url_refusal("https://shop.example:99999/h") is not None
    assert webhook_url_refusal("http://[::ffff:169.254.169.254]/") is not None
    assert webhook_url_refusal("http://127.0.0.1:9000/h", allow_loopback=True) is None
