"""Online endpoints: a name, an auth mode, two keys and a traffic split.

An endpoint is the stable front of its deployments (which come later): the
scoring URL, the keys callers present, and how requests are split
(``traffic``) or copied (``mirror_traffic``) across deployments. Creating one
provisions nothing, so it is ``Succeeded`` at once.

Keys: two random keys (``secrets.token_urlsafe(32)``) are issued at create so
that one can be rotated while callers move to the other. They are stored as
issued, sealed with the workspace key rather than hashed, because Azure's
``get-credentials`` returns them;
``check_key`` compares in constant time (``hmac.compare_digest``) for the
scoring route.
"""

from __future__ import annotations

import builtins
import difflib
import hmac
import secrets
from collections.abc import Callable, Mapping
from typing import Any

from lapis.api import endpoints as api
from lapis.endpoints import tokens
from lapis.errors import InvalidParameterValue, InvalidState, ResourceDoesNotExist
from lapis.specs.endpoint import (
    parse_endpoint,
    validate_traffic,
)
from lapis.specs.yaml_lines import Located, located
from lapis.store.sealed import Sealer
from lapis.store.sql.endpoints import EndpointStore, OnlineEndpoint
from lapis.store.sql.engine import Database
from lapis.util import now_ms

KEY_TYPES = ("primary", "secondary")


def new_key() -> str:
    return secrets.token_urlsafe(32)


class EndpointService:
    def __init__(self, db: Database, sealer: Sealer | None = None) -> None:
        self.db = db
        self.store = EndpointStore(db, sealer)
        # Installed by the deployment control plane (lapis.endpoints.control.deployments): the
        # deployment names of an endpoint, so traffic can only name real deployments, and
        # listeners told (endpoint name, deleted) after each change, to re-publish routes.
        self.deployment_names: Callable[[str], builtins.list[str]] | None = None
        self.listeners: builtins.list[Callable[[str, bool], None]] = []

    def _changed(self, name: str, deleted: bool = False) -> None:
        for listener in list(self.listeners):
            listener(name, deleted)

    def _check_deployments(self, name: str, splits: Mapping[str, Mapping[str, int]]) -> None:
        """Every deployment a traffic split names must exist on the endpoint."""
        if self.deployment_names is None:
            return
        known = self.deployment_names(name)
        lower = {k.lower() for k in known}
        for what, split in splits.items():
            for dep in split:
                if dep.lower() not in lower:
                    listing = ", ".join(known) or "none yet"
                    raise InvalidParameterValue(
                        f"{what}: endpoint '{name}' has no deployment '{dep}'; "
                        f"its deployments: {listing}",
                        field=what,
                    )

    # --- reading -----------------------------------------------------------------
    def get(self, name: str) -> OnlineEndpoint:
        """An endpoint by name, case-insensitively; a miss lists the known names."""
        found = self.store.get(name)
        if found is None:
            known = [e.name for e in self.store.all()]
            close = difflib.get_close_matches(name.lower(), [k.lower() for k in known], n=1)
            hint = ""
            if close:
                hint = f" Did you mean {next(k for k in known if k.lower() == close[0])}?"
            listing = ", ".join(known) if known else "none"
            raise ResourceDoesNotExist(
                f"Online endpoint '{name}' does not exist. Known endpoints: {listing}.{hint}"
            )
        return found

    def list(self) -> builtins.list[OnlineEndpoint]:
        return self.store.all()

    @staticmethod
    def describe(e: OnlineEndpoint, base_url: str) -> api.EndpointOut:
        """The API's view of an endpoint, with Azure's names; never the keys."""
        return api.EndpointOut(
            name=e.name,
            auth_mode=e.auth_mode,
            description=e.description,
            tags=e.tags,
            traffic=e.traffic,
            mirror_traffic=e.mirror_traffic,
            scoring_uri=f"{base_url.rstrip('/')}/api/v1/endpoints/{e.name}/score",
            provisioning_state=e.provisioning_state,
            created_by=e.created_by,
            created_at=e.created_at,
            updated_at=e.updated_at,
        )

    # --- writing -----------------------------------------------------------------
    def create(
        self,
        doc: Mapping[str, Any] | Located,
        *,
        source: str = "<request>",
        created_by: str | None = None,
    ) -> OnlineEndpoint:
        """Create an endpoint from its YAML document (Azure's managedOnlineEndpoint shape)."""
        spec = parse_endpoint(located(doc, source))
        assert spec.name is not None  # parse_endpoint requires it when not partial
        self._check_deployments(
            spec.name, {"traffic": spec.traffic, "mirror_traffic": spec.mirror_traffic}
        )
        now = now_ms()
        e = OnlineEndpoint(
            name=spec.name,
            primary_key=new_key(),
            secondary_key=new_key(),
            created_at=now,
            updated_at=now,
            auth_mode=spec.auth_mode,
            description=spec.description,
            tags=spec.tags,
            traffic=spec.traffic,
            mirror_traffic=spec.mirror_traffic,
            created_by=created_by,
        )
        self.store.insert(e)
        self._changed(e.name)
        return e

    def update(
        self, name: str, doc: Mapping[str, Any] | Located, *, source: str = "<request>"
    ) -> OnlineEndpoint:
        """Change description, tags, auth mode, traffic or mirror traffic (keys present only)."""
        e = self.get(name)
        spec = parse_endpoint(located(doc, source), partial=True)
        if spec.name is not None and spec.name.lower() != e.name.lower():
            raise InvalidParameterValue(
                f"{source}: name '{spec.name}' does not match the endpoint being updated "
                f"('{e.name}'); an endpoint cannot be renamed"
            )
        values: dict[str, Any] = {}
        for key in ("auth_mode", "description", "tags", "traffic", "mirror_traffic"):
            if key in spec.given:
                values[key] = getattr(spec, key)
        self._check_deployments(
            e.name, {k: values[k] for k in ("traffic", "mirror_traffic") if k in values}
        )
        if values:
            values["updated_at"] = now_ms()
            self.store.update(e.name, **values)
            self._changed(e.name)
        return self.get(e.name)

    def set_traffic(self, name: str, traffic: Mapping[str, Any]) -> OnlineEndpoint:
        """Replace the traffic split (whole percents summing to 100, or 0 for none)."""
        e = self.get(name)
        checked = validate_traffic(dict(traffic))
        self._check_deployments(e.name, {"traffic": checked})
        self.store.update(e.name, traffic=checked, updated_at=now_ms())
        self._changed(e.name)
        return self.get(e.name)

    def delete(self, name: str) -> OnlineEndpoint:
        e = self.get(name)
        self.store.delete(e.name)
        self._changed(e.name, deleted=True)
        return e

    # --- keys --------------------------------------------------------------------
    def get_credentials(self, name: str) -> dict[str, Any]:
        """The keys (``auth_mode: key``), or a fresh short-lived token (``aml_token``)."""
        e = self.get(name)
        if e.auth_mode == "aml_token":
            return tokens.issue(e.name, e.primary_key)
        return {"primaryKey": e.primary_key, "secondaryKey": e.secondary_key}

    def get_token(self, name: str) -> dict[str, Any]:
        """A scoring token of an ``aml_token`` endpoint (Azure's ``token`` call)."""
        e = self.get(name)
        if e.auth_mode != "aml_token":
            raise InvalidState(
                f"Endpoint '{e.name}' uses auth_mode {e.auth_mode}: callers present a key "
                "(lapis online-endpoint get-credentials), not a token"
            )
        return tokens.issue(e.name, e.primary_key)

    def regenerate_key(self, name: str, key_type: str) -> dict[str, Any]:
        """Replace the primary or the secondary key; the other one keeps working (an
        ``aml_token`` endpoint's tokens are signed with the primary: replacing it revokes
        them)."""
        kind = key_type.lower()
        if kind not in KEY_TYPES:
            raise InvalidParameterValue(f"key type must be primary or secondary, got {key_type!r}")
        e = self.get(name)
        self.store.update(e.name, **{f"{kind}_key": new_key()}, updated_at=now_ms())
        self._changed(e.name)
        return self.get_credentials(e.name)

    def check_key(self, endpoint_name: str, presented_key: str) -> bool:
        """Whether ``presented_key`` lets a caller score: one of the endpoint's keys, or
        for an ``aml_token`` endpoint an unexpired token of it (constant-time compares)."""
        e = self.store.get(endpoint_name)
        if e is None or not presented_key:
            return False
        given = presented_key.encode()
        if e.auth_mode == "aml_token":
            return tokens.verify(given, e.name, e.primary_key)
        primary = hmac.compare_digest(given, e.primary_key.encode())
        secondary = hmac.compare_digest(given, e.secondary_key.encode())
        return primary or secondary
