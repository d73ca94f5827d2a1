"""The skip guard: a pytest plugin that fails the run when a test was skipped (or xfailed)
and the skip is not on the allow-list, tests/skip-allowlist.txt.

A skip hides whatever the test would have checked; a suite that is green because half of it
skipped is not green. Every skip a run is allowed must be listed with its reason.

Loaded by each suite's conftest.py:

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "support"))
    import skipguard  # noqa: E402

    def pytest_configure(config):
        skipguard.register(config)

The test id of a skip is `<suite>::<path in the suite>::<test name>`, e.g.
`integration::test_ops.py::test_immutable_wal`; the suite is the folder under tests/. The
allow-list is shared with the GoogleTest check (scripts/check-gtest-skips.py); its format
is described in tests/skip-allowlist.txt and tests/README.md.

It works with pytest-xdist: the workers only report, the controller (which receives every
worker's reports through pytest_runtest_logreport) decides. CAIRN_SKIP_GUARD=warn reports
unlisted skips without failing (for local runs without some tool); CI never sets it.
"""
from __future__ import annotations

import fnmatch
import os
import re
from pathlib import Path

import pytest

TESTS_DIR = Path(__file__).resolve().parents[1]
ALLOWLIST = Path(os.environ.get("CAIRN_SKIP_ALLOWLIST", TESTS_DIR / "skip-allowlist.txt"))

_LINE = re.compile(r"^(?P<suite>[A-Za-z0-9_]+)(?:\[(?P<engine>[a-z]+)\])?::(?P<pattern>\S+)"
                   r"\s+#\s*(?P<reason>\S.*)$")


class AllowListError(Exception):
    pass


def load_allowlist(path: Path = ALLOWLIST) -> list[dict]:
    """The entries of the allow-list: suite, engine (or None), pattern, reason. A line that
    is neither blank, a comment nor `<suite>[<engine>]::<pattern>  # <reason>` is an error:
    a skip without a reason is not allowed."""
    entries = []
    for number, raw in enumerate(path.read_text().splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        m = _LINE.match(line)
        if not m:
            raise AllowListError(f"{path}:{number}: expected '<suite>[<engine>]::<test id "
                                 f"pattern>  # <reason>' (the reason is mandatory): {raw!r}")
        entries.append(dict(m.groupdict(), line=number))
    return entries


def current_engine() -> str:
    return os.environ.get("CAIRN_TEST_META", "sqlite") or "sqlite"


def allowed(test_id: str, entries: list[dict], engine: str | None = None) -> dict | None:
    """The entry allowing `test_id` (`<suite>::<rest>`) to skip, or None."""
    engine = engine or current_engine()
    suite, _, rest = test_id.partition("::")
    for entry in entries:
        if entry["suite"] != suite:
            continue
        if entry["engine"] is not None and entry["engine"] != engine:
            continue
        if fnmatch.fnmatchcase(rest, entry["pattern"]):
            return entry
    return None


def _test_id(config, nodeid: str) -> str:
    """`<suite>::<path in suite>::<name>` for a node id relative to the rootdir."""
    path, sep, name = nodeid.partition("::")
    full = (Path(str(config.rootpath)) / path).resolve()
    try:
        rel = full.relative_to(TESTS_DIR)
    except ValueError:  # a test outside tests/ (the guard's own self-test)
        return f"{full.parent.name}::{full.name}{sep}{name}"
    parts = rel.parts
    suite = parts[0] if len(parts) > 1 else "tests"
    inner = "/".join(parts[1:]) if len(parts) > 1 else rel.as_posix()
    return f"{suite}::{inner}{sep}{name}"


def _reason(report) -> str:
    if hasattr(report, "wasxfail"):
        return f"xfail: {report.wasxfail}" if report.wasxfail else "xfail"
    longrepr = report.longrepr
    if isinstance(longrepr, tuple) and len(longrepr) == 3:
        return str(longrepr[2]).removeprefix("Skipped: ")
    return str(longrepr)


class SkipGuard:
    """The plugin object: one per run, registered by register(config)."""

    def __init__(self, config):
        self.config = config
        self.skips: dict[str, str] = {}  # test id -> reason
        self.unlisted: list[tuple[str, str]] = []
        self.error: str | None = None

    def pytest_runtest_logreport(self, report):
        # Runs in the controller for every worker's report under xdist, and in the only
        # process otherwise. A skip in setup or call, and any xfail (failed as expected or
        # passed), counts.
        if report.skipped or hasattr(report, "wasxfail"):
            self.skips.setdefault(_test_id(self.config, report.nodeid), _reason(report))

    @pytest.hookimpl(trylast=True)
    def pytest_sessionfinish(self, session, exitstatus):
        if hasattr(self.config, "workerinput"):  # an xdist worker: the controller decides
            return
        try:
            entries = load_allowlist()
        except (OSError, AllowListError) as e:
            self.error = str(e)
            session.exitstatus = pytest.ExitCode.USAGE_ERROR
            return
        self.unlisted = [(tid, why) for tid, why in sorted(self.skips.items())
                         if not allowed(tid, entries)]
        if self.unlisted and os.environ.get("CAIRN_SKIP_GUARD") != "warn" and \
                session.exitstatus == pytest.ExitCode.OK:
            session.exitstatus = pytest.ExitCode.TESTS_FAILED

    def pytest_terminal_summary(self, terminalreporter, exitstatus, config):
        if self.error:
            terminalreporter.write_sep("=", "skip guard: the allow-list is invalid", red=True)
            terminalreporter.write_line(self.error)
            return
        if not self.unlisted:
            return
        warn_only = os.environ.get("CAIRN_SKIP_GUARD") == "warn"
        title = (f"skip guard: {len(self.unlisted)} skipped test(s) not on {ALLOWLIST.name}" +
                 (" (CAIRN_SKIP_GUARD=warn: not failing)" if warn_only else
                  " - the run FAILS"))
        terminalreporter.write_sep("=", title, red=not warn_only, yellow=warn_only)
        for tid, why in self.unlisted:
            terminalreporter.write_line(f"UNLISTED SKIP {tid}  ({why})")
        terminalreporter.write_line(f"Fix the cause of the skip, or add "
                                    f"'<suite>::<test id>  # <reason>' to {ALLOWLIST}.")


def register(config) -> None:
    """Installs the guard for this run; call from the suite's conftest pytest_configure."""
    if not config.pluginmanager.has_plugin("cairn-skipguard"):
        config.pluginmanager.register(SkipGuard(config), "cairn-skipguard")
