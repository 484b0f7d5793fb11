"""Leases: who holds a connection's single-flight slot, and until when (epoch seconds)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class LeaseHolder:
    owner: str
    until: float
    backoff: bool


@dataclass(frozen=True, slots=True)
class LeaseOutcome:
    acquired: bool
    holder: LeaseHolder | None = None
