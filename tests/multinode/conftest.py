"""Fixtures for the multi-node tests: `cluster` starts several `cairn serve` processes on
one fresh PostgreSQL database (on the server CAIRN_TEST_POSTGRES_URL names) and one shared
data directory. The harness is tests/integration/cairn_harness.py."""
from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "integration"))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "support"))

import cairn_harness as h  # noqa: E402
import skipguard  # noqa: E402  (fails the run on a skip not on tests/skip-allowlist.txt)
import multinode as m  # noqa: E402


def pytest_configure(config):
    skipguard.register(config)


DEFAULT_TEST_TIMEOUT_S = 300.0


def pytest_addoption(parser):
    parser.addini("cairn_test_timeout", "seconds before a test's servers are killed",
                  default=str(DEFAULT_TEST_TIMEOUT_S))


@pytest.fixture(autouse=True)
def _watchdog(request):
    marker = request.node.get_closest_marker("time_limit")
    limit = float(marker.args[0]) if marker else float(request.config.getini("cairn_test_timeout"))
    with h.Watchdog(request.node.nodeid, limit) as dog:
        yield
    if dog.fired.is_set():
        pytest.fail(f"test exceeded its {limit:.0f} s time limit")


@pytest.fixture
def postgres_url():
    url = os.environ.get("CAIRN_TEST_POSTGRES_URL")
    if not url:
        pytest.skip("CAIRN_TEST_POSTGRES_URL is not set (scripts/postgres-test-server.sh)")
    return url


@pytest.fixture
def cluster_factory(tmp_path, postgres_url):
    """make(nodes=3, **kwargs) -> Cluster on a fresh database; everything stopped and the
    database dropped at teardown."""
    clusters: list[m.Cluster] = []

    def make(**kwargs) -> m.Cluster:
        cluster = m.Cluster(tmp_path / f"cluster{len(clusters)}",
                            h.create_postgres_database("cairn_multinode"), **kwargs)
        clusters.append(cluster)
        return cluster

    yield make
    problems: list[str] = []
    for cluster in clusters:
        problems += cluster.finish()
    if problems:
        pytest.fail("server problems:\n" + "\n".join(problems), pytrace=False)
