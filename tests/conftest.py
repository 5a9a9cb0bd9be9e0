"""Shared pytest set-up. Real-component tests need root; they skip with a reason otherwise."""
from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


requires_root = pytest.mark.skipif(os.geteuid() != 0, reason="needs root (real namespaces)")


@pytest.fixture
def ns():
    """A fresh network namespace for one test, always deleted."""
    from kvmnet.sandbox.netns import netns
    with netns() as name:
        yield name
