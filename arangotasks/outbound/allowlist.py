"""The outbound HTTP allowlist: which (host, port, address) a task may connect to.

Rules (``ARANGOTASKS_HTTP_ALLOW``, comma-separated, or a per-database list in the config file):

* ``host`` (``api.example.com``): that name, any port;
* ``host:port``: that name on that port only;
* ``*.domain`` (``*.example.com``): every name below the domain (not the domain itself), any port;
* ``IP`` or ``CIDR`` (``203.0.113.7``, ``10.1.0.0/16``, ``::1``), optionally ``:port``
  (``127.0.0.1:8080``, ``[::1]:8080``): those addresses, whatever name led to them.

Rules are matched against the address the request will connect to, after DNS resolution. An
address that is not public (loopback, link-local including the cloud metadata address
169.254.169.254, private, shared, reserved, multicast) is refused unless a rule names it by
IP/CIDR or names the host with its port; the server's own listening address:port is refused
unless a rule names that very port.
"""

import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


@dataclass(frozen=True, slots=True)
class Rule:
    """One allowlist entry: a name, a ``*.`` suffix or a network, and maybe a port."""

    text: str
    name: str | None = None  # an exact host name (lower case)
    suffix: str | None = None  # "example.com" for "*.example.com"
    network: IPNetwork | None = None
    port: int | None = None

    def matches(self, host: str, port: int, address: IPAddress) -> bool:
        if self.port is not None and self.port != port:
            return False
        if self.network is not None:
            return address in self.network
        if self.name is not None:
            return host == self.name
        assert self.suffix is not None
        return host.endswith("." + self.suffix)

    @property
    def names_addresses(self) -> bool:
        """Whether the rule is explicit enough to reach a non-public address."""
        return self.network is not None or self.port is not None


def _port(text: str, rule: str) -> int:
    if not text.isdigit() or not 0 < int(text) < 65536:
        raise ValueError(f"allowlist rule {rule!r}: bad port {text!r}")
    return int(text)


def parse_rule(text: str) -> Rule:
    """A rule from its text; :class:`ValueError` naming the rule when it is not one."""
    rule = text.strip()
    if not rule:
        raise ValueError("empty allowlist rule")
    body, port = rule, None
    if body.startswith("["):  # [v6]:port
        end = body.find("]")
        if end < 0:
            raise ValueError(f"allowlist rule {rule!r}: missing ']'")
        rest = body[end + 1 :]
        if rest and not rest.startswith(":"):
            raise ValueError(f"allowlist rule {rule!r}: expected ':port' after ']'")
        port = _port(rest[1:], rule) if rest else None
        body = body[1:end]
    elif body.count(":") == 1:  # host:port or v4:port (a bare v6 address has several colons)
        body, _, port_text = body.partition(":")
        port = _port(port_text, rule)
    try:
        return Rule(rule, network=ipaddress.ip_network(body, strict=False), port=port)
    except ValueError:
        pass
    name = body.lower().rstrip(".")
    if name.startswith("*."):
        suffix = name[2:]
        if not _is_hostname(suffix):
            raise ValueError(f"allowlist rule {rule!r}: bad domain")
        return Rule(rule, suffix=suffix, port=port)
    if not _is_hostname(name):
        raise ValueError(f"allowlist rule {rule!r}: not a host, host:port, *.domain or IP/CIDR")
    return Rule(rule, name=name, port=port)


def _is_hostname(name: str) -> bool:
    labels = name.split(".")
    return bool(name) and all(
        0 < len(label) <= 63 and label.replace("-", "").replace("_", "").isalnum()
        for label in labels
    )


def public(address: IPAddress) -> bool:
    """Whether an address is on the public internet (not loopback, private, link-local, ...)."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return address.is_global and not address.is_multicast


def normal_address(address: IPAddress) -> IPAddress:
    """An IPv4-mapped IPv6 address as its IPv4 address (rules are written for the latter)."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


class Allowlist:
    """Parsed rules plus the server's own addresses, answering :meth:`refusal`.

    :param source: what the rules came from, named in refusals (``ARANGOTASKS_HTTP_ALLOW``).
    :param own: the server's listening (address, port) pairs; an unspecified address (0.0.0.0,
        ::) stands for every non-public address.
    """

    def __init__(
        self, rules: Iterable[str], source: str, own: Iterable[tuple[str, int]] = ()
    ) -> None:
        self.rules = [parse_rule(rule) for rule in rules]
        self.source = source
        self._own: list[tuple[IPAddress | None, int]] = []
        for host, port in own:
            try:
                address = ipaddress.ip_address(host)
            except ValueError:
                address = None  # a name: checked as "any non-public address"
            if address is not None and address.is_unspecified:
                address = None
            self._own.append((address, port))

    @classmethod
    def from_text(cls, text: str, source: str, own: Iterable[tuple[str, int]] = ()) -> "Allowlist":
        return cls([part for part in text.split(",") if part.strip()], source, own)

    def _is_own(self, port: int, address: IPAddress) -> bool:
        for own_address, own_port in self._own:
            if own_port != port:
                continue
            if own_address is None:
                if not public(address):
                    return True
            elif own_address == address:
                return True
        return False

    def refusal(self, host: str, port: int, address: IPAddress) -> str | None:
        """``None`` when a request to ``host`` may connect to ``address:port``, else why not.

        :param host: the URL's host, lower case (an IP literal for a URL naming an address).
        """
        if not self.rules:
            return f"outbound HTTP is off ({self.source} is empty)"
        address = normal_address(address)
        matching = [rule for rule in self.rules if rule.matches(host, port, address)]
        if not matching:
            return f"not allowed by {self.source}"
        if self._is_own(port, address):
            if any(rule.port == port for rule in matching):
                return None
            return (
                f"{_show(address)}:{port} is this server's own address "
                f"(allowed only when {self.source} names it with its port)"
            )
        if not public(address) and not any(rule.names_addresses for rule in matching):
            return (
                f"{_show(address)} is not a public address (allowed only when {self.source} "
                "names it by IP/CIDR or host:port)"
            )
        return None


def _show(address: IPAddress) -> str:
    return f"[{address}]" if address.version == 6 else str(address)
