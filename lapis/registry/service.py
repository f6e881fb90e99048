"""The registry service: registered models, their versions, stages, aliases and tags.

It holds MLflow's rules (name and alias checks, reserved aliases, version
numbering, which sources a version may point at) so the MLflow routes stay
thin. A version's ``source`` is kept as given; where it names something this
workspace can resolve (a logged model ``models:/m-…``, another version
``models:/name/2``) the resolved location is stored beside it and is what
``get-download-uri`` answers, so loading a registered model never needs a
second lookup on the client.
"""

from __future__ import annotations

import urllib.parse
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from lapis.entities.auth import Principal
from lapis.entities.registry import ModelVersion, ModelVersionStatus, RegisteredModel, Stage
from lapis.errors import InvalidParameterValue, ResourceDoesNotExist
from lapis.registry.validation import (
    LATEST,
    MAX_RUN_ID_LENGTH,
    SEARCH_MODELS_MAX,
    SEARCH_VERSIONS_MAX,
    check_max_results,
    invalid,
    parse_stage,
    validate_alias,
    validate_model_name,
    validate_tag,
    validate_version,
)
from lapis.store.sql.model_versions import version_not_found
from lapis.store.sql.registry import RegistryStore
from lapis.tracking import validation as v
from lapis.tracking.service import TrackingService


def _bad_source(source: str, by: str) -> InvalidParameterValue:
    return InvalidParameterValue(
        f"Invalid model version source: '{source}'. The {by} request parameter must identify "
        "the resource that contains the source."
    )


def _uri_parts(uri: str) -> tuple[str, str, tuple[str, ...]]:
    parsed = urllib.parse.urlsplit(uri)
    parts = tuple(urllib.parse.unquote(p) for p in parsed.path.split("/") if p)
    return parsed.scheme.lower(), parsed.netloc.lower(), parts


def _within(source: str, root: str) -> bool:
    s_scheme, s_host, s_parts = _uri_parts(source)
    r_scheme, r_host, r_parts = _uri_parts(root)
    return (
        (s_scheme, s_host) == (r_scheme, r_host)
        and bool(r_parts)
        and (s_parts[: len(r_parts)] == r_parts)
    )


def _check_source_path(source: str) -> None:
    """Refuse sources that climb out of where they point (``..``, NUL), as MLflow does."""
    unquoted = source
    while (nxt := urllib.parse.unquote_plus(unquoted)) != unquoted:
        unquoted = nxt
    if "\x00" in unquoted or any(p == ".." for p in unquoted.split("/")):
        raise InvalidParameterValue(
            f"Invalid model version source: '{source}'. If supplying a source as an http, "
            "https, local file path, ftp, objectstore, or mlflow-artifacts uri, an absolute "
            "path must be provided without relative path references present. Please provide "
            "an absolute path."
        )


def _no_listener(entity: str, action: str, data: dict[str, Any]) -> None:
    return None


class RegistryService:
    def __init__(self, tracking: TrackingService) -> None:
        self.tracking = tracking
        self.db = tracking.db
        self.store = RegistryStore(tracking.db)
        self.versions = self.store.versions
        # told of each registry event after it is stored (the workspace's webhooks)
        self.notify: Callable[[str, str, dict[str, Any]], None] = _no_listener

    def version_created(self, mv: ModelVersion) -> None:
        """Announce a version once it is usable (an upload: when its last file is in)."""
        self.notify(
            "model_version",
            "created",
            {
                "name": mv.name,
                "version": str(mv.version),
                "source": mv.source,
                "run_id": mv.run_id,
                "tags": dict(mv.tags),
                "description": mv.description,
            },
        )

    # --- registered models ----------------------------------------------------
    def create_registered_model(
        self,
        name: object,
        tags: Mapping[object, object] | None = None,
        description: str | None = None,
        principal: Principal | None = None,
    ) -> RegisteredModel:
        name = validate_model_name(name)
        clean = dict(validate_tag(k, val) for k, val in (tags or {}).items())
        self.store.create_model(name, description, clean, principal.name if principal else None)
        made = self.store.get_model(name)
        self.notify(
            "registered_model",
            "created",
            {"name": made.name, "tags": dict(made.tags), "description": made.description},
        )
        return made

    def get_registered_model(self, name: object) -> RegisteredModel:
        return self.store.get_model(validate_model_name(name))

    def update_registered_model(self, name: object, description: str | None) -> RegisteredModel:
        name = validate_model_name(name)
        self.store.update_model(name, description)
        return self.store.get_model(name)

    def rename_registered_model(self, name: object, new_name: object) -> RegisteredModel:
        name = validate_model_name(name)
        new_name = validate_model_name(new_name, "new_name")
        self.store.rename_model(name, new_name)
        return self.store.get_model(new_name)

    def delete_registered_model(self, name: object) -> None:
        self.store.delete_model(validate_model_name(name))

    def search_registered_models(
        self,
        filter_string: str = "",
        max_results: int = 100,
        order_by: Sequence[str] | None = None,
        page_token: str | None = None,
    ) -> tuple[list[RegisteredModel], str | None]:
        from lapis.tracking.search.paging import decode_page_token, encode_page_token
        from lapis.tracking.search.registry import registered_model_search_select

        check_max_results(max_results, SEARCH_MODELS_MAX)
        offset = decode_page_token(page_token)
        stmt = registered_model_search_select(
            filter_string or "", list(order_by or []), max_results + 1, offset, self.db.dialect
        )
        with self.db.read() as conn:
            names = list(conn.execute(stmt).scalars())
            token = encode_page_token(offset + max_results) if len(names) > max_results else None
            return self.store.get_models(names[:max_results], conn), token

    def get_latest_versions(
        self, name: object, stages: Sequence[object] | None = None
    ) -> list[ModelVersion]:
        """The newest version in each asked stage (every stage when none are asked)."""
        model = self.get_registered_model(name)
        wanted = {parse_stage(s).value for s in stages or []} or {s.value for s in Stage}
        return [mv for mv in model.latest_versions if mv.current_stage in wanted]

    def set_registered_model_tag(self, name: object, key: object, value: object) -> None:
        name = validate_model_name(name)
        self.store.set_model_tag(name, *validate_tag(key, value))

    def delete_registered_model_tag(self, name: object, key: object) -> None:
        name = validate_model_name(name)
        self.store.delete_model_tag(name, v.validate_key("tag", key))

    # --- aliases ---------------------------------------------------------------
    def set_alias(self, name: object, alias: object, version: object) -> None:
        name = validate_model_name(name)
        alias = validate_alias(alias, reserved_check=True)
        number = validate_version(version)
        self.store.set_alias(name, alias, number)
        self.notify(
            "model_version_alias", "created", {"name": name, "alias": alias, "version": str(number)}
        )

    def delete_alias(self, name: object, alias: object) -> None:
        name, alias = validate_model_name(name), validate_alias(alias)
        self.store.delete_alias(name, alias)
        self.notify("model_version_alias", "deleted", {"name": name, "alias": alias})

    def get_version_by_alias(self, name: object, alias: object) -> ModelVersion:
        """``latest`` is the newest live version; any other alias must have been set."""
        name = validate_model_name(name)
        alias = validate_alias(alias)
        if alias.lower() == LATEST:
            newest = self.versions.latest_version(name)
            if newest is None:
                raise ResourceDoesNotExist(f"Latest version not found for model {name}.")
            return self.versions.get_version(name, newest)
        version = self.store.alias_version(name, alias)
        if version is None:
            # MLflow answers INVALID_PARAMETER_VALUE here, not RESOURCE_DOES_NOT_EXIST.
            raise InvalidParameterValue(f"Registered model alias {alias} not found.")
        return self.versions.get_version(name, version)

    # --- model versions ----------------------------------------------------------
    def create_model_version(
        self,
        name: object,
        source: object,
        run_id: str | None = None,
        tags: Mapping[object, object] | None = None,
        run_link: str | None = None,
        description: str | None = None,
        model_id: str | None = None,
        principal: Principal | None = None,
    ) -> ModelVersion:
        name = validate_model_name(name)
        if not isinstance(source, str) or not source:
            raise InvalidParameterValue("Missing value for required parameter 'source'.")
        _check_source_path(source)
        clean = dict(validate_tag(k, val) for k, val in (tags or {}).items())
        resolved, run_id, model_id, storage = self._resolve_source(
            source, run_id or None, model_id or None
        )
        if run_id is not None and len(run_id) > MAX_RUN_ID_LENGTH:
            raise invalid("run_id", run_id, f"run ids are at most {MAX_RUN_ID_LENGTH} characters")
        values = {
            "source": resolved,
            "storage_location": storage,
            "run_id": run_id,
            "run_link": run_link or None,
            "model_id": model_id,
            "description": description,
            "user_id": principal.name if principal else None,
            "status": ModelVersionStatus.READY.value,
        }
        version = self.versions.create_version(name, values, clean)
        made = self.versions.get_version(name, version)
        self.version_created(made)
        return made

    def _resolve_source(
        self, source: str, run_id: str | None, model_id: str | None
    ) -> tuple[str, str | None, str | None, str | None]:
        """``(source, run_id, model_id, storage_location)`` with MLflow's lineage checks."""
        parsed = urllib.parse.urlparse(source)
        if parsed.scheme == "models":
            return self._resolve_models_source(source, parsed, run_id, model_id)
        if parsed.scheme == "runs":
            source_run = parsed.path.lstrip("/").split("/", 1)[0]
            if parsed.netloc or not source_run or (run_id and run_id != source_run):
                raise _bad_source(source, "run_id")
            return source, source_run, model_id, None
        if model_id and run_id is None:
            found = self.versions.logged_model(model_id)
            run_id = found[1] if found else None
        scheme, _, parts = _uri_parts(source)
        proxied = scheme == "mlflow-artifacts" or (
            scheme in ("http", "https") and "mlflow-artifacts" in parts
        )
        if proxied and not self._source_owned(source, run_id, model_id):
            raise _bad_source(source, "model_id" if model_id else "run_id")
        return source, run_id, model_id, None

    def _resolve_models_source(
        self,
        source: str,
        parsed: urllib.parse.ParseResult,
        run_id: str | None,
        model_id: str | None,
    ) -> tuple[str, str | None, str | None, str | None]:
        if parsed.netloc:
            raise InvalidParameterValue(
                f"Invalid model version source: '{source}'. Registered model sources must use "
                "the active model registry."
            )
        path = parsed.path.lstrip("/")
        parts = path.split("/")
        if len(parts) == 1 and "@" not in path and path:
            # models:/<model_id>: a logged model, kept as the source (MLflow 3's form).
            if model_id and model_id != path:
                raise _bad_source(source, "model_id")
            found = self.versions.logged_model(path)
            if run_id is None and found is not None:
                run_id = found[1]
            return source, run_id, path, found[0] if found else None
        mv = self._version_from_uri(source, parts)
        if (run_id and run_id != (mv.run_id or "")) or (
            model_id and model_id != (mv.model_id or "")
        ):
            raise InvalidParameterValue(
                f"Invalid model version source: '{source}'. The run_id and model_id request "
                "parameters must match the referenced model version."
            )
        return (
            f"models:/{mv.name}/{mv.version}",
            run_id or mv.run_id,
            model_id or mv.model_id,
            self._download_uri(mv),
        )

    def _version_from_uri(self, source: str, parts: list[str]) -> ModelVersion:
        """The version ``models:/name/3``, ``name/Staging``, ``name/latest`` or ``name@a`` means."""
        if len(parts) == 2 and parts[0] and parts[1]:
            name, suffix = parts
            if suffix.isdigit():
                return self.get_model_version(name, suffix)
            if suffix.lower() == LATEST:
                return self.get_version_by_alias(name, LATEST)
            latest = self.get_latest_versions(name, [suffix])
            if not latest:
                raise version_not_found(name, suffix)
            return latest[0]
        if len(parts) == 1 and "@" in parts[0]:
            name, alias = parts[0].rsplit("@", 1)
            return self.get_version_by_alias(name, alias)
        raise InvalidParameterValue(f"Invalid model version source: '{source}'.")

    def _source_owned(self, source: str, run_id: str | None, model_id: str | None) -> bool:
        """Whether a proxied-artifact source lies inside the named run's or model's folder."""
        if model_id:
            found = self.versions.logged_model(model_id)
            if found is not None and _within(source, found[0]):
                return True
        if run_id:
            try:
                info = self.tracking.runs.get_info(run_id)
            except ResourceDoesNotExist:
                return False
            return _within(source, info.artifact_uri)
        return False

    def get_model_version(self, name: object, version: object) -> ModelVersion:
        return self.versions.get_version(validate_model_name(name), validate_version(version))

    def update_model_version(
        self, name: object, version: object, description: str | None
    ) -> ModelVersion:
        name, number = validate_model_name(name), validate_version(version)
        self.versions.update_version(name, number, description)
        return self.versions.get_version(name, number)

    def transition_stage(
        self, name: object, version: object, stage: object, archive_existing_versions: bool = False
    ) -> ModelVersion:
        name, number = validate_model_name(name), validate_version(version)
        target = parse_stage(stage)
        if archive_existing_versions and not target.is_active:
            raise InvalidParameterValue(
                "Model version transition cannot archive existing model versions because "
                f"'{stage}' is not an Active stage. Valid stages are ['Staging', 'Production']"
            )
        self.versions.transition(name, number, target, archive_existing_versions)
        return self.versions.get_version(name, number)

    def delete_model_version(self, name: object, version: object) -> None:
        self.versions.delete_version(validate_model_name(name), validate_version(version))

    def get_download_uri(self, name: object, version: object) -> str:
        return self._download_uri(self.get_model_version(name, version))

    def _download_uri(self, mv: ModelVersion) -> str:
        if mv.storage_location:
            return mv.storage_location
        if mv.model_id and mv.source == f"models:/{mv.model_id}":
            found = self.versions.logged_model(mv.model_id)
            if found is not None:
                return found[0]
        return mv.source

    def search_model_versions(
        self,
        filter_string: str = "",
        max_results: int = 10_000,
        order_by: Sequence[str] | None = None,
        page_token: str | None = None,
    ) -> tuple[list[ModelVersion], str | None]:
        from lapis.tracking.search.paging import decode_page_token, encode_page_token
        from lapis.tracking.search.registry import model_version_search_select

        check_max_results(max_results, SEARCH_VERSIONS_MAX)
        offset = decode_page_token(page_token)
        stmt = model_version_search_select(
            filter_string or "", list(order_by or []), max_results + 1, offset, self.db.dialect
        )
        with self.db.read() as conn:
            keys = [(str(r[0]), int(r[1])) for r in conn.execute(stmt)]
            token = encode_page_token(offset + max_results) if len(keys) > max_results else None
            return self.versions.get_versions(keys[:max_results], conn), token

    def set_model_version_tag(
        self, name: object, version: object, key: object, value: object
    ) -> None:
        name, number = validate_model_name(name), validate_version(version)
        k, val = validate_tag(key, value)
        self.versions.set_version_tag(name, number, k, val)
        self.notify(
            "model_version_tag",
            "set",
            {"name": name, "version": str(number), "key": k, "value": val},
        )

    def delete_model_version_tag(self, name: object, version: object, key: object) -> None:
        name, number = validate_model_name(name), validate_version(version)
        k = v.validate_key("tag", key)
        self.versions.delete_version_tag(name, number, k)
        self.notify(
            "model_version_tag", "deleted", {"name": name, "version": str(number), "key": k}
        )
