"""Which hosts webhook deliveries may reach (`amps-sim serve --webhook-allow`).

A shared sandbox must not become a way to make requests into its own host or network, so a URL
is checked when it is registered: by name against host entries, and by every address the name
resolves to against network entries. Entries:

- `*`: anything;
- `loopback`, `private`, `public`: address classes (127.0.0.0/8 and ::1; RFC 1918, unique-local
  and link-local; globally routable);
- an address or a network in CIDR form: `10.1.2.0/24`, `203.0.113.7`, `fd00::/8`;
- a host name, exact (`hooks.example.com`) or a domain with everything under it (`.example.com`).
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass, field

IpAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IpNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
ADDRESS_CLASSES = ("loopback", "private", "public")
# A developer's machine: receivers on this machine or the local network, nothing on the internet.
DEFAULT_ALLOW = "loopback,private"
_HOST_NAME = re.compile(r"[a-z0-9_]([a-z0-9_-]*[a-z0-9])?(\.[a-z0-9_]([a-z0-9_-]*[a-z0-9])?)*\.?", re.ASCII)


def _in_class(address: IpAddress, name: str) -> bool:
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    if name == "loopback":
        return address.is_loopback
    if name == "private":
        return (address.is_private or address.is_link_local) and not address.is_loopback
    return address.is_global


@dataclass(frozen=True)
class AllowList:
    anything: bool = False
    classes: frozenset[str] = frozenset()
    networks: tuple[IpNetwork, ...] = ()
    hosts: frozenset[str] = frozenset()
    domains: tuple[str, ...] = field(default=())

    @classmethod
    def parse(cls, text: str) -> "AllowList":
        """From a comma-separated list; ValueError names the entry that is not one."""
        anything, classes, networks, hosts, domains = False, set(), [], set(), []
        for raw in text.split(","):
            entry = raw.strip().lower()
            if not entry:
                continue
            if entry == "*":
                anything = True
            elif entry in ADDRESS_CLASSES:
                classes.add(entry)
            elif entry.startswith((".", "*.")):
                domains.append("." + entry.lstrip("*."))
            else:
                try:
                    networks.append(ipaddress.ip_network(entry, strict=False))
                    continue
                except ValueError:
                    pass
                if not _HOST_NAME.fullmatch(entry):
                    raise ValueError(f"{raw.strip()!r} is not a host, domain, address, network or one of *, {', '.join(ADDRESS_CLASSES)}")
                hosts.add(entry)
        return cls(anything, frozenset(classes), tuple(networks), frozenset(hosts), tuple(domains))

    def needs_addresses(self, host: str) -> bool:
        """Whether deciding on `host` needs its resolved addresses (it is not allowed by name)."""
        return not (self.anything or self._named(host))

    def refusal(self, host: str, addresses: list[IpAddress]) -> str | None:
        """Why `host` (resolving to `addresses`) may not receive deliveries; None if it may."""
        if not self.needs_addresses(host):
            return None
        if not addresses:
            return f"the host {host!r} does not resolve to any address"
        for address in addresses:
            if not self._address_allowed(address):
                return (
                    f"{host} resolves to {address}, which the server's webhook allow-list does not include "
                    f"({self.describe()}); an operator sets it with `amps-sim serve --webhook-allow`"
                )
        return None

    def describe(self) -> str:
        parts = (["*"] if self.anything else []) + sorted(self.classes) + [str(n) for n in self.networks]
        parts += sorted(self.hosts) + list(self.domains)
        return ",".join(parts) or "nothing"

    def _named(self, host: str) -> bool:
        name = host.lower().rstrip(".")
        return name in self.hosts or any(name.endswith(d) for d in self.domains)

    def _address_allowed(self, address: IpAddress) -> bool:
        if any(_in_class(address, name) for name in self.classes):
            return True
        return any(address in network for network in self.networks if network.version == address.version)
