"""Wire models of the job routes (``/api/v1/jobs``, ``/api/v1/snapshots``)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel


class JobEventOut(BaseModel):
    status: str
    time: int
    reason: str | None


class JobOut(BaseModel):
    name: str
    type: str
    display_name: str
    status: str
    status_reason: str | None
    run_id: str
    experiment_id: str
    experiment_name: str | None
    compute: str
    command: str | None
    description: str | None
    tags: dict[str, Any]
    environment: str | None
    environment_digest: str | None
    image: str | None
    code: dict[str, Any] | None
    inputs: dict[str, Any]
    outputs: dict[str, Any]
    environment_variables: dict[str, Any]
    timeout_seconds: int | None
    exit_code: int | None
    created_by: str | None
    created_at: int
    start_time: int | None
    end_time: int | None
    terminal: bool
    events: list[JobEventOut]
    services: list[dict[str, Any]] | None = None  # an interactive job's tools (services:)


class JobList(BaseModel):
    jobs: list[JobOut]


class JobLogs(BaseModel):
    """Log text after the cursor given, and the cursor to ask from next."""

    data: str
    cursor: str
    status: str
    status_reason: str | None
    terminal: bool


class JobFile(BaseModel):
    path: str
    size: int | None


class JobFiles(BaseModel):
    root: str
    files: list[JobFile]
    outputs: list[str]
    # outputs kept on a datastore (by default workspaceblobstore's azureml/<job>/<output>/),
    # with the URI each was written to: their files come from /jobs/{name}/outputs/{o}/files
    stored_outputs: dict[str, str] = {}


class JobOutputFiles(BaseModel):
    job: str
    output: str
    uri: str | None = None
    files: list[JobFile]


class SnapshotStored(BaseModel):
    digest: str
    stored: bool  # False: the server had it already
    files: int | None = None


class SnapshotRef(BaseModel):
    """The code snapshot a submission names (uploaded first, by digest)."""

    digest: str
    git_commit: str | None = None
    git_dirty: bool | None = None
    files: int | None = None
    bytes: int | None = None


class SubmitJob(BaseModel):
    """``POST /api/v1/jobs``: the job file's text and what the client read for it.

    The server never reads the submitter's files: the code arrives as a snapshot,
    an ``environment: file:…`` document and a ``conda_file`` as their contents.
    """

    yaml: str
    source: str = "<job>"
    overrides: list[str] = []
    base_dir: str | None = None  # the job file's folder on the client (for messages, inputs)
    snapshot: SnapshotRef | None = None
    environment_file: dict[str, Any] | None = None
    conda_file_text: str | None = None
    # a Docker build context, uploaded as a snapshot: {"digest", "dockerfile_path"}
    build_context: dict[str, str] | None = None

    def sent_files(self) -> dict[str, Any]:
        """What ``EnvironmentService.resolve_sent`` reads."""
        return {
            "environment_file": self.environment_file,
            "conda_file_text": self.conda_file_text,
            "build_context": self.build_context,
        }
