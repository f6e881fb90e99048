"""``provider:`` of a compute cluster (a Lapis key; Azure's clusters have no such choice).

``local`` (the default) runs every node as a process on the server's host. ``ssh``
runs one worker node on each of a list of hosts, started over SSH, for a team with
a few machines::

    provider:
      type: ssh
      head_address: 10.0.0.1          # where the nodes reach the head (this host)
      hosts: [10.0.0.11, 10.0.0.12]   # one node per host: max_instances <= len(hosts)
      user: lapis                     # default: ssh's own (this user)
      identity_file: /etc/lapis/id_ed25519   # default: ssh's own
      ray: /opt/lapis/.venv/bin/ray   # default: the same path as on this host

The hosts need Ray and Lapis at the same version and the workspace home on a
shared filesystem at the same path (job folders are read and written there);
docs/compute.md says how.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from typing import Any

from lapis.specs.yaml_lines import Located, suggest

KEYS = {"type", "head_address", "hosts", "user", "identity_file", "ray"}


def _address(loc: Located, key: tuple[str, ...], value: Any) -> str:
    if not isinstance(value, str) or not value.strip() or any(c.isspace() for c in value):
        raise loc.error(key, f"must be a host name or address, got {value!r}")
    try:
        if ipaddress.ip_address(value).is_loopback:
            raise loc.error(key, "must be reachable from the other hosts, not loopback")
    except ValueError:
        pass  # a host name
    return value


def parse_provider(loc: Located, value: Any) -> dict[str, Any] | None:
    if value is None:
        return None
    if not isinstance(value, Mapping):
        raise loc.error(("provider",), "must be a mapping with a type (local or ssh)")
    kind = str(value.get("type") or "local").lower()
    if kind == "local":
        extra = set(value) - {"type"}
        if extra:
            raise loc.error(
                ("provider", sorted(extra)[0]), "is not a setting of the local provider"
            )
        return None
    if kind != "ssh":
        raise loc.error(
            ("provider", "type"), f"must be local or ssh{suggest(kind, {'local', 'ssh'})}"
        )
    for key in value:
        if key not in KEYS:
            raise loc.error(
                ("provider", str(key)),
                f"is not a setting of the ssh provider{suggest(str(key), KEYS)}",
            )
    hosts = value.get("hosts")
    if not isinstance(hosts, list) or not hosts:
        raise loc.error(("provider", "hosts"), "must list at least one host")
    out: dict[str, Any] = {
        "type": "ssh",
        "head_address": _address(loc, ("provider", "head_address"), value.get("head_address")),
        "hosts": [_address(loc, ("provider", "hosts"), h) for h in hosts],
    }
    if len(set(out["hosts"])) != len(out["hosts"]):
        raise loc.error(("provider", "hosts"), "lists a host twice (one node per host)")
    for key in ("user", "identity_file", "ray"):
        if value.get(key) is not None:
            if not isinstance(value[key], str) or not value[key].strip():
                raise loc.error(("provider", key), "must be a non-empty string")
            out[key] = value[key]
    return out
