"""A command job's ``services:`` (Azure's interactive jobs): tools started beside the job's
command, in its environment, for its submitter — JupyterLab, TensorBoard and SSH.

    services:
      my_lab: {type: jupyter_lab}
      my_board: {type: tensor_board, log_dir: outputs/tblogs}
      my_ssh: {type: ssh, ssh_public_keys: "ssh-ed25519 AAAA…", nodes: all}
      my_vscode: {type: vs_code}

``vs_code`` is accepted; VS Code reaches a Lapis job through its ``ssh`` service (Remote-
SSH), so the job's page says to add one. Names are Azure's: letters, digits and ``_``.
"""

from __future__ import annotations

import re
from typing import Any

from lapis.specs.yaml_lines import Located

SERVICE_TYPES = ("jupyter_lab", "tensor_board", "ssh", "vs_code")
SERVICE_KEYS = {"type", "log_dir", "ssh_public_keys", "nodes", "port", "properties"}
_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]{0,63}$")
_KEY = re.compile(
    r"^(ssh-ed25519|ssh-rsa|ecdsa-sha2-nistp(?:256|384|521)) [A-Za-z0-9+/]{40,}={0,3}"
)


def parse_services(doc: Located, raw: Any) -> dict[str, dict[str, Any]]:
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise doc.error(("services",), "must be a mapping of service name: {type: …}")
    out: dict[str, dict[str, Any]] = {}
    for name, item in raw.items():
        where = ("services", str(name))
        if not _NAME.match(str(name)):
            raise doc.error(where, "a service name holds letters, digits and '_', from a letter")
        if not isinstance(item, dict):
            raise doc.error(where, "must be a mapping with type")
        unknown = set(item) - SERVICE_KEYS
        if unknown:
            raise doc.error((*where, sorted(unknown)[0]), "is not a service setting (type, "
                            "log_dir, ssh_public_keys, nodes)")  # fmt: skip
        kind = str(item.get("type", "")).lower()
        if kind not in SERVICE_TYPES:
            raise doc.error((*where, "type"), f"must be one of {', '.join(SERVICE_TYPES)}")
        entry: dict[str, Any] = {"type": kind}
        if kind == "tensor_board":
            log_dir = item.get("log_dir", "outputs/tblogs")
            if (
                not isinstance(log_dir, str)
                or log_dir.startswith("/")
                or ".." in log_dir.split("/")
            ):
                raise doc.error((*where, "log_dir"), "must be a folder inside the job's working "
                                "folder (e.g. outputs/tblogs)")  # fmt: skip
            entry["log_dir"] = log_dir
        if kind == "ssh":
            keys = item.get("ssh_public_keys")
            lines = [k.strip() for k in str(keys or "").splitlines() if k.strip()]
            if not lines or not all(_KEY.match(k) for k in lines):
                raise doc.error((*where, "ssh_public_keys"), "needs OpenSSH public key lines "
                                "('ssh-ed25519 AAAA… comment')")  # fmt: skip
            entry["ssh_public_keys"] = "\n".join(lines)
        out[str(name)] = entry
    return out
