"""Fixtures for Cairn's black-box integration tests.

`server` / `client`: one `cairn serve` per test module (fresh data dir, free loopback
port, JWTs enabled). `server_factory`: extra servers with their own flags, per test.
Every server is stopped with SIGTERM at teardown (SIGKILL after a bounded wait); the
test fails if a server exited uncleanly, died during the test, or wrote any secret to
its logs. A watchdog kills the servers of a test that runs past its time limit, so no
test can hang.
"""
from __future__ import annotations

import os
import sys
import uuid
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "support"))

import cairn_harness as h  # noqa: E402
import skipguard  # noqa: E402  (fails the run on a skip not on tests/skip-allowlist.txt)

DEFAULT_TEST_TIMEOUT_S = 300.0


def pytest_addoption(parser):
    parser.addini("cairn_test_timeout", "seconds before a test's servers are killed",
                  default=str(DEFAULT_TEST_TIMEOUT_S))


def pytest_configure(config):
    skipguard.register(config)
    config.addinivalue_line("markers", "large: multi-GiB tests; run with -m large")
    config.addinivalue_line("markers",
                            "time_limit(seconds): watchdog limit for one test")


def pytest_collection_modifyitems(config, items):
    wanted = "large" in (config.getoption("markexpr") or "") or \
        os.environ.get("CAIRN_RUN_LARGE") == "1"
    if wanted:
        return
    skip = pytest.mark.skip(reason="large test: run with -m large (or CAIRN_RUN_LARGE=1)")
    for item in items:
        if "large" in item.keywords:
            item.add_marker(skip)


def _test_time_limit(request) -> float:
    marker = request.node.get_closest_marker("time_limit")
    if marker:
        return float(marker.args[0])
    try:
        return float(request.config.getini("cairn_test_timeout"))
    except (ValueError, KeyError):
        return DEFAULT_TEST_TIMEOUT_S


@pytest.fixture(autouse=True)
def _watchdog(request):
    limit = _test_time_limit(request)
    with h.Watchdog(request.node.nodeid, limit) as dog:
        yield
    if dog.fired.is_set():
        pytest.fail(f"test exceeded its {limit:.0f} s time limit")


def _finish(servers) -> None:
    problems = h.finish_servers(servers)
    if problems:
        pytest.fail("server problems:\n" + "\n".join(problems), pytrace=False)


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    srv = h.CairnServer(tmp_path_factory.mktemp("srv") / "data")
    srv.start()
    yield srv
    _finish([srv])


@pytest.fixture(scope="module")
def client(server):
    return h.Client(server, server.admin_key)


@pytest.fixture
def server_factory(tmp_path):
    """make(**CairnServer kwargs, start=True) -> CairnServer; all stopped at teardown."""
    servers = []

    def make(*, data_dir=None, start=True, **kwargs):
        srv = h.CairnServer(data_dir or tmp_path / f"data{len(servers)}", **kwargs)
        servers.append(srv)
        if start:
            srv.start()
        return srv

    yield make
    _finish(servers)


@pytest.fixture
def tenant():
    return "t" + uuid.uuid4().hex[:12]


@pytest.fixture
def namespace():
    return "ns-" + uuid.uuid4().hex[:8]
