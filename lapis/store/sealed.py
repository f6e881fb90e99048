"""Secrets that must be shown again, sealed at rest with the workspace key.

Tokens and passwords are only ever compared, so they are stored as hashes. An
online endpoint's keys are different: ``get-credentials`` returns them, as
Azure's does. They are stored sealed (AES-256-GCM) under a key that lives in
the workspace home (``workspace.key``, 0600), never in the database — so a copy
of ``lapis.db`` or a PostgreSQL dump alone reveals no endpoint key. Back the key
up with the database: without it, sealed values cannot be opened (endpoints can
then only have their keys regenerated).

A sealed value is ``sealed:v1:<base64 nonce+ciphertext>``; a value without the
prefix is a plaintext from before sealing and is read as is (the workspace
re-seals such values at start-up).
"""

from __future__ import annotations

import base64
import os
import secrets
from pathlib import Path

from lapis.errors import LapisError

PREFIX = "sealed:v1:"
KEY_FILE = "workspace.key"


class Sealer:
    def __init__(self, key: bytes) -> None:
        from cryptography.hazmat.primitives.ciphers.aead import AESGCM

        if len(key) != 32:
            raise LapisError("the workspace key must be 32 bytes")
        self._aead = AESGCM(key)

    @classmethod
    def for_home(cls, home: Path) -> Sealer:
        """The home's key, made (0600, written whole) the first time it is needed."""
        path = home / KEY_FILE
        try:
            return cls(base64.b64decode(path.read_bytes().strip(), validate=True))
        except FileNotFoundError:
            pass
        except ValueError:
            raise LapisError(f"{path} is not a workspace key (32 bytes, base64)") from None
        key = secrets.token_bytes(32)
        tmp = path.with_name(f".{KEY_FILE}.{os.getpid()}")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as fh:
            fh.write(base64.b64encode(key) + b"\n")
            fh.flush()
            os.fsync(fh.fileno())
        try:
            os.link(tmp, path)  # never replaces a key another process made meanwhile
        except FileExistsError:
            return cls.for_home(home)
        finally:
            tmp.unlink()
        return cls(key)

    def seal(self, plain: str) -> str:
        nonce = secrets.token_bytes(12)
        data = nonce + self._aead.encrypt(nonce, plain.encode(), PREFIX.encode())
        return PREFIX + base64.urlsafe_b64encode(data).decode()

    def open(self, stored: str) -> str:
        if not stored.startswith(PREFIX):
            return stored
        from cryptography.exceptions import InvalidTag

        data = base64.urlsafe_b64decode(stored[len(PREFIX) :])
        try:
            return self._aead.decrypt(data[:12], data[12:], PREFIX.encode()).decode()
        except InvalidTag:
            raise LapisError(
                "a sealed secret does not open with this home's workspace.key (was the key "
                "replaced?); regenerate the endpoint's keys"
            ) from None

    @staticmethod
    def is_sealed(stored: str) -> bool:
        return stored.startswith(PREFIX)
