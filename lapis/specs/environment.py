"""Environment specs: conda YAML (with a pip section), requirements lists, pip lists.

Two specs that install the same thing must share one built environment, so a
spec is normalised before it is hashed: requirement names are canonicalised
(PEP 503), duplicates merged, order dropped, and the Python version reduced to
``major.minor``. The hash names the folder under ``$LAPIS_HOME/envs``.

Conda packages are mapped to PyPI requirements: ``pip`` and ``python`` are
handled by uv itself, and everything else is assumed to exist on PyPI under
the same name — except a known list of conda-only system packages (compilers'
runtimes, CUDA toolkits, R, C libraries), which are kept aside in
``conda_only`` so the builder can name them instead of failing with a
confusing pip resolution error.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from lapis.errors import InvalidParameterValue

_CONDA_VERSION = re.compile(
    r"^(?P<name>[A-Za-z0-9_.\-]+)\s*(?P<op>[=<>!~]{1,2})?\s*(?P<ver>[^=\s]*)"
)
_NAME = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._\-]*)")
_IGNORED_CONDA = {"pip", "python", "setuptools", "wheel"}
# Packages conda ships that are not Python distributions on PyPI (or whose PyPI
# namesake is something unrelated). Canonical names; ``_``-prefixed conda
# meta-packages (``_libgcc_mutex``) are conda-only too.
CONDA_ONLY = frozenset(
    {
        "blas",
        "bzip2",
        "ca-certificates",
        "cudatoolkit",
        "cudatoolkit-dev",
        "cudnn",
        "icu",
        "ld-impl-linux-64",
        "libblas",
        "libcblas",
        "libffi",
        "libgcc",
        "libgcc-ng",
        "libgfortran-ng",
        "libgomp",
        "liblapack",
        "libstdcxx-ng",
        "libuuid",
        "nccl",
        "ncurses",
        "openblas",
        "openssl",
        "r-base",
        "r-essentials",
        "readline",
        "sqlite",
        "tk",
        "xz",
        "zlib",
    }
)


def canonical_name(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _normalise_requirement(req: str) -> str:
    """``Scikit_Learn >= 1.5 ; python_version<'3.12'`` → ``scikit-learn>=1.5; python_version
    <'3.12'``: the name canonical, the specifier without spaces, an environment marker (after
    ``;``) with its words kept apart (``and``/``or`` need them)."""
    req = req.split("#", 1)[0].strip()
    req, sep, marker = req.partition(";")
    m = _NAME.match(req)
    if m is None:
        raise InvalidParameterValue(f"Invalid requirement '{req}'")
    rest = re.sub(r"\s+", "", req[m.end() :])
    marker = " ".join(marker.split())
    return canonical_name(m.group(1)) + rest + (f"; {marker}" if sep and marker else "")


@dataclass(frozen=True)
class EnvironmentSpec:
    """What to install: a Python version and PyPI requirements, plus conda leftovers to report."""

    python: str | None = None
    requirements: tuple[str, ...] = ()
    conda_only: tuple[str, ...] = ()
    image: str | None = None
    channels: tuple[str, ...] = field(default=())

    def canonical(self) -> dict[str, Any]:
        return {
            "python": self.python,
            "requirements": sorted(set(self.requirements)),
            "conda": sorted(set(self.conda_only)),
        }

    @property
    def digest(self) -> str:
        """Content hash of what gets installed (the image is recorded, not built here)."""
        blob = json.dumps(self.canonical(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(blob.encode()).hexdigest()


def _python_version(raw: str) -> str:
    m = re.match(r"^(\d+)\.(\d+)", raw.strip().lstrip("=<>~!"))
    if m is None:
        raise InvalidParameterValue(f"Invalid Python version '{raw}': expected X.Y")
    return f"{m.group(1)}.{m.group(2)}"


def from_requirements(lines: list[str] | str, python: str | None = None) -> EnvironmentSpec:
    if isinstance(lines, str):
        lines = lines.splitlines()
    reqs = []
    for line in lines:
        text = line.split("#", 1)[0].strip()
        if not text:
            continue
        if text.startswith("-"):
            raise InvalidParameterValue(
                f"Requirement option '{text}' is not supported; list packages only"
            )
        reqs.append(_normalise_requirement(text))
    return EnvironmentSpec(
        python=_python_version(python) if python else None, requirements=tuple(reqs)
    )


def from_conda(text: str | dict[str, Any], source: str = "conda.yml") -> EnvironmentSpec:
    """Parse a conda environment file; ``python=X.Y`` picks the interpreter."""
    from lapis.specs.yaml_lines import safe_load  # YAML only when there is text to read

    data = safe_load(text, source) if isinstance(text, str) else text
    if not isinstance(data, dict):
        raise InvalidParameterValue(f"{source}: a conda file must be a mapping with 'dependencies'")
    deps = data.get("dependencies") or []
    if not isinstance(deps, list):
        raise InvalidParameterValue(f"{source}: 'dependencies' must be a list")
    python: str | None = None
    reqs: list[str] = []
    conda_only: list[str] = []
    for dep in deps:
        if isinstance(dep, dict):
            pip = dep.get("pip")
            if set(dep) != {"pip"} or not isinstance(pip, list):
                raise InvalidParameterValue(
                    f"{source}: only a 'pip:' list may appear as a mapping in dependencies"
                )
            reqs += list(from_requirements([str(p) for p in pip]).requirements)
            continue
        m = _CONDA_VERSION.match(str(dep).split("::")[-1])
        if m is None:
            raise InvalidParameterValue(f"{source}: cannot read dependency '{dep}'")
        name, op, ver = m.group("name"), m.group("op"), m.group("ver")
        if name == "python":
            python = _python_version(ver) if ver else None
            continue
        if canonical_name(name) in _IGNORED_CONDA:
            continue
        if canonical_name(name) in CONDA_ONLY or name.startswith("_"):
            conda_only.append(name)
            continue
        if ver:
            # conda's "=1.5" means "1.5.*"; "==" is exact, as in pip.
            pin = (
                f"=={ver}" if op == "==" else (f"=={ver}.*" if op in (None, "=") else f"{op}{ver}")
            )
            reqs.append(canonical_name(name) + pin.replace(".*.*", ".*"))
        else:
            reqs.append(canonical_name(name))
    channels = tuple(str(c) for c in data.get("channels") or [])
    return EnvironmentSpec(
        python=python,
        requirements=tuple(reqs),
        conda_only=tuple(conda_only),
        channels=channels,
    )


MLFLOW_ENV_FILES = ("conda.yaml", "python_env.yaml", "requirements.txt")
SCORING_NEEDS = ("mlflow", "pandas")  # what the scoring server imports to serve a pyfunc


def from_mlflow_model(files: Mapping[str, str]) -> tuple[EnvironmentSpec, str]:
    """What an MLflow model's own files ask for, and which file said it.

    ``files`` maps the names in :data:`MLFLOW_ENV_FILES` found beside the model's
    ``MLmodel`` to their text. ``conda.yaml`` wins (Azure builds no-code deployments from
    it), then ``python_env.yaml`` (its ``python:`` and the ``requirements.txt`` it
    points at), then a bare ``requirements.txt``. ``mlflow`` and ``pandas`` are added
    when the model does not list them, because the scoring server needs both.
    """
    if "conda.yaml" in files:
        spec, used = from_conda(files["conda.yaml"], source="conda.yaml"), "conda.yaml"
    elif "requirements.txt" in files:
        python = None
        used = "requirements.txt"
        if "python_env.yaml" in files:
            from lapis.specs.yaml_lines import safe_load

            meta = safe_load(files["python_env.yaml"], "python_env.yaml")
            if isinstance(meta, dict) and meta.get("python"):
                python = str(meta["python"])
            used = "python_env.yaml"
        spec = from_requirements(files["requirements.txt"], python=python)
    else:
        raise InvalidParameterValue(
            "the MLflow model has no conda.yaml, python_env.yaml or requirements.txt beside "
            "its MLmodel: give the deployment an environment"
        )
    have = set()
    for requirement in spec.requirements:
        m = _NAME.match(requirement)
        if m is not None:
            have.add(canonical_name(m.group(1)))
    if "mlflow-skinny" in have:
        have.add("mlflow")
    extra = [p for p in SCORING_NEEDS if p not in have]
    return replace(spec, requirements=spec.requirements + tuple(extra)), used
