"""Compute targets: create, start, stop and delete instances (skeleton; being built)."""

from __future__ import annotations

from lapis.store.sql.engine import Database


class ComputeService:
    def __init__(self, db: Database) -> None:
        self.db = db
