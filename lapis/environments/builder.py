"""Building environments with uv, once per spec.

An environment lives in ``<root>/<digest>`` and is usable only once its
``.lapis-ready`` marker exists. A build holds an exclusive ``flock`` on
``<digest>.lock``: a second job needing the same new environment waits on the
lock, then finds the marker and reuses the result — one build, however many
jobs ask. uv is told never to download a Python: ``python=X.Y`` must name an
interpreter this host has, and the error lists the ones it does.

Every environment has its own ``pip`` (``uv venv --seed``), so a job that runs
``pip install x`` installs into its environment — never into the host's Python,
which ``pip`` on ``PATH`` would otherwise be. The ``system`` environment is not
Lapis' interpreter itself but a *layered* one (:meth:`EnvironmentBuilder.layered`):
a thin virtual environment made once per base interpreter whose ``.pth`` file
puts Lapis' packages after its own, so a job sees everything Lapis has and its
installs land in the thin layer.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import shutil
import subprocess
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from lapis.errors import InvalidParameterValue, LapisError

if TYPE_CHECKING:  # a job's supervisor imports this module: keep its start-up light
    from lapis.specs.environment import EnvironmentSpec

READY = ".lapis-ready"
# Prints an interpreter's own site-packages first, then its other import folders.
_SITE_PATHS = (
    "import site, sys, sysconfig; p = sysconfig.get_paths(); "
    "print('\\n'.join([p['purelib'], p['platlib'], *site.getsitepackages(), "
    "*[x for x in sys.path if x.endswith('site-packages')]]))"
)
LOG_NAME = "build.log"


class EnvironmentBuildError(LapisError):
    error_code = "ENVIRONMENT_BUILD_FAILED"
    http_status = 400


@dataclass(frozen=True)
class BuiltEnvironment:
    digest: str
    path: Path
    python: Path
    cache_hit: bool
    seconds: float


def uv_binary() -> str:
    try:
        from uv import find_uv_bin

        return str(find_uv_bin())
    except (ImportError, FileNotFoundError):
        found = shutil.which("uv")
        if found is None:
            raise LapisError("uv is not installed: `pip install uv` (a Lapis dependency)") from None
        return found


@contextmanager
def _locked(path: Path) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


# Only pip's wheel folders carry over: they add candidates. Indexes would not: uv takes a
# package from the first index that has it, so a mirror listed for pip could pin uv to
# older releases than the ones it resolves today.
_PIP_TO_UV = {"find-links": "UV_FIND_LINKS"}


def pip_sources() -> dict[str, str]:
    """pip's wheel folders on this machine (``PIP_FIND_LINKS``, then pip's config files)
    as uv's: an environment must build from the same local wheels as ``pip install`` does
    (a ``torch+cpu`` wheel that no index has). What uv is told directly wins."""
    import configparser

    found: dict[str, str] = {}
    parser = configparser.ConfigParser()
    home = Path.home()
    parser.read([
        "/etc/pip.conf", "/etc/xdg/pip/pip.conf",
        str(home / ".pip" / "pip.conf"), str(home / ".config" / "pip" / "pip.conf"),
        os.environ.get("PIP_CONFIG_FILE", ""),
    ])  # fmt: skip
    for key, uv_key in _PIP_TO_UV.items():
        value = os.environ.get(f"PIP_{key.upper().replace('-', '_')}")
        if value is None and parser.has_option("global", key):
            value = parser.get("global", key)
        if value and uv_key not in os.environ:
            parts = value.split()
            found[uv_key] = ",".join(parts)  # uv takes them comma-separated
    return found


class EnvironmentBuilder:
    def __init__(self, root: Path, uv: str | None = None) -> None:
        self.root = root
        self.uv = uv or uv_binary()

    def path_for(self, spec: EnvironmentSpec) -> Path:
        return self.root / spec.digest

    def _env(self) -> dict[str, str]:
        return {**os.environ, **pip_sources(), "UV_PYTHON_DOWNLOADS": "never", "NO_COLOR": "1"}

    def ensure(
        self, spec: EnvironmentSpec, log: Callable[[str], None] | None = None
    ) -> BuiltEnvironment:
        """The built environment for ``spec``, building it (once) if needed."""
        started = time.monotonic()
        target = self.path_for(spec)
        if (target / READY).exists():
            return self._result(spec, target, True, started)
        with _locked(self.root / f"{spec.digest}.lock"):
            if (target / READY).exists():  # someone else built it while we waited
                return self._result(spec, target, True, started)
            self._build(spec, target, log)
        return self._result(spec, target, False, started)

    def layered(
        self, base_python: str, log: Callable[[str], None] | None = None
    ) -> BuiltEnvironment:
        """A thin environment over ``base_python``'s packages (made once per interpreter)."""
        started = time.monotonic()
        key = f"{base_python}\0{os.path.realpath(base_python)}"
        digest = f"layered-{hashlib.sha256(key.encode()).hexdigest()[:16]}"
        target = self.root / digest
        if (target / READY).exists():
            return BuiltEnvironment(digest, target, target / "bin" / "python", True, 0.0)
        self.root.mkdir(parents=True, exist_ok=True)
        with _locked(self.root / f"{digest}.lock"):
            if not (target / READY).exists():
                self._build_layered(base_python, target, log)
        return BuiltEnvironment(
            digest, target, target / "bin" / "python", False, time.monotonic() - started
        )

    def _build_layered(
        self, base_python: str, target: Path, log: Callable[[str], None] | None
    ) -> None:
        logfile = self.root / f"{target.name}.{LOG_NAME}"
        logfile.write_text("")
        if target.exists():
            shutil.rmtree(target)
        paths = subprocess.run(
            [base_python, "-c", _SITE_PATHS], capture_output=True, text=True, check=True
        ).stdout.split("\n")
        code = self._run(
            [self.uv, "venv", "--quiet", "--seed", "--python", base_python, str(target)],
            logfile,
            log,
        )
        if code != 0:
            shutil.rmtree(target, ignore_errors=True)
            raise EnvironmentBuildError(
                f"Making the layered system environment failed (exit {code}); see {logfile}",
                log_path=str(logfile),
            )
        python = target / "bin" / "python"
        own = subprocess.run(
            [str(python), "-c", _SITE_PATHS], capture_output=True, text=True, check=True
        ).stdout.split("\n")[0]
        lines = [p for p in dict.fromkeys(paths) if p and p != own]
        # ``import`` lines of a .pth run at start-up; addsitedir also reads the base's own
        # .pth files (editable installs, namespace packages), which a bare path would skip.
        Path(own, "_lapis_base.pth").write_text(
            "".join(f"import site; site.addsitedir({p!r})\n" for p in lines)
        )
        (target / READY).write_text(str(time.time()))

    def _result(
        self, spec: EnvironmentSpec, target: Path, hit: bool, started: float
    ) -> BuiltEnvironment:
        return BuiltEnvironment(
            spec.digest, target, target / "bin" / "python", hit, time.monotonic() - started
        )

    def _run(self, args: list[str], logfile: Path, log: Callable[[str], None] | None) -> int:
        with open(logfile, "a") as out:
            out.write(f"$ {' '.join(args)}\n")
            out.flush()
            proc = subprocess.Popen(
                args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=self._env()
            )
            assert proc.stdout is not None
            for line in proc.stdout:
                out.write(line)
                if log is not None:
                    log(line.rstrip("\n"))
            return proc.wait()

    def _python(self, version: str, logfile: Path) -> str:
        """An interpreter for ``version`` (``X.Y``), for ``uv venv --python``.

        uv looks on PATH and in its own managed installs; pyenv's are found only when its
        shims are enabled for that version, so ``~/.pyenv/versions`` is searched too. With
        none on the host, uv downloads one when the network allows (``LAPIS_PYTHON_DOWNLOADS
        =never`` forbids it); otherwise the error names what the host has and how to add it.
        """
        found = subprocess.run(
            [self.uv, "python", "find", version], capture_output=True, text=True, env=self._env()
        )
        if found.returncode == 0:
            return version
        local = installed_pythons()
        if version in local:
            return str(local[version])
        if os.environ.get("LAPIS_PYTHON_DOWNLOADS", "automatic").lower() != "never":
            with open(logfile, "a") as log:
                log.write(f"Python {version} is not on this host: asking uv to download it\n")
            try:
                got = subprocess.run(
                    [self.uv, "python", "install", version],
                    capture_output=True,
                    text=True,
                    timeout=300,
                    env={**self._env(), "UV_PYTHON_DOWNLOADS": "automatic"},
                )
            except subprocess.TimeoutExpired:
                got = None
            if got is not None and got.returncode == 0:
                return version
            said = got.stderr if got is not None else "timed out"
            with open(logfile, "a") as log:  # quoted: the build's reason is the line below
                log.writelines(f"uv python install: {line}\n" for line in said.splitlines())
        have = ", ".join(f"{v} ({p})" for v, p in sorted(local.items())) or "none found"
        raise InvalidParameterValue(
            f"Python {version} is not installed on this host; available: {have}. Add it with "
            f"`uv python install {version}` (or pyenv), or ask for one of those in the conda file"
        )

    def _build(
        self, spec: EnvironmentSpec, target: Path, log: Callable[[str], None] | None
    ) -> None:
        logfile = self.root / f"{spec.digest}.{LOG_NAME}"
        logfile.write_text("")
        # Refusals are written to the build log too, so "see the log" always works.
        if spec.conda_only:
            reason = (
                "These conda packages have no PyPI equivalent and cannot be installed here: "
                + ", ".join(spec.conda_only)
            )
            logfile.write_text(reason + "\n")
            raise EnvironmentBuildError(reason, log_path=str(logfile))
        python = None
        if spec.python:
            try:
                python = self._python(spec.python, logfile)
            except InvalidParameterValue as exc:
                with open(logfile, "a") as fh:
                    fh.write(exc.message + "\n")
                raise
        if target.exists():
            shutil.rmtree(target)  # a build that died half-way
        target.mkdir(parents=True)
        venv = [self.uv, "venv", "--quiet", "--seed", str(target)]
        if python:
            venv += ["--python", python]
        code = self._run(venv, logfile, log)
        if code == 0 and spec.requirements:
            code = self._run(
                [
                    self.uv,
                    "pip",
                    "install",
                    "--python",
                    str(target / "bin/python"),
                    *spec.requirements,
                ],
                logfile,
                log,
            )
        if code != 0:
            shutil.rmtree(target, ignore_errors=True)
            tail = "\n".join(logfile.read_text().splitlines()[-15:])
            raise EnvironmentBuildError(
                f"Building environment {spec.digest[:12]} failed (exit {code}); build log "
                f"{logfile}:\n{tail}",
                log_path=str(logfile),
            )
        (target / "lapis-spec.json").write_text(json.dumps(spec.canonical(), indent=2))
        shutil.copy(logfile, target / LOG_NAME)
        (target / READY).write_text(str(time.time()))


def installed_pythons() -> dict[str, Path]:
    """``"3.9"`` → an interpreter of that version this host has: pyenv's versions, uv's
    managed ones, then ``python3.X`` on PATH (each checked to run)."""
    candidates: list[Path] = []
    pyenv = Path(os.environ.get("PYENV_ROOT") or Path.home() / ".pyenv") / "versions"
    candidates += sorted(pyenv.glob("3.*/bin/python3"))
    uv_root = Path(
        os.environ.get("UV_PYTHON_INSTALL_DIR") or Path.home() / ".local/share/uv/python"
    )
    candidates += sorted(uv_root.glob("cpython-3.*/bin/python3"))
    for minor in range(6, 20):
        on_path = shutil.which(f"python3.{minor}")
        if on_path:
            candidates.append(Path(on_path))
    found: dict[str, Path] = {}
    for exe in candidates:
        try:
            out = subprocess.run(
                [str(exe), "-c", "import sys; print('%d.%d' % sys.version_info[:2])"],
                capture_output=True,
                text=True,
                timeout=10,
            )
        except (OSError, subprocess.TimeoutExpired):
            continue
        version = out.stdout.strip()
        if out.returncode == 0 and version:
            found.setdefault(version, exe)
    return found
