"""kill -9 of a mount in the middle of writes loses nothing that close or fsync
acknowledged, and leaves the store consistent (fsck clean)."""
from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import time

CYCLES = int(os.environ.get("CAIRN_FS_CRASH_CYCLES", 8))

WRITER = r'''
import hashlib, os, random, sys
mnt, manifest, seed = sys.argv[1], sys.argv[2], int(sys.argv[3])
rng = random.Random(seed)
device = os.stat(mnt).st_dev  # the mount's: a write that lands anywhere else is not logged
with open(manifest, "a") as log:
    for i in range(100000):
        name = f"c{seed}-{i}"
        size = rng.choice([0, 1, 4096, 128 * 1024, 5 * 1024 * 1024 + 7])
        data = rng.randbytes(size)
        path = os.path.join(mnt, name)
        fd = os.open(path, os.O_CREAT | os.O_WRONLY | os.O_TRUNC, 0o644)
        for at in range(0, size, 1 << 20):
            os.write(fd, data[at:at + (1 << 20)])
        if i % 2:
            os.fsync(fd)
        os.close(fd)  # close acknowledges too: the mount's flush stored and committed it
        if os.stat(path).st_dev != device:
            sys.exit(0)
        log.write(f"{name} {hashlib.sha256(data).hexdigest()}\n")
        log.flush()
        os.fsync(log.fileno())
'''


def test_kill_9_loses_nothing_acknowledged(volume, tmp_path):
    manifest = tmp_path / "manifest"
    script = tmp_path / "writer.py"
    script.write_text(WRITER)
    point = tmp_path / "mnt"
    for cycle in range(CYCLES):
        mnt = volume.mount(point)
        writer = subprocess.Popen([sys.executable, str(script), str(mnt), str(manifest),
                                   str(cycle)], stderr=subprocess.DEVNULL)
        time.sleep(0.8 + 0.15 * (cycle % 5))

        def stop_writer():
            writer.kill()
            writer.wait(timeout=30)

        volume.kill(point, before_unmount=stop_writer)
    mnt = volume.mount(point)
    lines = manifest.read_text().splitlines()
    assert len(lines) > CYCLES, "the writer never got going"
    for line in lines:
        name, digest = line.split()
        data = (mnt / name).read_bytes()
        assert hashlib.sha256(data).hexdigest() == digest, f"{name} differs after kill -9"
    volume.umount(mnt)
    report = volume.fsck().stdout.lower()
    assert "clean" in report, report
