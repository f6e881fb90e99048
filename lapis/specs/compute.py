"""Compute YAML in Azure ML CLI v2's shape, checked with file:line messages.

A file written for ``az ml compute create -f`` loads here when it describes a
``computeinstance``: the same keys, the same ``idle_time_before_shutdown``
forms and the same ``schedules.compute_start_stop`` entries. Keys Lapis does
not implement are refused by name rather than silently ignored, because an
instance that quietly lacks a setting the user asked for is worse than an
error. The same parser serves ``update`` with ``partial=True``: only the keys
present are changed.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from lapis.entities.compute import ComputeType
from lapis.entities.sizes import get_size
from lapis.errors import InvalidParameterValue, ResourceDoesNotExist
from lapis.specs.kinds import COMPUTES
from lapis.specs.names import validate_compute_name
from lapis.specs.node_provider import parse_provider
from lapis.specs.schedules import parse_schedule
from lapis.specs.yaml_lines import Located, check_settings, located

DEFAULT_SIZE = "Standard_DS3_v2"  # Azure's default for a compute instance
KEYS = {
    "$schema",
    "name",
    "type",
    "size",
    "description",
    "tags",
    "idle_time_before_shutdown_minutes",
    "idle_time_before_shutdown",
    "ssh_public_access_enabled",
    "ssh_settings",
    "setup_scripts",
    "custom_applications",
    "schedules",
    # Azure's shape for an instance made for someone else; its user_object_id is a Lapis
    # user name. ``assigned_user`` is the short form (`lapis compute create --user`).
    "create_on_behalf_of",
    "assigned_user",
}
_DURATION = re.compile(
    r"^P(?:(?P<d>\d+)D)?(?:T(?:(?P<h>\d+)H)?(?:(?P<m>\d+)M)?(?:(?P<s>\d+(?:\.\d+)?)S)?)?$"
)


@dataclass
class ComputeSpec:
    """A checked compute document; ``given`` names the keys the user wrote."""

    name: str | None = None
    type: str = ComputeType.INSTANCE.value
    size: str = DEFAULT_SIZE
    description: str | None = None
    tags: dict[str, str] = field(default_factory=dict)
    idle_shutdown_seconds: int | None = None
    ssh_enabled: bool = False
    ssh_key: str | None = None  # ssh_settings.ssh_key_value: the one public key let in
    # setup_scripts: {"creation_script"|"startup_script": {"text", "command", "timeout"}}
    setup_scripts: dict[str, dict[str, Any]] = field(default_factory=dict)
    custom_applications: list[dict[str, str]] = field(default_factory=list)
    schedules: list[dict[str, Any]] = field(default_factory=list)
    assigned_user: str | None = None
    cluster: ClusterSettings | None = None  # set for an amlcompute cluster
    given: set[str] = field(default_factory=set)


TIERS = ("dedicated", "low_priority")
CLUSTER_KEYS = {
    "$schema",
    "name",
    "type",
    "size",
    "description",
    "tags",
    "min_instances",
    "max_instances",
    "idle_time_before_scale_down",
    "tier",
    "location",  # Azure's region: accepted, there is one here
    "provider",  # Lapis: where the nodes run (lapis/specs/node_provider.py)
}
MAX_NODES = 64


@dataclass
class ClusterSettings:
    """A compute cluster's scale: Azure's defaults (0..1 nodes, 120 s idle, dedicated)."""

    min_instances: int = 0
    max_instances: int = 1
    idle_seconds: int = 120
    tier: str = "dedicated"
    provider: dict[str, Any] | None = None  # None: the local provider

    def as_properties(self) -> dict[str, Any]:
        out = {
            "min_instances": self.min_instances,
            "max_instances": self.max_instances,
            "idle_time_before_scale_down": self.idle_seconds,
            "tier": self.tier,
        }
        if self.provider:
            out["provider"] = self.provider
        return out


def parse_duration(text: str) -> int | None:
    """ISO 8601 duration (``PT30M``, ``PT5S``, ``P1DT2H``) in whole seconds; None if malformed."""
    m = _DURATION.match(text.strip().upper())
    if not m or text.strip().upper() in ("P", "PT"):
        return None
    d, h, mi = (int(m.group(k) or 0) for k in "dhm")
    return int(d * 86400 + h * 3600 + mi * 60 + float(m.group("s") or 0))


def parse_compute(doc: Mapping[str, Any] | Located, *, partial: bool = False) -> ComputeSpec:
    """Check a compute document; every complaint names the file, line and key."""
    loc = located(doc, "<compute>")
    kind = None
    if isinstance(loc.data, Mapping):  # first: every other key means something only for its type
        kind = COMPUTES.of(loc, loc.data, partial=partial)
    if kind == ComputeType.CLUSTER.value:
        return _cluster(loc, partial)
    data = check_settings(loc, KEYS, "computeinstance")
    spec = ComputeSpec(given={k for k in data if k != "$schema"})
    _identity(loc, data, spec, partial)
    if "description" in data:
        if data["description"] is not None and not isinstance(data["description"], str):
            raise loc.error(("description",), "must be a string")
        spec.description = data["description"]
    if "tags" in data:
        tags = data["tags"] or {}
        if not isinstance(tags, Mapping):
            raise loc.error(("tags",), f"must be a mapping of name: value, got {tags!r}")
        spec.tags = {str(k): "" if v is None else str(v) for k, v in tags.items()}
    if "ssh_public_access_enabled" in data:
        if not isinstance(data["ssh_public_access_enabled"], bool):
            raise loc.error(("ssh_public_access_enabled",), "must be true or false")
        spec.ssh_enabled = data["ssh_public_access_enabled"]
    spec.ssh_key = _ssh_key(loc, data, spec.ssh_enabled, partial)
    spec.setup_scripts = _setup_scripts(loc, data)
    spec.custom_applications = _custom_apps(loc, data)
    spec.idle_shutdown_seconds = _idle(loc, data)
    if "idle_time_before_shutdown_minutes" in data or "idle_time_before_shutdown" in data:
        spec.given.add("idle")
    if "schedules" in data:
        spec.schedules = _schedules(loc, data["schedules"])
    spec.assigned_user = _assigned(loc, data)
    return spec


_APP_NAME = re.compile(r"^[a-z][a-z0-9-]{0,31}$")


def _custom_apps(loc: Located, data: Mapping[str, Any]) -> list[dict[str, str]]:
    """``custom_applications``: tools the instance serves through the server, like its
    JupyterLab. Lapis runs a ``command`` (``{port}`` and ``{base_url}`` filled in); Azure's
    Docker-image form (``image``, ``endpoints``) is named in one line."""
    raw = data.get("custom_applications")
    if raw is None:
        return []
    if not isinstance(raw, list):
        raise loc.error(("custom_applications",), "must be a list of {name, command}")
    out, seen = [], set()
    for i, item in enumerate(raw):
        where = ("custom_applications", str(i))
        if not isinstance(item, Mapping):
            raise loc.error(where, "must be a mapping with name and command")
        if "image" in item or "endpoints" in item:
            raise loc.error(
                where,
                "Docker-image applications (image, endpoints) are not supported yet: give a "
                "command that serves HTTP on {port}, e.g. 'tensorboard --logdir logs "
                "--port {port} --path_prefix {base_url}'",
            )
        name, command = item.get("name"), item.get("command")
        if not isinstance(name, str) or not _APP_NAME.match(name) or name in seen:
            raise loc.error((*where, "name"), "must be a new name of lowercase letters, digits "
                            "and '-' (up to 32)")  # fmt: skip
        if not isinstance(command, str) or "{port}" not in command:
            raise loc.error(
                (*where, "command"),
                "must be a command serving HTTP on {port} (Lapis fills it in; {base_url} is "
                "the path it is served under)",
            )
        seen.add(name)
        out.append({"name": name, "command": command})
    return out


SCRIPTS = ("creation_script", "startup_script")
SCRIPT_MAX = 256 * 1024


def _setup_scripts(loc: Located, data: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """``setup_scripts``: a creation script (run once, when the instance is made) and a
    startup script (each start), as Azure has them. A script's ``path`` is read by the
    client, which sends its text as ``script_text``; ``command`` runs instead of
    ``bash <script>`` when given; ``timeout_minutes`` bounds it (default 15)."""
    raw = data.get("setup_scripts")
    if raw is None:
        return {}
    if not isinstance(raw, Mapping):
        raise loc.error(("setup_scripts",), "must be a mapping with creation_script and/or "
                                            "startup_script")  # fmt: skip
    out: dict[str, dict[str, Any]] = {}
    for kind, item in raw.items():
        where = ("setup_scripts", str(kind))
        if kind not in SCRIPTS:
            raise loc.error(where, f"is not a setup script; known: {', '.join(SCRIPTS)}")
        if not isinstance(item, Mapping):
            raise loc.error(where, "must be a mapping with path (and command, timeout_minutes)")
        unknown = set(item) - {
            "path",
            "command",
            "timeout_minutes",
            "script_text",
            "script_arguments",
        }
        if unknown:
            raise loc.error((*where, sorted(unknown)[0]), "is not a setup script key (path, "
                            "command, timeout_minutes)")  # fmt: skip
        text, command = item.get("script_text"), item.get("command")
        if text is None and item.get("path") is not None:
            raise loc.error((*where, "path"), "the script file is read by the lapis CLI or SDK, "
                            "which sends its text (the server never reads your disk)")  # fmt: skip
        if text is None and not command:
            raise loc.error(where, "needs a path (a script) or a command")
        if text is not None and (not isinstance(text, str) or len(text) > SCRIPT_MAX):
            raise loc.error(
                (*where, "path"), f"must be a text file of at most {SCRIPT_MAX // 1024} KB"
            )
        if command is not None and not isinstance(command, str):
            raise loc.error((*where, "command"), "must be a shell command")
        minutes = item.get("timeout_minutes", 15)
        if isinstance(minutes, bool) or not isinstance(minutes, int) or not 1 <= minutes <= 120:
            raise loc.error(
                (*where, "timeout_minutes"), "must be a whole number of minutes, 1 to 120"
            )
        args = item.get("script_arguments")
        out[str(kind)] = {"text": text, "command": command, "timeout": minutes * 60,
                          "arguments": str(args) if args is not None else ""}  # fmt: skip
    return out


_KEY = re.compile(
    r"^(ssh-ed25519|ssh-rsa|ecdsa-sha2-nistp(?:256|384|521)|sk-ssh-ed25519@openssh\.com"
    r"|sk-ecdsa-sha2-nistp256@openssh\.com) [A-Za-z0-9+/]{40,}={0,3}(?: [^\n]*)?$"
)


def _ssh_key(loc: Located, data: Mapping[str, Any], enabled: bool, partial: bool) -> str | None:
    """``ssh_settings.ssh_key_value``: an OpenSSH public key line, needed (and allowed) only
    with ``ssh_public_access_enabled: true``, as Azure has it."""
    settings = data.get("ssh_settings")
    if settings is None:
        if enabled and not partial:
            raise loc.error(
                ("ssh_public_access_enabled",),
                "SSH needs a public key: set ssh_settings.ssh_key_value "
                "(e.g. the line of ~/.ssh/id_ed25519.pub)",
            )
        return None
    if not isinstance(settings, Mapping):
        raise loc.error(("ssh_settings",), "must be a mapping with ssh_key_value")
    unknown = set(settings) - {"ssh_key_value", "admin_user_name", "admin_public_key"}
    if unknown:
        raise loc.error(
            ("ssh_settings", sorted(unknown)[0]), "is not an ssh_settings key (ssh_key_value)"
        )
    key = settings.get("ssh_key_value", settings.get("admin_public_key"))
    if not isinstance(key, str) or not _KEY.match(" ".join(key.split())):
        raise loc.error(
            ("ssh_settings", "ssh_key_value"),
            "must be an OpenSSH public key line ('ssh-ed25519 AAAA… comment'; the .pub "
            "file, not the private key)",
        )
    if not enabled:
        raise loc.error(("ssh_settings",), "needs ssh_public_access_enabled: true")
    return " ".join(key.split())


def _cluster(loc: Located, partial: bool) -> ComputeSpec:
    """``type: amlcompute``: a cluster's name, size and scale, checked one key at a time."""
    data = check_settings(loc, CLUSTER_KEYS, "amlcompute")
    spec = ComputeSpec(type=ComputeType.CLUSTER.value, given={k for k in data if k != "$schema"})
    _identity(loc, data, spec, partial)
    if data.get("description") is not None:
        if not isinstance(data["description"], str):
            raise loc.error(("description",), "must be a string")
        spec.description = data["description"]
    if "tags" in data:
        tags = data["tags"] or {}
        if not isinstance(tags, Mapping):
            raise loc.error(("tags",), f"must be a mapping of name: value, got {tags!r}")
        spec.tags = {str(k): "" if v is None else str(v) for k, v in tags.items()}
    spec.cluster = cluster_settings(loc, data)
    return spec


def cluster_settings(
    loc: Located, data: Mapping[str, Any], base: ClusterSettings | None = None
) -> ClusterSettings:
    """The scale keys present in ``data`` over ``base`` (defaults when None)."""
    out = ClusterSettings(**vars(base)) if base is not None else ClusterSettings()

    def whole(key: str, low: int, high: int) -> int:
        value = data[key]
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            raise loc.error((key,), f"must be a whole number from {low} to {high}, got {value!r}")
        return int(value)

    if "min_instances" in data:
        out.min_instances = whole("min_instances", 0, MAX_NODES)
    if "max_instances" in data:
        out.max_instances = whole("max_instances", 1, MAX_NODES)
    if "idle_time_before_scale_down" in data:
        raw = data["idle_time_before_scale_down"]
        if isinstance(raw, str) and raw.upper().startswith("P"):
            seconds = parse_duration(raw)
            if seconds is None:
                raise loc.error(("idle_time_before_scale_down",), f"bad duration {raw!r}")
            out.idle_seconds = seconds
        else:
            out.idle_seconds = whole("idle_time_before_scale_down", 0, 7 * 86400)
    if "tier" in data:
        tier = str(data["tier"]).lower().replace("lowpriority", "low_priority")
        if tier not in TIERS:
            raise loc.error(("tier",), f"must be dedicated or low_priority, got {data['tier']!r}")
        out.tier = tier
    if "provider" in data:
        out.provider = parse_provider(loc, data["provider"])
    hosts = (out.provider or {}).get("hosts")
    if hosts and out.max_instances > len(hosts):
        raise loc.error(
            ("max_instances",),
            f"is {out.max_instances} but the ssh provider lists {len(hosts)} host(s): one "
            "node per host",
        )
    if out.min_instances > out.max_instances:
        key = "min_instances" if "min_instances" in data else "max_instances"
        raise loc.error(
            (key,),
            f"min_instances ({out.min_instances}) is more than max_instances ({out.max_instances})",
        )
    return out


def _assigned(loc: Located, data: Mapping[str, Any]) -> str | None:
    user = data.get("assigned_user")
    behalf = data.get("create_on_behalf_of")
    if behalf is not None:
        if not isinstance(behalf, Mapping) or not isinstance(behalf.get("user_object_id"), str):
            raise loc.error(
                ("create_on_behalf_of",), "must be a mapping with user_object_id: <user name>"
            )
        user = behalf["user_object_id"]
    if user is not None and (not isinstance(user, str) or not user.strip()):
        raise loc.error(("assigned_user",), "must be a user name")
    return user.strip() if isinstance(user, str) else None


def _identity(loc: Located, data: Mapping[str, Any], spec: ComputeSpec, partial: bool) -> None:
    if "name" in data:
        try:
            spec.name = validate_compute_name(data["name"])
        except InvalidParameterValue as exc:
            raise InvalidParameterValue(
                f"{loc.where(('name',))}: {exc.message}", file=loc.source, key="name"
            ) from None
    elif not partial:
        raise loc.error(("name",), "is required (3-24 letters, digits or '-')")
    if "size" in data:
        if not isinstance(data["size"], str):
            raise loc.error(("size",), f"must be a VM size name, got {data['size']!r}")
        try:
            spec.size = get_size(data["size"]).name
        except ResourceDoesNotExist as exc:
            raise loc.error(("size",), exc.message) from None


def _idle(loc: Located, data: Mapping[str, Any]) -> int | None:
    minutes = data.get("idle_time_before_shutdown_minutes")
    iso = data.get("idle_time_before_shutdown")
    if minutes is not None and iso is not None:
        raise loc.error(
            ("idle_time_before_shutdown",),
            "give either idle_time_before_shutdown or idle_time_before_shutdown_minutes, not both",
        )
    if minutes is not None:
        if isinstance(minutes, bool) or not isinstance(minutes, int) or minutes < 0:
            raise loc.error(
                ("idle_time_before_shutdown_minutes",),
                f"must be a whole number of minutes (0 turns idle shutdown off), got {minutes!r}",
            )
        return minutes * 60 or None
    if iso is not None:
        seconds = parse_duration(iso) if isinstance(iso, str) else None
        if seconds is None:
            raise loc.error(
                ("idle_time_before_shutdown",),
                f"must be an ISO 8601 duration like PT30M or PT90S, got {iso!r}",
            )
        return seconds or None
    return None


def _schedules(loc: Located, raw: Any) -> list[dict[str, Any]]:
    if raw is None:
        return []
    if not isinstance(raw, Mapping):
        raise loc.error(("schedules",), "must be a mapping with compute_start_stop: [...]")
    for key in raw:
        if key != "compute_start_stop":
            raise loc.error(("schedules", str(key)), "is not allowed; use compute_start_stop")
    entries = raw.get("compute_start_stop") or []
    if not isinstance(entries, list):
        raise loc.error(("schedules", "compute_start_stop"), "must be a list of schedules")
    return [
        parse_schedule(entry, ("schedules", "compute_start_stop", str(i)), loc.error)
        for i, entry in enumerate(entries)
    ]
