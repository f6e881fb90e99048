"""Data benchmark: moving a folder of data through Lapis against the storage library's
own client, side by side, on real storage services on loopback.

    python bench/data.py [--size-mb 1024] [--files 8]

Three datastores: the workspace's default (``workspaceblobstore``, a folder of the
artifact root), Azure Blob (Azurite, the emulator from npm) and S3 (moto's server).
For each, with the same folder of ``--files`` random files totalling ``--size-mb``:

1. **upload**: Lapis' way of putting the data there, against the library's own ``put``
   of the same folder (fsspec's local filesystem, ``adlfs``, ``s3fs``). For the default
   store that is ``lapis data create --path`` (hash, ask, stream, check); for Blob and
   S3 it is a job output with ``path: azureml://datastores/<ds>/paths/…`` (the job's
   *Finalizing* phase, when Lapis writes the output to the store).
2. **download**: ``lapis data download`` of an asset on the store (through the server)
   against the library's own ``get``.
3. **a job starts reading**: seconds from submitting a job whose input is that data to
   the job's first line, for ``ro_mount`` (in place on the default store; for Blob and
   S3 a lazy FUSE mount, and, with ``LAPIS_DATA_FUSE=off``, the host's read-only
   cache, cold then warm) and ``download``. The FUSE figure adds a read of the
   first file, so it counts the first bytes coming over the mount.

Ratios are Lapis over the library (lower is better; 1.0x: no cost over the library).
Everything is removed at the end. See bench/README.md.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

from lapis.compute import fuse_mount

sys.path.insert(0, str(Path(__file__).parent))
sys.path.insert(0, str(Path(__file__).parent.parent / "tests"))

import _harness as h
from storagekit import ACCOUNT, ACCOUNT_KEY, AZURITE, _free_port, _serving

MB = 1024 * 1024
FINAL = {"Completed", "Failed", "Canceled"}
FIRST_LINE = "python -c \"import time; print('started', time.time())\""
FIRST_READ = (
    'python -c "import os, sys, time; d = sys.argv[1]; f = sorted(os.listdir(d))[0]; '
    "open(os.path.join(d, f), 'rb').read(1 << 20); print('started', time.time())\""
)


def _folder(root: Path, size_mb: int, files: int) -> Path:
    folder = root / "bench-data"
    folder.mkdir()
    per = max(1, size_mb // files)
    block = os.urandom(MB)
    for i in range(files):
        with open(folder / f"part-{i:03d}.bin", "wb") as fh:
            for _ in range(per):
                fh.write(block)
    return folder


def _timed(fn: Any) -> float:
    t0 = time.monotonic()
    fn()
    return time.monotonic() - t0


def _cli(server: h.ServerHandle, *args: str) -> str:
    env = {**os.environ, "LAPIS_URL": server.url, "LAPIS_TOKEN": server.token}
    done = subprocess.run([sys.executable, "-m", "lapis", *args], env=env, capture_output=True,
                          text=True, timeout=3600)  # fmt: skip
    if done.returncode != 0:
        raise RuntimeError(f"lapis {' '.join(args)}: {done.stderr.strip()}")
    return done.stdout


def _job(http: httpx.Client, yaml: str) -> dict[str, Any]:
    made = http.post("/api/v1/jobs", json={"yaml": yaml, "source": "bench"})
    made.raise_for_status()
    name = made.json()["name"]
    while (job := http.get(f"/api/v1/jobs/{name}").json())["status"] not in FINAL:
        time.sleep(0.02)
    if job["status"] != "Completed":
        raise RuntimeError(f"job {name} {job['status']}: {job['status_reason']}")
    return dict(job)


def _start_reading(
    http: httpx.Client, path: str, mode: str, fuse: bool = True, first_file: bool = False
) -> float:
    """Seconds from submit to the job's first line (it prints the time it started, after
    reading the first MB of its first file with ``first_file``)."""
    command = FIRST_READ if first_file else FIRST_LINE
    yaml = (
        f"command: {command} ${{{{inputs.data}}}}\nenvironment: system\ncompute: local\n"
        f"inputs:\n  data:\n    type: uri_folder\n    path: {path}\n    mode: {mode}\n"
    )
    if not fuse:
        yaml += 'environment_variables:\n  LAPIS_DATA_FUSE: "off"\n'
    t0 = time.time()
    job = _job(http, yaml)
    log = http.get(f"/api/v1/jobs/{job['name']}/logs").json()["data"]
    started = next(
        float(line.split()[1]) for line in log.splitlines() if line.startswith("started")
    )
    return started - t0


def _finalizing(job: dict[str, Any]) -> float:
    """The job's Finalizing phase: where Lapis writes its outputs."""
    times = {e["status"]: e["time"] for e in job["events"]}
    return (times["Completed"] - times["Finalizing"]) / 1000


def _rate(size_mb: int, seconds: float) -> str:
    return f"{seconds:6.2f} s  {size_mb / seconds:7.1f} MB/s"


def _remote(
    http: httpx.Client, server: h.ServerHandle, work: Path, folder: Path, label: str,
    fs: Any, spec: str,
) -> tuple[list[tuple[str, float, float]], list[tuple[str, str, float]]]:  # fmt: skip
    """Upload, download and start-reading figures for one remote datastore."""
    name = f"bench_{label}"
    made = http.post("/api/v1/datastores", json={"yaml": f"name: {name}\n{spec}", "source": "b"})
    made.raise_for_status()
    lib_up = _timed(lambda: fs.put(str(folder), "bench/lib", recursive=True))
    job = _job(http, (
        "command: cp -r ${{inputs.data}}/. ${{outputs.out}}\nenvironment: system\n"
        "compute: local\ninputs:\n  data:\n    path: azureml:bench-local@latest\n"
        f"outputs:\n  out:\n    path: azureml://datastores/{name}/paths/lapis/\n"
    ))  # fmt: skip
    up = _finalizing(job)
    lib_down = _timed(lambda: fs.get("bench/lib/", str(work / f"lib-{label}"), recursive=True))
    _cli(server, "data", "create", "--name", f"bench-{label}", "--path",
         f"azureml://datastores/{name}/paths/lapis")  # fmt: skip
    down = _timed(lambda: _cli(server, "data", "download", "-n", f"bench-{label}",
                               "--download-path", str(work / f"dl-{label}")))  # fmt: skip
    asset = f"azureml:bench-{label}@latest"
    fuse = fuse_mount.available()
    reading = [
        (label, "ro_mount (FUSE, + first MB)" if fuse is None else f"ro_mount: {fuse}",
         _start_reading(http, asset, "ro_mount", first_file=True)),
        (label, "ro_mount (cache, cold)", _start_reading(http, asset, "ro_mount", fuse=False)),
        (label, "ro_mount (cache, warm)", _start_reading(http, asset, "ro_mount", fuse=False)),
        (label, "download", _start_reading(http, asset, "download")),
    ]  # fmt: skip
    return [
        (f"{label} upload (job output)", up, lib_up),
        (f"{label} download", down, lib_down),
    ], reading


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-mb", type=int, default=1024)
    parser.add_argument("--files", type=int, default=8)
    args = parser.parse_args()
    import adlfs
    import s3fs
    from fsspec.implementations.local import LocalFileSystem

    work = Path(tempfile.mkdtemp(prefix="bench-data-"))
    ratios: list[tuple[str, float, float]] = []  # (what, Lapis s, library s)
    reading: list[tuple[str, str, float]] = []
    server = h.start_lapis(label="Lapis")
    try:
        folder = _folder(work, args.size_mb, args.files)
        size = sum(p.stat().st_size for p in folder.iterdir()) // MB
        http = httpx.Client(base_url=server.url, timeout=3600,
                            headers={"Authorization": f"Bearer {server.token}"})  # fmt: skip
        _job(http, "command: echo warm\nenvironment: system\ncompute: local\n")  # first-job costs
        blob_port, s3_port = _free_port(), _free_port()
        azurite = f"http://127.0.0.1:{blob_port}/{ACCOUNT}"
        moto = f"http://127.0.0.1:{s3_port}"
        argv_blob = [str(AZURITE), "--blobHost", "127.0.0.1", "--blobPort", str(blob_port),
                     "--inMemoryPersistence", "--skipApiVersionCheck"]  # fmt: skip
        argv_s3 = [str(Path(sys.executable).parent / "moto_server"), "-H", "127.0.0.1",
                   "-p", str(s3_port)]  # fmt: skip
        with (
            _serving(argv_blob, blob_port, work / "azurite.log"),
            _serving(argv_s3, s3_port, work / "moto.log"),
        ):
            # the default store: lapis data create / download against a local put / get
            local = LocalFileSystem()
            lib_up = _timed(lambda: local.put(str(folder), str(work / "up"), recursive=True))
            up = _timed(lambda: _cli(server, "data", "create", "--name", "bench-local",
                                     "--path", str(folder)))  # fmt: skip
            lib_down = _timed(lambda: local.get(str(folder), str(work / "down"), recursive=True))
            down = _timed(lambda: _cli(server, "data", "download", "-n", "bench-local",
                                       "--download-path", str(work / "dl-local")))  # fmt: skip
            ratios += [("workspaceblobstore upload", up, lib_up),
                       ("workspaceblobstore download", down, lib_down)]  # fmt: skip
            for mode in ("ro_mount", "download"):
                seconds = _start_reading(http, "azureml:bench-local@latest", mode)
                reading.append(("workspaceblobstore", mode, seconds))

            conn = (f"DefaultEndpointsProtocol=http;AccountName={ACCOUNT};"
                    f"AccountKey={ACCOUNT_KEY};BlobEndpoint={azurite};")  # fmt: skip
            blob = adlfs.AzureBlobFileSystem(connection_string=conn)
            blob.mkdir("bench")
            s3 = s3fs.S3FileSystem(key="id", secret="secret", client_kwargs={"endpoint_url": moto})
            s3.mkdir("bench")
            blob_spec = (
                f"type: azure_blob\naccount_name: {ACCOUNT}\ncontainer_name: bench\n"
                f"account_url: {azurite}\ncredentials:\n  account_key: {ACCOUNT_KEY}\n"
            )
            s3_spec = (f"type: s3\nbucket: bench\nendpoint_url: {moto}\ncredentials:\n"
                       "  access_key_id: id\n  secret_access_key: secret\n")  # fmt: skip
            for label, fs, spec in (("blob", blob, blob_spec), ("s3", s3, s3_spec)):
                more, read = _remote(http, server, work, folder, label, fs, spec)
                ratios += more
                reading += read
    finally:
        server.cleanup()
        shutil.rmtree(work, ignore_errors=True)
    print(f"\nData: {size} MB in {args.files} files; Lapis against the storage library "
          "(fsspec local, adlfs on Azurite, s3fs on moto), same machine, same run")  # fmt: skip
    width = max(len(k) for k, _, _ in ratios)
    print(f"  {'':<{width}}  {'Lapis':>24}  {'library':>24}  ratio")
    for key, lapis_s, lib_s in ratios:
        print(f"  {key:<{width}}  {_rate(size, lapis_s):>24}  {_rate(size, lib_s):>24}  "
              f"{lapis_s / lib_s:5.2f}x")  # fmt: skip
    print(f"\nA job starts reading {size} MB (submit → the command's first line)")
    for store, mode, seconds in reading:
        print(f"  {store:<20} {mode:<24} {seconds:7.2f} s")
    print(json.dumps({"size_mb": size, "transfers": ratios, "start_reading": reading}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
