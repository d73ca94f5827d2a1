"""Fixtures of the filesystem tests: a formatted volume on SQLite and `cairn mount`s of it, and a
PostgreSQL server of one test."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "support"))

import skipguard  # noqa: E402  (fails the run on a skip not on tests/skip-allowlist.txt)

ROOT = Path(__file__).resolve().parents[2]
CAIRN = os.environ.get("CAIRN_BIN", str(ROOT / "build" / "cairn"))


def pytest_configure(config):
    skipguard.register(config)


def run(*args, check=True, timeout=120, **kwargs):
    result = subprocess.run([CAIRN, *map(str, args)], capture_output=True, text=True,
                            timeout=timeout, **kwargs)
    if check and result.returncode != 0:
        raise AssertionError(f"cairn {' '.join(map(str, args))} failed "
                             f"({result.returncode}):\n{result.stdout}\n{result.stderr}")
    return result


def is_mounted(path: Path) -> bool:
    target = os.path.realpath(path)
    with open("/proc/self/mounts") as mounts:
        return any(line.split()[1] == target for line in mounts)


class Volume:
    """A volume: its data directory, its SQLite metadata and the mounts started on it."""

    def __init__(self, base: Path, name: str = "vol", data: Path | None = None,
                 meta_url: str | None = None):
        self.base = base
        self.data = data or base / "data"
        self.meta_url = meta_url or f"sqlite://{self.data}/meta.db"
        self.name = name
        self.mounts: list[tuple[Path, int]] = []

    def format(self, *extra):
        return run("format", "--data-dir", self.data, self.meta_url, self.name, *extra)

    def mount(self, point: Path, *extra) -> Path:
        point.mkdir(parents=True, exist_ok=True)
        log = self.base / f"mount-{point.name}.log"
        result = run("mount", "--data-dir", self.data, self.meta_url, point, "-d",
                     "--log-file", log, *extra, timeout=60)
        pid = int(result.stdout.rsplit("(pid ", 1)[1].split(")")[0])
        assert is_mounted(point), result.stdout + result.stderr
        self.mounts.append((point, pid))
        return point

    def kill(self, point: Path, before_unmount=None):
        """kill -9 of the mount process, then the kernel's side of the mount goes too.
        `before_unmount` runs in between: once the mount point is detached, a path under it
        names the directory beneath, so writers must be gone by then."""
        for entry in list(self.mounts):
            if entry[0] == point:
                os.kill(entry[1], 9)
                wait_gone(entry[1])
                self.mounts.remove(entry)
        if before_unmount is not None:
            before_unmount()
        subprocess.run(["fusermount3", "-u", "-z", str(point)], capture_output=True)

    def umount(self, point: Path):
        deadline = time.monotonic() + 30
        while True:
            result = run("umount", point, check=False)
            if result.returncode == 0 or time.monotonic() > deadline:
                break
            time.sleep(0.2)  # EBUSY: a process of the test still leaves the mount
        assert result.returncode == 0, result.stderr
        for entry in list(self.mounts):
            if entry[0] == point:
                wait_gone(entry[1])
                self.mounts.remove(entry)

    def fsck(self):
        return run("fsck", "--data-dir", self.data, "--meta", self.meta_url, timeout=600)

    def close(self):
        for point, pid in list(self.mounts):
            subprocess.run(["fusermount3", "-u", "-z", str(point)], capture_output=True)
            try:
                os.kill(pid, 9)
            except ProcessLookupError:
                pass
            wait_gone(pid)
        self.mounts.clear()


def wait_gone(pid: int, timeout: float = 30):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
            with open(f"/proc/{pid}/stat") as stat:
                if stat.read().rsplit(")", 1)[1].split()[0] == "Z":
                    return  # exited; its parent (not us) reaps it
        except (ProcessLookupError, FileNotFoundError):
            return
        try:  # our child when the test started it in the foreground; else init reaps it
            os.waitpid(pid, os.WNOHANG)
        except ChildProcessError:
            pass
        time.sleep(0.05)
    raise AssertionError(f"process {pid} did not exit")


@pytest.fixture
def volume(tmp_path):
    vol = Volume(tmp_path)
    vol.format()
    yield vol
    vol.close()


@pytest.fixture(scope="session")
def suites():
    """pjdfstest, fsx and fsstress built from ../shared/third_party (once per build dir)."""
    dest = os.environ.get("CAIRN_SUITES_DIR", str(ROOT / "build" / "third_party"))
    out = subprocess.run(["bash", str(ROOT / "tests/fs_posix/build_suites.sh"), dest],
                         capture_output=True, text=True, timeout=900, check=True)
    paths = out.stdout.split()
    return {"pjdfstest": Path(paths[0]), "fsx": Path(paths[1]), "fsstress": Path(paths[2])}


# ---- a PostgreSQL server of one test ---------------------------------------------------------

PG_SCRIPT = ROOT / "scripts" / "postgres-test-server.sh"


def pg(command: str, directory: Path) -> str:
    r = subprocess.run([str(PG_SCRIPT), command, str(directory)], capture_output=True, text=True,
                       timeout=120, stdin=subprocess.DEVNULL)
    assert r.returncode == 0, f"postgres-test-server.sh {command}: {r.stderr[-2000:]}"
    return r.stdout.strip().splitlines()[-1] if r.stdout.strip() else ""


@pytest.fixture
def own_postgres():
    """A PostgreSQL server used by this test alone: stopping it disturbs nothing else."""
    if not Path("/usr/lib/postgresql/15/bin/pg_ctl").exists():
        pytest.skip("PostgreSQL 15 server binaries are not installed (scripts/install-deps.sh)")
    # Not under pytest's tmp dir: the server runs as the postgres user.
    directory = Path(tempfile.mkdtemp(prefix="cairn-fs-pg-", dir="/tmp"))
    try:
        yield directory, pg("start", directory)
    finally:
        pg("stop", directory)
        shutil.rmtree(directory, ignore_errors=True)
