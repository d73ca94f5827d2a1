"""Self-test of the skip guard: it must fail a run with a skip that is not on the allow-list
(also under pytest-xdist, also for xfail), pass one whose skips are listed, reject an entry
without a reason, and the GoogleTest check must do the same on ctest's JUnit output.
Runs in scripts/test.sh: `/usr/bin/python3 -m pytest -q tests/support`."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

SUPPORT = Path(__file__).resolve().parent
ROOT = SUPPORT.parents[1]

CONFTEST = f"""
import sys
sys.path.insert(0, {str(SUPPORT)!r})
import skipguard

def pytest_configure(config):
    skipguard.register(config)
"""

TESTS = """
import pytest

def test_passes():
    assert True

def test_skips():
    pytest.skip("no tool here")

@pytest.mark.xfail(reason="known gap", strict=True)
def test_xfails():
    assert False
"""


def run_suite(tmp_path: Path, allowlist: str, *args: str,
              engine: str | None = None) -> subprocess.CompletedProcess:
    suite = tmp_path / "selfsuite"
    suite.mkdir(exist_ok=True)
    (suite / "conftest.py").write_text(CONFTEST)
    (suite / "test_demo.py").write_text(TESTS)
    (suite / "pytest.ini").write_text("[pytest]\n")
    listing = tmp_path / "allow.txt"
    listing.write_text(allowlist)
    env = dict(os.environ, CAIRN_SKIP_ALLOWLIST=str(listing))
    env.pop("CAIRN_SKIP_GUARD", None)
    env.pop("CAIRN_TEST_META", None)
    if engine is not None:
        env["CAIRN_TEST_META"] = engine
    return subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                           *args], cwd=suite, env=env, capture_output=True, text=True,
                          timeout=120)


def test_an_unlisted_skip_and_xfail_fail_the_run(tmp_path):
    r = run_suite(tmp_path, "")
    assert r.returncode == 1, r.stdout + r.stderr
    assert "UNLISTED SKIP selfsuite::test_demo.py::test_skips  (no tool here)" in r.stdout
    assert "UNLISTED SKIP selfsuite::test_demo.py::test_xfails  (xfail: known gap)" in r.stdout


def test_listed_skips_pass(tmp_path):
    r = run_suite(tmp_path, "selfsuite::test_demo.py::test_skips  # no tool in the self-test\n"
                  "selfsuite::test_demo.py::test_x*  # a known gap\n")
    assert r.returncode == 0, r.stdout + r.stderr
    assert "UNLISTED" not in r.stdout


def test_an_engine_entry_applies_to_that_engine_only(tmp_path):
    listing = "selfsuite[postgres]::test_demo.py::*  # PostgreSQL pass only\n"
    r = run_suite(tmp_path, listing)
    assert r.returncode == 1, r.stdout + r.stderr
    r = run_suite(tmp_path, listing, engine="postgres")
    assert r.returncode == 0, r.stdout + r.stderr


def test_an_unlisted_skip_fails_under_xdist(tmp_path):
    pytest.importorskip("xdist", reason="pytest-xdist is needed by tests/s3 (-n 2)")
    r = run_suite(tmp_path, "selfsuite::test_demo.py::test_xfails  # a known gap\n", "-n", "2")
    assert r.returncode == 1, r.stdout + r.stderr
    assert "UNLISTED SKIP selfsuite::test_demo.py::test_skips" in r.stdout
    assert "test_xfails" not in r.stdout.split("skip guard:")[-1]


def test_an_entry_without_a_reason_is_refused(tmp_path):
    r = run_suite(tmp_path, "selfsuite::test_demo.py::*\n")
    assert r.returncode == 4, r.stdout + r.stderr
    assert "the reason is mandatory" in r.stdout


JUNIT = """<?xml version="1.0" encoding="UTF-8"?>
<testsuite name="(empty)" tests="2" failures="0" disabled="0" skipped="1">
  <testcase name="Store.Works" classname="Store.Works" time="0.1" status="run"/>
  <testcase name="Store.NeedsTool" classname="Store.NeedsTool" time="0.1" status="notrun">
    <skipped message="SKIP_REGULAR_EXPRESSION_MATCHED"/>
    <system-out>../tests/x.cc:10: Skipped
no tool here
[  SKIPPED ] Store.NeedsTool (0 ms)
</system-out>
  </testcase>
</testsuite>
"""


@pytest.mark.parametrize("listing,code", [("", 1), ("gtest::Store.Needs*  # no tool\n", 0)])
def test_the_gtest_check_fails_on_an_unlisted_skip(tmp_path, listing, code):
    (tmp_path / "junit.xml").write_text(JUNIT)
    (tmp_path / "allow.txt").write_text(listing)
    env = dict(os.environ, CAIRN_SKIP_ALLOWLIST=str(tmp_path / "allow.txt"))
    env.pop("CAIRN_SKIP_GUARD", None)
    r = subprocess.run([sys.executable, str(ROOT / "scripts" / "check-gtest-skips.py"),
                        str(tmp_path / "junit.xml")], env=env, capture_output=True, text=True,
                       timeout=60)
    assert r.returncode == code, r.stdout + r.stderr
    assert ("UNLISTED SKIP gtest::Store.NeedsTool  (no tool here)" in r.stdout) == (code == 1)


def test_the_real_allowlist_is_valid():
    sys.path.insert(0, str(SUPPORT))
    import skipguard
    entries = skipguard.load_allowlist(ROOT / "tests" / "skip-allowlist.txt")
    assert entries and all(e["reason"].strip() for e in entries)
