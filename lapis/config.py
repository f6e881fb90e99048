"""Workspace settings.

One typed object, read once from the environment (``LAPIS_`` prefix) and the
command line, then passed to whoever needs it. Nothing reads ``os.environ``
at import time, so tests can build as many differently-configured servers in
one process as they like.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field, replace
from pathlib import Path

DEFAULT_PORT = 8765


def default_home() -> Path:
    """``$LAPIS_HOME`` or ``~/.lapis``: the folder holding one workspace."""
    env = os.environ.get("LAPIS_HOME")
    return Path(env).expanduser() if env else Path.home() / ".lapis"


@dataclass(frozen=True)
class Settings:
    """Everything a workspace server needs to know about where it lives."""

    home: Path = field(default_factory=default_home)
    database_url: str | None = None
    artifact_root: str | None = None
    host: str = "127.0.0.1"
    port: int = DEFAULT_PORT
    # JSON bodies over this are refused with 413 before being read (streamed uploads
    # of artifacts, snapshots and model files are exempt).
    max_body_bytes: int = 32 * 1024 * 1024
    # Jobs run under a Landlock sandbox keeping the workspace home out of reach
    # (lapis/compute/sandbox.py); LAPIS_JOB_SANDBOX=off turns it off.
    job_sandbox: bool = True
    # A JupyterLab per Running compute instance (lapis/notebooks/lab.py); LAPIS_JUPYTERLAB=off
    # leaves instances as job queues (a headless server, CI), with their link saying so.
    jupyterlab: bool = True
    # Registry webhooks may call http URLs and private, loopback or link-local addresses
    # (receivers on the server's own network); off: https to public addresses only.
    webhooks_private: bool = False
    # Folders of this host that ``local`` datastores may name (LAPIS_LOCAL_DATASTORE_ROOTS,
    # separated by ':'): none by default, since a datastore's files are read by jobs and
    # the studio on behalf of whoever may use the datastore.
    local_datastore_roots: tuple[str, ...] = ()

    @classmethod
    def from_env(cls, **overrides: object) -> Settings:
        """Settings from ``LAPIS_*`` variables; explicit overrides win when not None."""
        base = cls(
            home=default_home(),
            database_url=os.environ.get("LAPIS_DATABASE_URL") or None,
            artifact_root=os.environ.get("LAPIS_ARTIFACT_ROOT") or None,
            host=os.environ.get("LAPIS_HOST", "127.0.0.1"),
            port=int(os.environ.get("LAPIS_PORT", DEFAULT_PORT)),
            max_body_bytes=int(float(os.environ.get("LAPIS_MAX_BODY_MB", "32")) * 2**20),
            job_sandbox=os.environ.get("LAPIS_JOB_SANDBOX", "on").lower() not in ("off", "0", "no"),
            jupyterlab=os.environ.get("LAPIS_JUPYTERLAB", "on").lower() not in ("off", "0", "no"),
            webhooks_private=os.environ.get("LAPIS_WEBHOOKS_PRIVATE", "").lower()
            in ("1", "on", "yes", "true"),
            local_datastore_roots=tuple(
                p for p in os.environ.get("LAPIS_LOCAL_DATASTORE_ROOTS", "").split(os.pathsep) if p
            ),
        )
        given = {k: v for k, v in overrides.items() if v is not None}
        if "home" in given:
            given["home"] = Path(str(given["home"])).expanduser()
        return replace(base, **given)  # type: ignore[arg-type]

    @property
    def resolved_database_url(self) -> str:
        return self.database_url or f"sqlite:///{(self.home / 'lapis.db').resolve()}"

    @property
    def resolved_artifact_root(self) -> str:
        return self.artifact_root or (self.home / "artifacts").resolve().as_uri()

    @property
    def credentials_path(self) -> Path:
        return self.home / "credentials.json"

    @property
    def server_info_path(self) -> Path:
        return self.home / "server.json"
