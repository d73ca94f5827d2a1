"""Backup and restore of a volume: `cairn mount --backup-meta` writes the volume's tree into
the rotating metadata snapshots, and `cairn meta load` of one into a fresh metadata store
over the same data directory gives back the same tree, byte for byte."""
from __future__ import annotations

import json
import os
import stat
import time
from pathlib import Path

from conftest import Volume, run

MiB = 1 << 20


def snapshot_tree(root: Path) -> dict:
    """Everything a program can see of the tree under `root`, by relative path: type,
    mode, owner, size, mtime, content, symlink target, xattrs; and which paths share an
    inode (hard links), as groups of paths."""
    tree = {}
    by_inode: dict[int, list[str]] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        for name in sorted(dirnames + filenames):
            path = Path(dirpath) / name
            rel = str(path.relative_to(root))
            st = os.lstat(path)
            entry = {
                "mode": st.st_mode, "uid": st.st_uid, "gid": st.st_gid,
                "size": st.st_size if not stat.S_ISDIR(st.st_mode) else None,
                "mtime_ns": st.st_mtime_ns, "nlink": st.st_nlink,
                "xattrs": {x: os.getxattr(path, x, follow_symlinks=False)
                           for x in sorted(os.listxattr(path, follow_symlinks=False))},
            }
            if stat.S_ISLNK(st.st_mode):
                entry["target"] = os.readlink(path)
            elif stat.S_ISREG(st.st_mode):
                entry["content"] = path.read_bytes()
            tree[rel] = entry
            by_inode.setdefault(st.st_ino, []).append(rel)
    links = sorted(sorted(paths) for paths in by_inode.values() if len(paths) > 1)
    return {"tree": tree, "links": links}


def wait_for_snapshot(directory: Path, after_ns: int, timeout: float = 15) -> Path:
    """The first snapshot in `directory` taken after `after_ns` (its header's time)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for path in sorted(directory.glob("meta-*.jsonl")) if directory.is_dir() else []:
            header = json.loads(path.read_text().split("\n", 1)[0])
            if header["created_at_ms"] * 1_000_000 > after_ns:
                return path
        time.sleep(0.1)
    raise AssertionError(f"no snapshot in {directory} after {after_ns}: "
                         f"{sorted(p.name for p in directory.glob('*'))}")


def test_a_volume_is_backed_up_by_its_mount_and_restored_byte_for_byte(tmp_path):
    # Trash off, so that a file removed while open is an orphan of the mount's session,
    # which snapshots leave out.
    volume = Volume(tmp_path)
    volume.format("--trash-days", "0")
    backups = tmp_path / "backups"
    try:
        # The interval is validated before anything is mounted.
        bad = run("mount", "--data-dir", volume.data, volume.meta_url, tmp_path / "bad",
                  "--backup-meta", "5 minutes", check=False)
        assert bad.returncode != 0 and "--backup-meta" in bad.stderr, bad.stderr

        mnt = volume.mount(tmp_path / "mnt", "--backup-meta", "1s", "--backup-dir", backups)
        os.makedirs(mnt / "a" / "b" / "c")
        os.chmod(mnt / "a" / "b", 0o750)
        sizes = {"empty": 0, "one": 1, "page": 4095, "big": 4 * MiB + 17, "bigger": 9 * MiB + 3}
        for name, size in sizes.items():
            (mnt / "a" / name).write_bytes(os.urandom(size))
        os.chmod(mnt / "a" / "one", 0o4711)
        # A sparse file: holes before and between its written blocks.
        with open(mnt / "a" / "b" / "sparse", "wb") as f:
            f.seek(13 * MiB)
            f.write(b"after a hole")
            f.seek(30 * MiB)
            f.write(b"and another")
        os.link(mnt / "a" / "big", mnt / "a" / "b" / "c" / "big-again")
        os.symlink("../a/b/c/big-again", mnt / "a" / "b" / "to-big")
        os.symlink("nowhere/\u00e9t\u00e9", mnt / "dangling")
        os.mkfifo(mnt / "a" / "fifo", 0o640)
        os.setxattr(mnt / "a" / "big", "user.binary", b"\x00\xff\x01\x80 bytes\x00")
        os.setxattr(mnt / "a" / "b", "user.empty", b"")
        (mnt / "caf\u00e9 \u2603.txt").write_text("unicode names\n")
        os.utime(mnt / "a" / "page", ns=(1_000_000_000, 1_234_567_890_123_456_789))
        # Open and unlinked: nothing names it, so a restore does not hold it.
        held = open(mnt / "held-open", "wb")
        held.write(os.urandom(100_000))
        held.flush()
        os.fsync(held.fileno())  # its chunk is stored before the snapshot, as everything else
        os.unlink(mnt / "held-open")
        before = snapshot_tree(mnt)
        assert before["links"] == [["a/b/c/big-again", "a/big"]], before["links"]
        written_ns = time.time_ns()

        snapshot = wait_for_snapshot(backups, written_ns)
        header = json.loads(snapshot.read_text().split("\n", 1)[0])
        assert header["version"] == 4 and header["counts"]["volumes"] == 1, header
        assert '"sequences":[' in snapshot.read_text()  # the sparse file's block indexes
        held.close()
        volume.umount(mnt)
    finally:
        volume.close()

    # A fresh metadata store over the same data directory (its chunks).
    restored = Volume(tmp_path, data=volume.data,
                      meta_url=f"sqlite://{volume.data}/restored.db")
    loaded = run("meta", "load", "--data-dir", restored.data, "--meta", restored.meta_url,
                 "--in", snapshot)
    assert "filesystem volume" in loaded.stderr, loaded.stderr
    try:
        again = restored.mount(tmp_path / "again")
        after = snapshot_tree(again)
        assert sorted(after["tree"]) == sorted(before["tree"])
        for path, entry in before["tree"].items():
            assert after["tree"][path] == entry, path
        assert after["links"] == before["links"]
        # The restored volume is writable and hands out fresh inode numbers.
        (again / "new").write_bytes(b"new")
        inodes = {os.lstat(again / p).st_ino for p in before["tree"]}
        assert os.lstat(again / "new").st_ino not in inodes
        restored.umount(again)
        fsck = restored.fsck()
        assert fsck.returncode == 0, fsck.stdout + fsck.stderr
    finally:
        restored.close()
    # Loading is only into an empty store: a second load changes nothing.
    second = run("meta", "load", "--data-dir", restored.data, "--meta", restored.meta_url,
                 "--in", snapshot, check=False)
    assert second.returncode != 0 and "not empty" in second.stderr, second.stderr
