"""Two hosts on one machine: network namespaces with their own addresses, joined to this
host by a bridge, each running an sshd that takes one key — what the ssh node provider
and the gang's interface choice are tested on. Needs root, ``ip`` and ``sshd``."""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

SSHD = "/usr/sbin/sshd"


def _run(*argv: str) -> None:
    subprocess.run(argv, check=True, capture_output=True, text=True)


def missing() -> str | None:
    if os.geteuid() != 0:
        return "network namespaces need root"
    if not shutil.which("ip") or not Path(SSHD).exists() or not shutil.which("ssh-keygen"):
        return "needs ip (iproute2) and sshd (openssh-server: `make ssh-server`)"
    return None


@contextlib.contextmanager
def two_hosts(tmp_path: Path) -> Iterator[dict[str, Any]]:
    why = missing()
    if why:
        pytest.skip(f"LOUD SKIP: the ssh provider across network namespaces is NOT TESTED: {why}")
    tag = secrets.token_hex(2)
    net = f"10.{200 + secrets.randbelow(50)}.{secrets.randbelow(250)}"
    bridge = f"lbr{tag}"
    spaces, procs = [], []
    folder = tmp_path / "hosts"
    folder.mkdir()
    key = folder / "id"
    _run("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key))
    (folder / "authorized_keys").write_text((folder / "id.pub").read_text())
    Path("/run/sshd").mkdir(exist_ok=True)  # sshd's privilege-separation folder
    hosts, interfaces = [], {}
    try:
        _run("ip", "link", "add", bridge, "type", "bridge")
        _run("ip", "addr", "add", f"{net}.1/24", "dev", bridge)
        _run("ip", "link", "set", bridge, "up")
        for i in (2, 3):
            ns, outer, inner = f"lns{tag}{i}", f"lv{tag}{i}", f"le{tag}{i}"
            _run("ip", "netns", "add", ns)
            spaces.append(ns)
            _run("ip", "link", "add", outer, "type", "veth", "peer", "name", inner)
            _run("ip", "link", "set", inner, "netns", ns)
            _run("ip", "link", "set", outer, "master", bridge)
            _run("ip", "link", "set", outer, "up")
            _run("ip", "netns", "exec", ns, "ip", "addr", "add", f"{net}.{i}/24", "dev", inner)
            _run("ip", "netns", "exec", ns, "ip", "link", "set", inner, "up")
            _run("ip", "netns", "exec", ns, "ip", "link", "set", "lo", "up")
            host_key = folder / f"host{i}"
            _run("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(host_key))
            config = folder / f"sshd{i}.conf"
            config.write_text(
                f"ListenAddress {net}.{i}\nPort 22\nHostKey {host_key}\n"
                f"PidFile {folder}/sshd{i}.pid\nAuthorizedKeysFile {folder}/authorized_keys\n"
                "PermitRootLogin prohibit-password\nPasswordAuthentication no\nUsePAM no\n"
                "StrictModes no\n"
            )
            log = open(folder / f"sshd{i}.log", "ab")  # noqa: SIM115
            procs.append(subprocess.Popen(
                ["ip", "netns", "exec", ns, SSHD, "-D", "-e", "-f", str(config)],
                stdout=log, stderr=log, start_new_session=True,
            ))  # fmt: skip
            hosts.append(f"{net}.{i}")
            interfaces[f"{net}.{i}"] = inner
        for host in hosts:
            _wait_for_ssh(host, key, folder)
        yield {"head": f"{net}.1", "hosts": hosts, "identity": str(key), "interfaces": interfaces}
    finally:
        for proc in procs:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, 9)
        for ns in spaces:
            subprocess.run(["ip", "netns", "del", ns], capture_output=True)
        subprocess.run(["ip", "link", "del", bridge], capture_output=True)


def _wait_for_ssh(host: str, key: Path, folder: Path) -> None:
    deadline = time.monotonic() + 30
    while True:
        done = subprocess.run(
            ["ssh", "-T", "-i", str(key), "-o", "BatchMode=yes", "-o", "IdentitiesOnly=yes",
             "-o", "StrictHostKeyChecking=no", "-o", f"UserKnownHostsFile={folder}/known",
             f"root@{host}", "true"],
            capture_output=True, text=True, timeout=20,
        )  # fmt: skip
        if done.returncode == 0:
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"sshd on {host} never answered: {done.stderr}")
        time.sleep(0.3)
