"""Environment specs normalise before hashing, so equal installs share one cached env."""

from __future__ import annotations

from pathlib import Path

import pytest

from lapis.errors import InvalidParameterValue
from lapis.specs.environment import from_conda, from_requirements

CONDA = """\
name: sk
channels: [conda-forge]
dependencies:
  - python=3.11
  - pip
  - scikit-learn=1.5
  - numpy
  - pip:
      - mlflow==3.17.2
      - Pandas>=2.0  # comment
"""


def test_conda_file_maps_to_pypi_requirements() -> None:
    spec = from_conda(CONDA)
    assert spec.python == "3.11"
    assert sorted(spec.requirements) == [
        "mlflow==3.17.2",
        "numpy",
        "pandas>=2.0",
        "scikit-learn==1.5.*",
    ]
    assert spec.channels == ("conda-forge",)


def test_equivalent_specs_hash_the_same() -> None:
    a = from_requirements(["Scikit_Learn==1.5.2", "numpy"], python="3.11.7")
    b = from_requirements("numpy\nscikit-learn == 1.5.2\nnumpy\n", python="3.11")
    assert a.digest == b.digest
    c = from_requirements(["scikit-learn==1.5.1", "numpy"], python="3.11")
    assert c.digest != a.digest
    assert (
        from_requirements(["numpy"], python="3.12").digest
        != from_requirements(["numpy"], python="3.11").digest
    )


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("dependencies: [python=3.11, {conda: x}]", "only a 'pip:' list"),
        ("[1, 2]", "must be a mapping"),
        ("dependencies: {a: 1}", "'dependencies' must be a list"),
        ("dependencies: [python=three]", "Invalid Python version"),
        ("dependencies: [\n", "malformed YAML"),
    ],
)
def test_bad_conda_files(text: str, fragment: str) -> None:
    with pytest.raises(InvalidParameterValue, match=fragment):
        from_conda(text)


def test_requirement_options_are_refused() -> None:
    with pytest.raises(InvalidParameterValue, match="--index-url"):
        from_requirements(["--index-url http://x", "numpy"])


def test_pip_wheel_folders_carry_over_to_uv(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """An environment builds from the wheel folders pip uses here (a local torch+cpu)."""
    from lapis.environments.builder import pip_sources

    monkeypatch.delenv("UV_FIND_LINKS", raising=False)
    monkeypatch.setenv("PIP_FIND_LINKS", "/wheels/a /wheels/b")
    assert pip_sources() == {"UV_FIND_LINKS": "/wheels/a,/wheels/b"}
    monkeypatch.delenv("PIP_FIND_LINKS")
    config = tmp_path / "pip.conf"
    config.write_text("[global]\nfind-links = /wheels/c\nextra-index-url = file:///m\n")
    monkeypatch.setenv("PIP_CONFIG_FILE", str(config))
    assert pip_sources() == {"UV_FIND_LINKS": "/wheels/c"}  # indexes never carry over
    monkeypatch.setenv("UV_FIND_LINKS", "/mine")
    assert pip_sources() == {}  # what uv is told directly wins
