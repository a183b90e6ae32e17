"""Placeholder router; filled in by its issue-3 workstream."""

from __future__ import annotations

from fastapi import APIRouter


def router() -> APIRouter:
    return APIRouter(prefix="/v1")
