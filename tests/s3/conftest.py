"""Fixtures for Cairn's S3 compatibility suite.

`s3env` (one per test module): a real `cairn serve` from tests/integration/cairn_harness.py
with the S3 listener on a free loopback port (the harness sets CAIRN_S3_LISTEN), bootstrap
S3 credentials of tenant `main` (CAIRN_S3_ACCESS_KEY/SECRET_KEY/TENANT) and a second
tenant's pair made with `cairn keys create --s3 --tenant other` while it runs. Teardown
stops it with SIGTERM and fails the test module if it exited uncleanly, died, printed a
sanitizer report or logged any secret (S3 secrets included). A watchdog kills the
servers of a test that runs past its limit, so nothing hangs.

Clients run with `client_env`: no inherited AWS_* settings or proxies, explicit
credentials, AWS_DEFAULT_REGION=us-east-1, AWS_EC2_METADATA_DISABLED=true and a private
HOME, so no user configuration leaks in. A client that is not installed skips its tests
with the reason; anything else that goes wrong fails.
"""
from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "support"))
pytest.register_assert_rewrite("s3kit", "s3model")

import s3kit  # noqa: E402
import skipguard  # noqa: E402  (fails the run on a skip not on tests/skip-allowlist.txt)
from s3kit import h  # noqa: E402

DEFAULT_TEST_TIMEOUT_S = float(os.environ.get("CAIRN_S3_TEST_TIMEOUT", "300"))


def pytest_configure(config):
    skipguard.register(config)
    config.addinivalue_line("markers", "slow: long-running (still part of the default run)")
    config.addinivalue_line("markers", "time_limit(seconds): watchdog limit for one test")


@pytest.fixture(autouse=True)
def _watchdog(request):
    marker = request.node.get_closest_marker("time_limit")
    limit = float(marker.args[0]) if marker else DEFAULT_TEST_TIMEOUT_S
    with h.Watchdog(request.node.nodeid, limit) as dog:
        yield
    if dog.fired.is_set():
        pytest.fail(f"test exceeded its {limit:.0f} s time limit")


@pytest.fixture(autouse=True)
def _server_survives(request):
    """Pins a server death on the test during which it happened, then restarts the server
    so the module's remaining tests still run (the death is reported again at teardown)."""
    deployment = request.getfixturevalue("s3env") if "s3env" in request.fixturenames else None
    yield
    if deployment is None or deployment.server.alive():
        return
    status = deployment.server.proc.returncode if deployment.server.proc else None
    tail = deployment.server.current_log_tail()
    deployment.revive()
    pytest.fail(f"cairn serve died during this test (exit status {status}); restarted it for "
                f"the next tests\n{tail}", pytrace=False)


@pytest.fixture(scope="session", autouse=True)
def _isolated_process_env(tmp_path_factory):
    """boto3 inside pytest reads no user AWS config or credentials either."""
    home = tmp_path_factory.mktemp("pytest-home")
    s3kit.make_client_home(home)
    previous = s3kit.isolate_this_process(home)
    yield
    s3kit.restore_environ(previous)


@pytest.fixture(scope="module")
def s3env(tmp_path_factory):
    deployment = s3kit.start_deployment(tmp_path_factory.mktemp("s3srv"))
    yield deployment
    problems = h.finish_servers([deployment.server])
    if problems:
        pytest.fail("server problems:\n" + "\n".join(problems), pytrace=False)


@pytest.fixture(scope="module")
def s3(s3env):
    """boto3 client of tenant `main` (path style, no retries)."""
    pytest.importorskip("boto3", reason="python3-boto3 is not installed")
    return s3env.boto()


@pytest.fixture(scope="module")
def s3_other(s3env):
    """boto3 client of tenant `other`."""
    pytest.importorskip("boto3", reason="python3-boto3 is not installed")
    return s3env.boto(s3env.other)


@pytest.fixture
def bucket(s3):
    """A fresh, empty bucket of tenant `main`."""
    name = s3kit.unique_bucket()
    s3.create_bucket(Bucket=name)
    return name


@pytest.fixture(scope="module")
def client_env(s3env):
    return s3env.env()

