"""Fixtures for the kill -9 crash test; the harness lives in tests/integration."""
from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "integration"))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "support"))

import cairn_harness as h  # noqa: E402
import skipguard  # noqa: E402  (fails the run on a skip not on tests/skip-allowlist.txt)


def pytest_configure(config):
    skipguard.register(config)


CRASH_TEST_LIMIT_S = float(os.environ.get("CAIRN_CRASH_TIME_LIMIT", 1200))


@pytest.fixture
def crash_server(tmp_path):
    """A server (not yet started) whose GC runs every second with a 1 s grace period
    (test_races covers grace 0)."""
    server = h.CairnServer(tmp_path / "data", gc_interval=1, gc_grace=1)
    with h.Watchdog("crash test", CRASH_TEST_LIMIT_S) as dog:
        yield server
    problems = h.finish_servers([server])
    if dog.fired.is_set():
        problems.append(f"crash test exceeded {CRASH_TEST_LIMIT_S:.0f} s")
    if problems:
        pytest.fail("server problems:\n" + "\n".join(problems), pytrace=False)
