"""Role definitions: the built-in roles Azure ML users know, and custom ones from YAML.

A role allows an action when one of its ``actions`` patterns matches it and
none of its ``not_actions`` does; a user may do what any of their roles allows
(Azure's rule: ``not_actions`` subtract within one role, they are not a deny
across roles).

Custom roles come from a YAML (or JSON) file in Lapis' shape::

    name: Experimenter
    description: Runs and reads jobs, nothing else
    actions: [workspaces/*/read, workspaces/jobs/write]
    not_actions: [workspaces/onlineEndpoints/listkeys/action]

or Azure's custom-role JSON shape (``Name``, ``Description``, ``Actions``,
``NotActions``; ``IsCustom`` and ``AssignableScopes`` are accepted and ignored —
a Lapis role's scope is the workspace). Each pattern must match at least one
known action, so a misspelt action is an error, not a role that silently
allows nothing.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from lapis.auth.actions import ACTIONS, known, matches, normalize
from lapis.specs.yaml_lines import load, suggest

NAME_RE = re.compile(r"^[A-Za-z][A-Za-z0-9 _.\-]{0,127}$")


@dataclass(frozen=True)
class RoleDefinition:
    name: str
    description: str
    actions: tuple[str, ...]
    not_actions: tuple[str, ...] = ()
    builtin: bool = False
    created_by: str | None = field(default=None, compare=False)

    def allows(self, action: str) -> bool:
        return any(matches(p, action) for p in self.actions) and not any(
            matches(p, action) for p in self.not_actions
        )

    def allowed_actions(self) -> list[str]:
        return [a for a in ACTIONS if self.allows(a)]

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "description": self.description,
            "actions": list(self.actions),
            "not_actions": list(self.not_actions),
            "builtin": self.builtin,
            "created_by": self.created_by,
        }


_ADMIN_ONLY = (
    "workspaces/roleAssignments/*",
    "workspaces/roles/write",
    "workspaces/users/write",
    "workspaces/audit/read",
    "workspaces/notebooks/storage/manage/action",  # changing others' file share folders
)

BUILTIN: dict[str, RoleDefinition] = {
    r.name.lower(): r
    for r in (
        RoleDefinition(
            "Owner",
            "Full access to the workspace, including users, roles and the audit log.",
            ("*",),
            builtin=True,
        ),
        RoleDefinition(
            "Contributor",
            "Everything but users, roles, role assignments and the audit log.",
            ("*",),
            _ADMIN_ONLY,
            builtin=True,
        ),
        RoleDefinition(
            "Reader",
            "Read everything; change nothing and see no keys.",
            ("*/read",),
            ("workspaces/users/read", "workspaces/audit/read"),
            builtin=True,
        ),
        RoleDefinition(
            "AzureML Data Scientist",
            "Everything in the workspace except creating or deleting computes and "
            "changing users, roles or role assignments.",
            (
                "workspaces/*/read",
                "workspaces/*/action",
                "workspaces/*/write",
                "workspaces/*/delete",
            ),
            (
                "workspaces/computes/*/write",
                "workspaces/computes/*/delete",
                "workspaces/users/*",
                "workspaces/roles/write",
                "workspaces/roleAssignments/*",
                "workspaces/audit/read",
                "workspaces/notebooks/storage/manage/action",
            ),
            builtin=True,
        ),
        RoleDefinition(
            "AzureML Compute Operator",
            "Create, manage and delete computes; read the workspace.",
            ("workspaces/computes/*", "workspaces/read"),
            builtin=True,
        ),
    )
}


def _patterns(loc: Any, key: str, raw: Any) -> tuple[str, ...]:
    if raw is None:
        return ()
    if isinstance(raw, str):
        raw = [raw]
    if not isinstance(raw, list) or not all(isinstance(p, str) and p.strip() for p in raw):
        raise loc.error((key,), "must be a list of action strings")
    out = []
    for i, pattern in enumerate(raw):
        if not known(pattern):
            near = suggest(normalize(pattern), ACTIONS)
            raise loc.error(
                (key, str(i)),
                f"'{pattern}' matches no action Lapis knows{near}; `lapis role actions` lists them",
            )
        out.append(normalize(pattern))
    return tuple(out)


_KEYS = {
    "name": "name",
    "rolename": "name",
    "description": "description",
    "actions": "actions",
    "notactions": "not_actions",
    "not_actions": "not_actions",
    "iscustom": None,
    "assignablescopes": None,
    "$schema": None,
    "id": None,
}


def parse_role(text: str, source: str = "<role>") -> RoleDefinition:
    """A custom role from YAML/JSON text, every mistake with file:line."""
    loc = load(text, source)
    if not isinstance(loc.data, dict):
        raise loc.error((), "must be a mapping with name, actions and optional not_actions")
    values: dict[str, Any] = {}
    for key, value in loc.data.items():
        norm = str(key).lower()
        if norm in ("dataactions", "notdataactions"):
            if value:
                raise loc.error((str(key),), "data actions are not supported; leave them empty")
            continue
        if norm not in _KEYS:
            allowed = ["name", "description", "actions", "not_actions"]
            raise loc.error(
                (str(key),),
                f"is not a role setting{suggest(str(key), allowed)}; allowed: "
                + ", ".join(allowed),
            )
        target = _KEYS[norm]
        if target is not None:
            values[target] = (value, str(key))
    if "name" not in values or not isinstance(values["name"][0], str):
        raise loc.error(("name",), "is required: the role's name")
    name = values["name"][0].strip()
    if not NAME_RE.match(name):
        raise loc.error(
            (values["name"][1],),
            f"'{name}' is not a role name (a letter, then letters, digits, spaces, _ . -)",
        )
    if name.lower() in BUILTIN:
        raise loc.error((values["name"][1],), f"'{name}' is a built-in role")
    actions = _patterns(
        loc, values.get("actions", (None, "actions"))[1], values.get("actions", (None,))[0]
    )
    if not actions:
        raise loc.error(("actions",), "must list at least one action")
    not_actions = _patterns(
        loc,
        values.get("not_actions", (None, "not_actions"))[1],
        values.get("not_actions", (None,))[0],
    )
    description = values.get("description", ("", ""))[0]
    return RoleDefinition(name, str(description or ""), actions, not_actions)


def allowed(roles: Iterable[RoleDefinition], action: str) -> bool:
    return any(r.allows(action) for r in roles)
