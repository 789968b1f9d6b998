"""The outbound allowlist's rules, one test per rule form (addresses given, as after DNS
resolution)."""

import ipaddress

import pytest

from arangotasks.outbound.allowlist import Allowlist, parse_rule

PUBLIC = ipaddress.ip_address("93.184.215.14")
OTHER_PUBLIC = ipaddress.ip_address("203.0.114.1")  # not TEST-NET: global


def refusal(rules: str, host: str, port: int, address: str) -> str | None:
    return Allowlist.from_text(rules, "ARANGOTASKS_HTTP_ALLOW", [("127.0.0.1", 8529)]).refusal(
        host, port, ipaddress.ip_address(address)
    )


def test_empty_means_no_outbound_http_and_names_the_setting():
    assert refusal("", "example.com", 443, str(PUBLIC)) == (
        "outbound HTTP is off (ARANGOTASKS_HTTP_ALLOW is empty)"
    )


def test_a_host_rule_allows_that_name_on_any_port_and_nothing_else():
    assert refusal("example.com", "example.com", 8443, str(PUBLIC)) is None
    assert refusal("example.com", "www.example.com", 443, str(PUBLIC)) is not None
    assert refusal("Example.COM.", "example.com", 443, str(PUBLIC)) is None


def test_a_host_port_rule_allows_that_port_only():
    assert refusal("example.com:8080", "example.com", 8080, str(PUBLIC)) is None
    assert refusal("example.com:8080", "example.com", 80, str(PUBLIC)) is not None


def test_a_wildcard_rule_allows_names_below_the_domain():
    assert refusal("*.example.com", "api.example.com", 443, str(PUBLIC)) is None
    assert refusal("*.example.com", "a.b.example.com", 443, str(PUBLIC)) is None
    assert refusal("*.example.com", "example.com", 443, str(PUBLIC)) is not None
    assert refusal("*.example.com", "badexample.com", 443, str(PUBLIC)) is not None


def test_an_ip_rule_allows_that_address_whatever_the_name():
    assert refusal(str(PUBLIC), "anything.test", 80, str(PUBLIC)) is None
    assert refusal(str(PUBLIC), "anything.test", 80, str(OTHER_PUBLIC)) is not None


def test_a_cidr_rule_allows_its_network():
    assert refusal("10.1.0.0/16", "db.internal", 80, "10.1.2.3") is None
    assert refusal("10.1.0.0/16", "db.internal", 80, "10.2.0.1") is not None


def test_an_ip_port_rule_and_ipv6():
    assert refusal("127.0.0.1:9000", "127.0.0.1", 9000, "127.0.0.1") is None
    assert refusal("127.0.0.1:9000", "127.0.0.1", 9001, "127.0.0.1") is not None
    assert refusal("[::1]:9000", "::1", 9000, "::1") is None
    assert refusal("::1", "::1", 9000, "::1") is None
    assert refusal("2001:db8::/32", "x.test", 80, "2001:db8::5") is None


@pytest.mark.parametrize(
    "address",
    [
        "127.0.0.1",
        "10.0.0.8",
        "192.168.1.1",
        "172.16.0.1",
        "169.254.169.254",
        "::1",
        "fe80::1",
        "fd00::1",
        "100.64.0.1",
        "0.0.0.0",
        "::ffff:127.0.0.1",
        "224.0.0.1",
    ],
)
def test_a_name_rule_does_not_reach_non_public_addresses(address):
    reason = refusal("internal.example.com, *.example.com", "internal.example.com", 80, address)
    assert reason is not None and "is not a public address" in reason


def test_a_name_with_its_port_or_an_ip_rule_reaches_a_private_address():
    assert refusal("db.example.com:5984", "db.example.com", 5984, "10.0.0.8") is None
    assert refusal("10.0.0.0/8", "db.example.com", 5984, "10.0.0.8") is None


def test_the_servers_own_port_needs_that_port_named():
    reason = refusal("127.0.0.0/8", "127.0.0.1", 8529, "127.0.0.1")
    assert reason is not None and "this server's own address" in reason
    assert refusal("127.0.0.1:8529", "127.0.0.1", 8529, "127.0.0.1") is None
    # An unspecified listening address stands for every local one.
    wide = Allowlist.from_text("10.0.0.0/8", "X", [("0.0.0.0", 8529)])
    assert wide.refusal("h", 8529, ipaddress.ip_address("10.0.0.1")) is not None


@pytest.mark.parametrize("rule", ["", "a b", "example.com:0", "example.com:x", "[::1", "*.", "-:"])
def test_bad_rules_are_refused_with_their_text(rule):
    with pytest.raises(ValueError):
        parse_rule(rule)
