"""Lapis' environments API under ``/api/v1`` (skeleton; being built)."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(prefix="/api/v1", tags=["environments"])
