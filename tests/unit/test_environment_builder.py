"""Real uv builds: first use builds, second is a cache hit, concurrent users build once."""

from __future__ import annotations

import sys
import threading
from pathlib import Path

import pytest

from lapis.environments.builder import BuiltEnvironment, EnvironmentBuilder, EnvironmentBuildError
from lapis.errors import InvalidParameterValue
from lapis.specs.environment import EnvironmentSpec, from_requirements

HOST_PYTHON = f"{sys.version_info.major}.{sys.version_info.minor}"


@pytest.fixture
def builder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> EnvironmentBuilder:
    monkeypatch.setenv("UV_CACHE_DIR", str(tmp_path / "uv-cache"))
    return EnvironmentBuilder(tmp_path / "envs")


@pytest.mark.timeout(180)
def test_build_then_cache_hit(builder: EnvironmentBuilder) -> None:
    import subprocess

    spec = from_requirements(["six"], python=HOST_PYTHON)
    lines: list[str] = []
    first = builder.ensure(spec, log=lines.append)
    assert not first.cache_hit and first.path.name == spec.digest
    assert any("six" in line for line in lines)
    out = subprocess.run(
        [str(first.python), "-c", "import six; print(six.__name__)"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert out.stdout.strip() == "six"
    assert (first.path / "build.log").read_text()
    second = builder.ensure(from_requirements(["Six"], python=HOST_PYTHON))
    assert second.cache_hit and second.path == first.path


@pytest.mark.timeout(180)
def test_concurrent_users_build_once(builder: EnvironmentBuilder) -> None:
    spec = from_requirements(["six"], python=HOST_PYTHON)
    results: list[BuiltEnvironment] = []
    threads = [
        threading.Thread(target=lambda: results.append(builder.ensure(spec))) for _ in range(2)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(r.cache_hit for r in results) == [False, True]


@pytest.mark.timeout(180)
def test_broken_spec_fails_with_its_build_log(builder: EnvironmentBuilder) -> None:
    spec = from_requirements(["lapis-test-no-such-package-4f2a"], python=HOST_PYTHON)
    with pytest.raises(EnvironmentBuildError) as err:
        builder.ensure(spec)
    assert "lapis-test-no-such-package-4f2a" in err.value.message
    assert not (builder.path_for(spec) / ".lapis-ready").exists()


def test_missing_interpreter_and_conda_only_packages(builder: EnvironmentBuilder) -> None:
    with pytest.raises(InvalidParameterValue, match=r"Python 2\.1 is not installed"):
        builder.ensure(from_requirements([], python="2.1"))
    with pytest.raises(EnvironmentBuildError, match="cudatoolkit"):
        builder.ensure(EnvironmentSpec(conda_only=("cudatoolkit",)))
