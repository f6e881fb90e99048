"""Registered and curated environments, and what a job's ``environment:`` resolves to.

An environment version is an Azure-shaped document (``name``, ``version``,
``image``, ``conda_file``, ``description``, ``tags``; Lapis adds ``pip`` and
``python`` shorthands) reduced to an :class:`EnvironmentSpec`. Only the spec is
built — with uv, into ``<envs_root>/<digest>`` — so two versions, or a
registered and an inline environment, that install the same things share one
folder. ``image`` is recorded for packaging, never pulled: an image-only
environment runs in Lapis' own interpreter (kind ``system``).

Curated environments ship as YAML files in ``curated/``; they are read at
start-up, listed with the registered ones and cannot be overwritten. Builds are
recorded per digest in ``environment_builds`` ("Building", "Succeeded",
"Failed"); the builder's ``.lapis-ready`` marker is the ground truth, so a
folder built by a job (or before a restart) reports Succeeded without a row.
"""

from __future__ import annotations

import builtins
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Protocol

from lapis.api import environments as api
from lapis.environments.builder import LOG_NAME, READY, EnvironmentBuilder, EnvironmentBuildError
from lapis.environments.resolved import ResolvedEnvironment, docker_environment
from lapis.errors import (
    InvalidParameterValue,
    LapisError,
    ResourceAlreadyExists,
    ResourceDoesNotExist,
)
from lapis.specs.environment import EnvironmentSpec, from_conda, from_mlflow_model
from lapis.specs.environment_document import (
    BUILD_STATUSES,
    Alias,
    Definition,
    failure_reason,
    load_aliases,
    load_curated,
    parse_definition,
    read_conda,
)
from lapis.specs.job import EnvironmentRef
from lapis.specs.yaml_lines import Located, load, suggest
from lapis.store.sql.engine import Database
from lapis.store.sql.environments import EnvironmentStore
from lapis.util import now_ms

__all__ = ["BUILD_STATUSES", "EnvironmentService", "ResolvedEnvironment", "failure_reason"]


class ModelFiles(Protocol):
    """Where a model's environment files come from (the model registry's service)."""

    def mlflow_files(self, name: str, version: object) -> dict[str, str]: ...


class EnvironmentService:
    def __init__(self, db: Database, envs_root: Path) -> None:
        self.db = db
        self.envs_root = envs_root
        self.store = EnvironmentStore(db)
        self._builder: EnvironmentBuilder | None = None
        self._curated = {d.name: (d, path) for d, path in load_curated()}
        self._aliases = load_aliases()

    @property
    def builder(self) -> EnvironmentBuilder:
        if self._builder is None:
            self._builder = EnvironmentBuilder(self.envs_root)
        return self._builder

    # --- registering ----------------------------------------------------------------
    def create(
        self,
        doc: dict[str, Any] | str,
        source: str = "<request>",
        principal_name: str | None = None,
        overrides: dict[str, Any] | None = None,
    ) -> api.EnvironmentOut:
        """Register a version. ``doc`` is the parsed document or its YAML text (for line
        numbers); ``overrides`` (name, version, an inlined conda_file) replace its keys."""
        located = load(doc, source) if isinstance(doc, str) else Located(dict(doc), source)
        if isinstance(located.data, dict):
            located.data.update({k: v for k, v in (overrides or {}).items() if v is not None})
        d = parse_definition(located)
        if d.name in self._curated:
            raise InvalidParameterValue(
                f"Environment '{d.name}' is curated (shipped with Lapis) and cannot be "
                "overwritten; register yours under another name"
            )
        for _attempt in range(5):
            version = d.version or str(self.store.next_version(d.name))
            try:
                self.store.insert(self._row(d, version, principal_name))
                break
            except ResourceAlreadyExists:
                if d.version is not None:
                    raise  # an explicit version: the user's duplicate
        else:  # lost the race for the next number five times in a row
            raise ResourceAlreadyExists(f"Could not allocate a version of '{d.name}'; retry")
        return self.get(d.name, version)

    @staticmethod
    def _row(d: Definition, version: str, principal_name: str | None) -> dict[str, Any]:
        spec = d.spec
        stored = {**(spec or EnvironmentSpec()).canonical(), "channels": []}
        if spec is not None:
            stored["channels"] = list(spec.channels)
        stored["kind"] = "built" if spec is not None else "system"
        return {
            "name": d.name,
            "version": version,
            "version_number": int(version) if version.isdigit() else None,
            "description": d.description,
            "image": d.image,
            "conda_file": d.conda_text,
            "spec": json.dumps(stored),
            "digest": spec.digest if spec is not None else "",
            "tags": json.dumps(d.tags),
            "archived": False,
            "created_by": principal_name,
            "created_at": now_ms(),
        }

    def archive(self, name: str, version: str) -> api.EnvironmentOut:
        """Hide a version from ``list`` and ``@latest``; jobs naming it exactly still work."""
        self._refuse_curated(name, "archived")
        if not self.store.set_archived(name, version, True):
            self.get(name, version)  # raises the helpful not-found error
        return self.get(name, version)

    def _refuse_curated(self, name: str, verb: str) -> None:
        if name in self._curated:
            raise InvalidParameterValue(
                f"Environment '{name}' is curated (shipped with Lapis) and cannot be {verb}"
            )

    # --- reading --------------------------------------------------------------------
    def get(
        self,
        name: str,
        version: str | None = None,
        label: str | None = None,
        registry: str | None = None,
    ) -> api.EnvironmentOut:
        """One version; no version (or ``label='latest'``) means the highest number.

        An Azure ML curated name (``AzureML-sklearn-1.5``, any version or label) that is not
        a name of this workspace resolves to the Lapis curated environment standing in for
        it, as does any name in Azure's public registry (``registry='azureml'``)."""
        if version == "latest":
            version, label = None, "latest"
        if registry is not None:
            return self._from_registry(name, version, label, registry)
        if name not in self._curated and not self.store.versions(name):
            alias = self._alias(name)
            if alias is not None:
                return self._stand_in(name, version, label, alias)
        if version == "latest":
            version, label = None, "latest"
        if label not in (None, "latest"):
            raise InvalidParameterValue(f"Unknown label '@{label}': only @latest is supported")
        if version is not None and label is not None:
            raise InvalidParameterValue("Give a version or @latest, not both")
        if name in self._curated:
            d, _ = self._curated[name]
            if version not in (None, d.version):
                raise ResourceDoesNotExist(
                    f"Curated environment '{name}' has no version '{version}'; "
                    f"versions: {d.version}"
                )
            return self._curated_dict(d)
        row = self.store.latest(name) if version is None else self.store.get(name, version)
        if row is None:
            known = self.store.versions(name)
            if not known:
                raise ResourceDoesNotExist(f"Environment '{name}' does not exist{self._hint(name)}")
            if version is None:
                raise ResourceDoesNotExist(f"Environment '{name}' has only archived versions")
            listed = ", ".join(r["version"] for r in known)
            raise ResourceDoesNotExist(
                f"Environment '{name}' has no version '{version}'; versions: {listed}"
            )
        return self._dict(row)

    def _alias(self, name: str) -> Alias | None:
        return next((a for a in self._aliases if a.pattern.fullmatch(name)), None)

    def _stand_in(
        self, name: str, version: str | None, label: str | None, alias: Alias
    ) -> api.EnvironmentOut:
        given = name + (f":{version}" if version else f"@{label}" if label else "")
        if alias.use is None:
            raise ResourceDoesNotExist(
                f"'{given}' is an Azure ML curated environment with no stand-in here: {alias.note}"
            )
        out = self._curated_dict(self._curated[alias.use][0])
        out.stands_in_for = given
        out.note = alias.note
        return out

    def _from_registry(
        self, name: str, version: str | None, label: str | None, registry: str
    ) -> api.EnvironmentOut:
        where = f"azureml://registries/{registry}/environments/{name}"
        if registry.lower() != "azureml":
            raise ResourceDoesNotExist(
                f"{where}: only Azure's public registry (azureml) is known here, through "
                "Lapis' curated environments; register the environment in this workspace"
            )
        alias = self._alias(name)
        if alias is None:
            known = ", ".join(a.example for a in self._aliases if a.use)
            raise ResourceDoesNotExist(
                f"{where}: no Lapis curated environment stands in for '{name}'"
                f"{suggest(name, [a.example for a in self._aliases])}; curated stand-ins "
                f"exist for: {known}"
            )
        return self._stand_in(name, version, label, alias)

    def azure_names(self, curated: str) -> list[str]:
        """Azure's curated names a Lapis curated environment stands in for (examples)."""
        return [a.example for a in self._aliases if a.use == curated]

    def _hint(self, name: str) -> str:
        names = sorted(set(self.store.names()) | set(self._curated))
        azure = [a.example for a in self._aliases if a.use]
        hint = suggest(name, [*names, *azure])
        if hint or not names:
            return hint
        shown = ", ".join(names[:10]) + (", …" if len(names) > 10 else "")
        return f"; known environments: {shown}"

    def list(self) -> list[api.EnvironmentOut]:
        """The latest version of every environment, curated ones included, by name."""
        rows = [self._curated_dict(d) for d, _ in self._curated.values()]
        rows += [self._dict(r) for r in self.store.list_latest()]
        return sorted(rows, key=lambda e: (e.name, not e.curated))

    def versions(self, name: str) -> builtins.list[api.EnvironmentOut]:
        """Every version of ``name``, newest first (archived ones included, flagged)."""
        if name in self._curated:
            return [self._curated_dict(self._curated[name][0])]
        rows = self.store.versions(name)
        if not rows:
            raise ResourceDoesNotExist(f"Environment '{name}' does not exist{self._hint(name)}")
        return [self._dict(r) for r in rows]

    def _dict(self, row: dict[str, Any], curated: bool = False) -> api.EnvironmentOut:
        stored = json.loads(row["spec"])
        kind = stored.pop("kind", "built")
        digest = row["digest"] or None
        return api.EnvironmentOut(
            name=row["name"],
            version=row["version"],
            kind=kind,
            description=row["description"],
            image=row["image"],
            conda_file=row["conda_file"],
            spec=stored,
            digest=digest,
            tags=json.loads(row["tags"] or "{}"),
            curated=curated,
            archived=bool(row["archived"]),
            created_at=row["created_at"],
            created_by=row["created_by"],
            build=self.build_status(digest) if digest else None,
        )

    def _curated_dict(self, d: Definition) -> api.EnvironmentOut:
        row = self._row(d, d.version or "1", "lapis")
        out = self._dict({**row, "created_at": None}, curated=True)
        out.azure_names = self.azure_names(d.name)
        return out

    # --- resolving for jobs ---------------------------------------------------------
    def resolve(self, ref: EnvironmentRef) -> ResolvedEnvironment:
        """What a job's ``environment:`` means; unknown names raise with a did-you-mean."""
        if ref.kind == "system":
            return ResolvedEnvironment("system", None, None, "system", ref.image)
        if ref.kind == "inline":
            if ref.conda_file is None:
                label = f"image {ref.image} (runs in Lapis' interpreter)" if ref.image else "system"
                return ResolvedEnvironment("system", None, None, label, ref.image)
            doc = Located({"conda_file": ref.conda_file}, "environment")
            hint = "the job's conda_file path must be read relative to the job file first"
            _, conda = read_conda(doc, ref.conda_file, hint)
            spec = from_conda(conda, source="environment.conda_file")
            return ResolvedEnvironment(
                "built", spec, spec.digest, f"inline {spec.digest[:8]}", ref.image
            )
        if ref.kind != "registered" or not ref.name:
            raise InvalidParameterValue(f"Cannot resolve environment reference {ref!r}")
        env = self.get(ref.name, ref.version, ref.label, ref.registry)
        return self._resolved(env)

    def resolve_sent(
        self, ref: EnvironmentRef, sent: Mapping[str, Any], source: str
    ) -> tuple[EnvironmentRef, ResolvedEnvironment]:
        """Resolve a reference whose files the client read and sent along.

        The server never reads the caller's files: ``environment: file:env.yml``
        arrives as ``sent["environment_file"]`` and a ``conda_file`` path as
        ``sent["conda_file_text"]`` (the CLI and SDK send both). Returns the
        reference with those texts in place — what jobs, deployments and batch
        deployments store — and what it resolves to; messages start with ``source``.
        """
        if ref.kind == "file":
            given = sent.get("environment_file")
            if isinstance(given, dict) and given.get("build"):
                ref = EnvironmentRef("inline", build=dict(given["build"]))
                given = None
        if ref.kind == "inline" and ref.build is not None:
            return ref, docker_environment(sent.get("build_context"), source)
        if ref.kind == "file":
            if not isinstance(given, dict) or not (given.get("image") or given.get("conda_file")):
                raise InvalidParameterValue(
                    f"{source}: environment: file:{ref.name} must be read by the client and "
                    "sent as 'environment_file' with 'image' and/or 'conda_file' (the CLI and "
                    "SDK do this)"
                )
            ref = EnvironmentRef(
                "inline", image=given.get("image"), conda_file=given.get("conda_file")
            )
        if ref.kind == "inline" and isinstance(ref.conda_file, str) and "\n" not in ref.conda_file:
            text = sent.get("conda_file_text")
            if not isinstance(text, str):
                raise InvalidParameterValue(
                    f"{source}: environment.conda_file: '{ref.conda_file}' is a path; send its "
                    "text as 'conda_file_text' (the CLI and SDK do this)"
                )
            ref = EnvironmentRef(
                "inline", name=ref.name, version=ref.version, image=ref.image, conda_file=text
            )
        try:
            return ref, self.resolve(ref)
        except InvalidParameterValue as exc:
            raise type(exc)(f"{source}: environment: {exc.message}") from None
        except ResourceDoesNotExist as exc:
            raise ResourceDoesNotExist(f"{source}: environment: {exc.message}") from None

    @staticmethod
    def _resolved(env: api.EnvironmentOut) -> ResolvedEnvironment:
        label = f"{env.name}:{env.version}"
        if env.stands_in_for:  # what the job asked for stays visible in its records
            label += f" (for {env.stands_in_for})"
        ref = f"{env.name}:{env.version}"
        if env.kind == "system":
            return ResolvedEnvironment("system", None, None, label, env.image, ref)
        s = env.spec
        spec = EnvironmentSpec(
            python=s.get("python"),
            requirements=tuple(s.get("requirements") or ()),
            conda_only=tuple(s.get("conda") or ()),
            image=env.image,
            channels=tuple(s.get("channels") or ()),
        )
        return ResolvedEnvironment("built", spec, spec.digest, label, env.image, ref)

    def for_model(
        self, models: ModelFiles, model: Mapping[str, str], source: str
    ) -> ResolvedEnvironment:
        """What a no-code MLflow deployment of ``model`` ({name, version}) runs in; errors
        start with ``source`` and the model's label."""
        label = f"model {model['name']}:{model['version']}"
        try:
            resolved = self.for_mlflow_model(
                models.mlflow_files(model["name"], model["version"]), label
            )
        except InvalidParameterValue as exc:
            raise InvalidParameterValue(f"{source}: {label}: {exc.message}") from None
        assert resolved.spec is not None
        return resolved

    def for_mlflow_model(self, files: Mapping[str, str], label: str) -> ResolvedEnvironment:
        """The environment an MLflow model says it needs (as Azure builds for a no-code
        deployment): its ``conda.yaml``, else ``python_env.yaml`` with ``requirements.txt``,
        else ``requirements.txt``; MLflow and pandas are added when missing, since the
        scoring server loads the model with ``mlflow.pyfunc``."""
        spec, used = from_mlflow_model(files)
        return ResolvedEnvironment("built", spec, spec.digest, f"{label} ({used})")

    # --- building -------------------------------------------------------------------
    def log_path(self, digest: str) -> Path:
        return self.envs_root / f"{digest}.{LOG_NAME}"

    def record_build(
        self,
        digest: str,
        status: str,
        error: str | None = None,
        log_path: str | Path | None = None,
        python: str | Path | None = None,
    ) -> None:
        """Upsert the build row of ``digest`` (the job service calls this around its builds)."""
        if status not in BUILD_STATUSES:
            raise InvalidParameterValue(f"Build status must be one of {', '.join(BUILD_STATUSES)}")
        values: dict[str, Any] = {"digest": digest, "status": status, "error": error}
        values["log_path"] = str(log_path) if log_path else str(self.log_path(digest))
        if python is not None:
            values["python"] = str(python)
        if status == "Building":
            values.update(started_at=now_ms(), finished_at=None)
        else:
            values["finished_at"] = now_ms()
        self.store.upsert_build(values)

    def build_status(self, digest: str) -> api.BuildStatus | None:
        row = self.store.get_build(digest)
        ready = (self.envs_root / digest / READY).exists()
        if row is None and not ready:
            return None
        return api.BuildStatus(
            status="Succeeded" if ready else row["status"] if row else None,
            error=None if ready or row is None else row["error"],
            log_path=row["log_path"] if row else str(self.log_path(digest)),
            python=(row or {}).get("python")
            or (str(self.envs_root / digest / "bin" / "python") if ready else None),
            path=str(self.envs_root / digest) if ready else None,
            started_at=row["started_at"] if row else None,
            finished_at=row["finished_at"] if row else None,
        )

    def build(self, name: str, version: str | None = None) -> api.BuildResult:
        """Build one version now (synchronously; seconds to minutes) and record the outcome."""
        env = self.get(name, version)
        resolved = self._resolved(env)
        if resolved.spec is None or resolved.digest is None:
            return api.BuildResult(
                name=env.name,
                version=env.version,
                kind=resolved.kind,
                status="Succeeded",
                cache_hit=True,
                seconds=0.0,
                message="image-only environment: nothing to build; jobs run in Lapis' "
                "own interpreter (the image is recorded for packaging)",
            )
        digest = resolved.digest
        log_path = self.log_path(digest)
        if not (self.envs_root / digest / READY).exists():
            self.record_build(digest, "Building", log_path=log_path)
        try:
            built = self.builder.ensure(resolved.spec)
        except LapisError as exc:
            text = log_path.read_text() if log_path.exists() else exc.message
            reason = failure_reason(text)
            self.record_build(digest, "Failed", error=reason, log_path=log_path)
            if isinstance(exc, EnvironmentBuildError):
                tail = "\n".join(text.splitlines()[-15:])
                raise EnvironmentBuildError(
                    f"Building environment {resolved.label} failed: {reason} "
                    f"(build log: {log_path})\n{tail}",
                    log_path=str(log_path),
                    reason=reason,
                ) from None
            raise
        self.record_build(digest, "Succeeded", log_path=log_path, python=built.python)
        return api.BuildResult(
            name=env.name,
            version=env.version,
            kind=resolved.kind,
            status="Succeeded",
            digest=digest,
            cache_hit=built.cache_hit,
            seconds=round(built.seconds, 3),
            path=str(built.path),
            python=str(built.python),
            log_path=str(log_path),
        )

    def build_log(self, name: str, version: str | None = None) -> str:
        env = self.get(name, version)
        label = f"{env.name}:{env.version}"
        if not env.digest:
            raise ResourceDoesNotExist(
                f"Environment '{label}' is image-only: it is never built, so it has no build log"
            )
        path = self.log_path(env.digest)
        if not path.exists():
            raise ResourceDoesNotExist(
                f"Environment '{label}' has no build log yet: it has not been built on this "
                f"server (run `lapis environment build {label}`)"
            )
        return path.read_text(errors="replace")
