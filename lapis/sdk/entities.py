"""What SDK users build and get back: ``command(...)`` jobs, ``Input``/``Output``, views.

The builder side mirrors ``azure.ai.ml``: ``command(...)`` returns a
``CommandJob`` that holds exactly what a job YAML file would. It is turned into
that YAML document (``to_dict``) and submitted as text, so the server parses
and checks an SDK job with the same code, and the same messages, as a file
given to ``lapis job create``. Relative paths (``code``, input paths) are taken
from the caller's current directory, as Azure's SDK does.

What the server answers (``Job``, ``Compute``…) lives in ``lapis.sdk.views``;
environments, data and compute entities in ``lapis.sdk.assets``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lapis.sdk.assets import Environment
from lapis.sdk.views import Compute, Job, clean

_LITERAL_TYPES = {"string", "integer", "number", "boolean"}


def _absolute(path: str | Path, base_dir: Path) -> str:
    """A local path made absolute against ``base_dir``; URIs and ``azureml:`` refs unchanged."""
    text = str(path)
    if "://" in text or text.startswith("azureml:"):
        return text
    p = Path(text).expanduser()
    return str(p if p.is_absolute() else (base_dir / p).resolve())


@dataclass
class Input:
    """A job input: a file or folder (``uri_file``/``uri_folder``…) or a typed literal."""

    type: str = "uri_folder"
    path: str | Path | None = None
    default: Any = None
    optional: bool | None = None
    mode: str | None = None
    description: str | None = None

    def _to_dict(self, base_dir: Path) -> dict[str, Any]:
        out: dict[str, Any] = {"type": self.type}
        if self.path is not None:
            out["path"] = _absolute(self.path, base_dir)
        if self.default is not None:
            out["default"] = self.default
        if self.optional is not None:
            out["optional"] = self.optional
        if self.mode is not None:
            out["mode"] = self.mode
        if self.description is not None:
            out["description"] = self.description
        return out


@dataclass
class Output:
    """A job output: kept with the job (``named-outputs/<name>/``) or, with a datastore
    ``path``, written there; with ``name``, registered as a data asset."""

    type: str = "uri_folder"
    path: str | None = None  # azureml://datastores/<ds>/paths/<p>: written there
    mode: str | None = None
    description: str | None = None
    name: str | None = None  # registered as this data asset when the job completes
    version: str | None = None

    def _to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"type": self.type}
        for key in ("path", "mode", "description", "name", "version"):
            value = getattr(self, key)
            if value is not None:
                out[key] = value
        return out


@dataclass
class PyTorchDistribution:
    """``distribution: {type: pytorch}``: processes per node, with PyTorch's variables."""

    process_count_per_instance: int = 1
    type: str = "pytorch"

    def _to_dict(self) -> dict[str, Any]:
        return {"type": self.type, "process_count_per_instance": self.process_count_per_instance}


@dataclass
class MpiDistribution(PyTorchDistribution):
    """``distribution: {type: mpi}``: processes per node, with Open MPI's rank variables."""

    type: str = "mpi"


@dataclass
class TensorFlowDistribution:
    """``distribution: {type: tensorflow}``: workers and parameter servers (``TF_CONFIG``)."""

    worker_count: int | None = None
    parameter_server_count: int = 0
    type: str = "tensorflow"

    def _to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"type": self.type}
        out["parameter_server_count"] = self.parameter_server_count
        if self.worker_count is not None:
            out["worker_count"] = self.worker_count
        return out


Distribution = PyTorchDistribution | TensorFlowDistribution | dict[str, Any]


@dataclass
class CommandJob:
    """A command job as built in code; ``to_dict`` gives its Azure ML YAML document."""

    command: str
    code: str | Path | None = None
    inputs: dict[str, Any] = field(default_factory=dict)
    outputs: dict[str, Output | None] = field(default_factory=dict)
    environment: str | dict[str, Any] | Environment | None = None
    compute: str | None = None
    experiment_name: str | None = None
    display_name: str | None = None
    name: str | None = None
    description: str | None = None
    tags: dict[str, str] = field(default_factory=dict)
    environment_variables: dict[str, str] = field(default_factory=dict)
    timeout: int | None = None
    instance_count: int | None = None
    distribution: Distribution | None = None

    def __call__(self, **inputs: Any) -> Any:
        """Inside a ``@pipeline`` function: a step running this command, its inputs
        updated with ``inputs`` (lapis/sdk/dsl.py)."""
        from lapis.sdk.dsl import _node_from_command

        return _node_from_command(self, inputs)

    def to_dict(self, base_dir: Path | None = None) -> dict[str, Any]:
        """The job YAML document, local paths made absolute against ``base_dir`` (cwd)."""
        base = (base_dir or Path.cwd()).resolve()
        doc: dict[str, Any] = {"type": "command"}
        for key in ("name", "display_name", "experiment_name", "description", "compute"):
            value = getattr(self, key)
            if value is not None:
                doc[key] = value
        if self.code is not None:
            doc["code"] = _absolute(self.code, base)
        doc["command"] = self.command
        if self.environment is not None:
            doc["environment"] = clean(self.environment)
        if self.inputs:
            doc["inputs"] = {k: _input_value(v, base) for k, v in self.inputs.items()}
        if self.outputs:
            doc["outputs"] = {
                k: (v._to_dict() if isinstance(v, Output) else v) for k, v in self.outputs.items()
            }
        if self.tags:
            doc["tags"] = {str(k): str(v) for k, v in self.tags.items()}
        if self.environment_variables:
            doc["environment_variables"] = {
                str(k): str(v) for k, v in self.environment_variables.items()
            }
        if self.timeout is not None:
            doc["limits"] = {"timeout": self.timeout}
        if self.instance_count is not None:
            doc["resources"] = {"instance_count": self.instance_count}
        if isinstance(self.distribution, dict):  # azure-ai-ml's {"type": "PyTorch", ...}
            doc["distribution"] = dict(self.distribution)
        elif self.distribution is not None:
            doc["distribution"] = self.distribution._to_dict()
        return doc


def _input_value(value: Any, base_dir: Path) -> Any:
    if isinstance(value, Input):
        return value._to_dict(base_dir)
    if hasattr(value, "_as_field"):  # a Data or a Model given as the input itself
        return clean(value)
    if isinstance(value, Path):
        return str(value)
    return value  # a literal (int, float, bool, str) or an already-written mapping


def command(
    *,
    command: str,
    code: str | Path | None = None,
    inputs: dict[str, Any] | None = None,
    outputs: dict[str, Output | None] | None = None,
    environment: str | dict[str, Any] | Environment | None = None,
    compute: str | None = None,
    experiment_name: str | None = None,
    display_name: str | None = None,
    name: str | None = None,
    description: str | None = None,
    tags: dict[str, str] | None = None,
    environment_variables: dict[str, str] | None = None,
    timeout: int | None = None,
    instance_count: int | None = None,
    distribution: Distribution | None = None,
) -> CommandJob:
    """Build a command job, as ``azure.ai.ml.command`` does; submit it with
    ``MLClient.jobs.create_or_update``. ``timeout`` (seconds) becomes ``limits.timeout``."""
    return CommandJob(
        command=command,
        code=code,
        inputs=dict(inputs or {}),
        outputs=dict(outputs or {}),
        environment=environment,
        compute=compute,
        experiment_name=experiment_name,
        display_name=display_name,
        name=name,
        description=description,
        tags=dict(tags or {}),
        environment_variables=dict(environment_variables or {}),
        timeout=timeout,
        instance_count=instance_count,
        distribution=distribution,
    )


__all__ = [
    "CommandJob",
    "Compute",
    "Environment",
    "Input",
    "Job",
    "MpiDistribution",
    "Output",
    "PyTorchDistribution",
    "TensorFlowDistribution",
    "command",
]
