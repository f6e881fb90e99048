"""Registered and curated environments (skeleton; being built)."""

from __future__ import annotations

from pathlib import Path

from lapis.store.sql.engine import Database


class EnvironmentService:
    def __init__(self, db: Database, envs_root: Path) -> None:
        self.db = db
        self.envs_root = envs_root
