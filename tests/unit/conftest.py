"""Fixtures the unit tests of every service share."""

from __future__ import annotations

import pytest

from tests.unit.fakes import MemoryStore


@pytest.fixture
def store() -> MemoryStore:
    """The records of one test's in-memory event store (`tests.unit.fakes`)."""
    return MemoryStore()
