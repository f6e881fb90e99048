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

``ray`` attaches a Ray cluster that someone else runs (``ray start``, KubeRay, Ray's
own cluster launcher): Lapis starts and stops no node, it submits jobs to the
cluster's job API and reads its nodes::

    provider:
      type: ray
      address: http://10.0.0.5:8265   # the cluster's dashboard / job API
      token_file: ~/.ray/auth_token   # read by the lapis CLI, sent as ``token``

The token (for a cluster started with ``RAY_AUTH_MODE=token``) is read on the
client: the server never opens a file a request names, and never returns the token.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from typing import Any

from lapis.specs.yaml_lines import Located, suggest

KEYS = {"type", "head_address", "hosts", "user", "identity_file", "ray"}
ATTACHED_KEYS = {"type", "address", "token"}


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
        raise loc.error(("provider",), "must be a mapping with a type (local, ssh or ray)")
    kind = str(value.get("type") or "local").lower()
    if kind == "local":
        extra = set(value) - {"type"}
        if extra:
            raise loc.error(
                ("provider", sorted(extra)[0]), "is not a setting of the local provider"
            )
        return None
    if kind == "ray":
        return _attached(loc, value)
    if kind != "ssh":
        kinds = {"local", "ssh", "ray"}
        raise loc.error(("provider", "type"), f"must be local, ssh or ray{suggest(kind, kinds)}")
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


def _attached(loc: Located, value: Mapping[str, Any]) -> dict[str, Any]:
    if "token_file" in value:
        raise loc.error(
            ("provider", "token_file"),
            "is read by the lapis CLI, which sends the token itself; through the API or "
            "the SDK, send the token as provider.token",
        )
    for key in value:
        if key not in ATTACHED_KEYS:
            raise loc.error(
                ("provider", str(key)),
                f"is not a setting of an attached Ray cluster{suggest(str(key), ATTACHED_KEYS)}",
            )
    address = value.get("address")
    if not isinstance(address, str) or not address.strip() or any(c.isspace() for c in address):
        raise loc.error(
            ("provider", "address"),
            "must be the Ray cluster's dashboard address, e.g. http://10.0.0.5:8265",
        )
    if "://" not in address:
        address = f"http://{address}"
    if not address.startswith(("http://", "https://")):
        raise loc.error(("provider", "address"), "must be an http:// or https:// address")
    out: dict[str, Any] = {"type": "ray", "address": address.rstrip("/")}
    token = value.get("token")
    if token is not None:
        if not isinstance(token, str) or not token.strip():
            raise loc.error(("provider", "token"), "must be a non-empty string")
        out["token"] = token.strip()
    return out
