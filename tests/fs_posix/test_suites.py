"""The pinned POSIX suites against a mount: pjdfstest, fsx and fsstress (CI-sized; the
documented long runs are in docs/filesystem.md)."""
from __future__ import annotations

import os
import re
import subprocess

FSX_OPS = int(os.environ.get("CAIRN_FSX_OPS", 20000))
FSSTRESS_OPS = int(os.environ.get("CAIRN_FSSTRESS_OPS", 2000))


def test_pjdfstest(volume, tmp_path, suites):
    mnt = volume.mount(tmp_path / "mnt")
    work = mnt / "pjd"
    work.mkdir()
    tests = suites["pjdfstest"].parent / "tests"
    result = subprocess.run(["prove", "-r", str(tests)], cwd=work, capture_output=True,
                            text=True, timeout=1800)
    (tmp_path / "pjdfstest.log").write_text(result.stdout + result.stderr)
    summary = re.search(r"Files=(\d+), Tests=(\d+)", result.stdout)
    assert summary, result.stdout[-3000:]
    failed = [line for line in result.stdout.splitlines() if "Failed" in line or "Wstat" in line]
    assert result.returncode == 0, "\n".join(failed[:80]) + "\n" + result.stdout[-2000:]
    volume.umount(mnt)


def test_fsx_with_and_without_mmap(volume, tmp_path, suites):
    mnt = volume.mount(tmp_path / "mnt")
    for label, flags in (("mmap", []), ("no-mmap", ["-R", "-W"])):
        result = subprocess.run(
            [str(suites["fsx"]), "-q", "-N", str(FSX_OPS), "-S", "7", *flags,
             str(mnt / f"fsx-{label}")],
            capture_output=True, text=True, timeout=1200)
        assert result.returncode == 0, f"fsx {label}:\n{result.stdout[-4000:]}{result.stderr}"
    volume.umount(mnt)
    assert "clean" in volume.fsck().stdout.lower()


def test_fsstress_eight_processes(volume, tmp_path, suites):
    mnt = volume.mount(tmp_path / "mnt")
    (mnt / "stress").mkdir()
    result = subprocess.run(
        [str(suites["fsstress"]), "-d", str(mnt / "stress"), "-p", "8", "-n", str(FSSTRESS_OPS),
         "-s", "7"],
        capture_output=True, text=True, timeout=1200)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
    subprocess.run(["rm", "-rf", str(mnt / "stress")], check=True, timeout=600)
    volume.umount(mnt)
    assert "clean" in volume.fsck().stdout.lower()
