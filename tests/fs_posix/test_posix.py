"""A mounted volume behaves as POSIX says, seen through the kernel by ordinary programs."""
from __future__ import annotations

import ctypes
import errno
import os
from collections import Counter
import subprocess

import pytest

from conftest import run


def test_format_is_idempotent_and_refuses_another_name(volume):
    again = volume.format()
    assert "volume vol " in again.stdout
    other = run("format", "--data-dir", volume.data, volume.meta_url, "other", check=False)
    assert other.returncode != 0
    assert "vol" in other.stderr


def test_mount_refuses_an_unformatted_store(tmp_path):
    data = tmp_path / "data"
    point = tmp_path / "mnt"
    point.mkdir()
    result = run("mount", "--data-dir", data, f"sqlite://{data}/meta.db", point, "-d",
                 check=False)
    assert result.returncode != 0
    assert "cairn format" in result.stderr


def test_files_directories_links_and_renames(volume, tmp_path):
    mnt = volume.mount(tmp_path / "mnt")
    (mnt / "d").mkdir()
    (mnt / "d" / "f").write_bytes(b"hello")
    os.link(mnt / "d" / "f", mnt / "g")
    assert os.stat(mnt / "g").st_nlink == 2
    os.symlink("d/f", mnt / "s")
    assert (mnt / "s").read_bytes() == b"hello"
    os.rename(mnt / "g", mnt / "d" / "h")
    assert sorted(os.listdir(mnt / "d")) == ["f", "h"]
    (mnt / "x").write_bytes(b"replaced")
    os.rename(mnt / "x", mnt / "d" / "f")  # over an existing file
    assert (mnt / "d" / "h").read_bytes() == b"hello"
    assert (mnt / "d" / "f").read_bytes() == b"replaced"
    with pytest.raises(OSError) as error:
        os.rmdir(mnt / "d")
    assert error.value.errno == errno.ENOTEMPTY
    with pytest.raises(OSError) as error:
        (mnt / ("n" * 256)).write_bytes(b"")
    assert error.value.errno == errno.ENAMETOOLONG
    (mnt / ("n" * 255)).write_bytes(b"ok")
    volume.umount(mnt)


def test_lock_files_append_truncate_and_unlink_while_open(volume, tmp_path):
    mnt = volume.mount(tmp_path / "mnt")
    lock = mnt / "index.lock"
    fd = os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
    with pytest.raises(FileExistsError):
        os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
    os.close(fd)
    log = mnt / "log"
    for i in range(3):
        with open(log, "ab") as f:
            f.write(b"line %d\n" % i)
    assert log.read_bytes() == b"line 0\nline 1\nline 2\n"
    with open(log, "r+b") as f:
        f.truncate(3)
    assert log.read_bytes() == b"lin"
    os.truncate(log, 10)  # grows with zeros
    assert log.read_bytes() == b"lin" + bytes(7)
    keep = open(mnt / "tmp", "w+b")
    keep.write(b"still here")
    keep.flush()
    os.unlink(mnt / "tmp")
    assert not (mnt / "tmp").exists()
    keep.seek(0)
    assert keep.read() == b"still here"
    keep.close()
    os.setxattr(log, "user.k", b"v")
    assert os.getxattr(log, "user.k") == b"v"
    assert "user.k" in os.listxattr(log)
    volume.umount(mnt)


def test_large_sparse_and_overwritten_files_read_back_exactly(volume, tmp_path):
    mnt = volume.mount(tmp_path / "mnt")
    data = os.urandom(9 * 1024 * 1024 + 12345)  # three blocks, the last one short
    (mnt / "big").write_bytes(data)
    assert (mnt / "big").read_bytes() == data
    with open(mnt / "big", "r+b") as f:  # a write across a block boundary
        f.seek(4 * 1024 * 1024 - 3)
        f.write(b"XXXXXX")
    expected = bytearray(data)
    expected[4 * 1024 * 1024 - 3:4 * 1024 * 1024 + 3] = b"XXXXXX"
    with open(mnt / "sparse", "wb") as f:
        f.seek(100 * 1024 * 1024)
        f.write(b"end")
    volume.umount(mnt)
    mnt = volume.mount(tmp_path / "mnt")  # what a fresh mount reads comes from the store
    assert (mnt / "big").read_bytes() == bytes(expected)
    with open(mnt / "sparse", "rb") as f:
        assert f.read(4096) == bytes(4096)
        f.seek(100 * 1024 * 1024)
        assert f.read() == b"end"
    assert os.stat(mnt / "sparse").st_size == 100 * 1024 * 1024 + 3
    volume.umount(mnt)
    assert "clean" in volume.fsck().stdout.lower()


class _Dirent(ctypes.Structure):
    _fields_ = [("d_ino", ctypes.c_uint64), ("d_off", ctypes.c_int64),
                ("d_reclen", ctypes.c_ushort), ("d_type", ctypes.c_ubyte),
                ("d_name", ctypes.c_char * 256)]


def _libc_dirs():
    libc = ctypes.CDLL("libc.so.6", use_errno=True)
    libc.opendir.restype = ctypes.c_void_p
    libc.opendir.argtypes = [ctypes.c_char_p]
    libc.readdir.restype = ctypes.POINTER(_Dirent)
    libc.readdir.argtypes = [ctypes.c_void_p]
    libc.telldir.restype = ctypes.c_long
    libc.telldir.argtypes = [ctypes.c_void_p]
    libc.seekdir.argtypes = [ctypes.c_void_p, ctypes.c_long]
    libc.rewinddir.argtypes = [ctypes.c_void_p]
    libc.closedir.argtypes = [ctypes.c_void_p]
    return libc


def _next_name(libc, handle):
    entry = libc.readdir(handle)
    return entry.contents.d_name.decode() if entry else None


def test_a_large_directory_lists_once_seeks_back_and_survives_changes_while_read(volume,
                                                                                  tmp_path):
    """A directory far larger than what an open directory keeps of its listing (a window of
    1,024 entries): every name comes exactly once, telldir/seekdir go back before the
    window and rewinddir starts again, and names added or removed while a listing is read
    leave every other name listed exactly once (POSIX)."""
    mnt = volume.mount(tmp_path / "mnt")
    big = mnt / "big"
    big.mkdir()
    names = [f"entry-{i:05d}" for i in range(12_000)]
    for name in names:
        os.close(os.open(big / name, os.O_CREAT | os.O_WRONLY, 0o644))
    libc = _libc_dirs()
    handle = libc.opendir(str(big).encode())
    assert handle, os.strerror(ctypes.get_errno())
    try:
        seen, marks = [], {}
        while True:
            if len(seen) in (100, 5_000):
                marks[len(seen)] = libc.telldir(handle)
            name = _next_name(libc, handle)
            if name is None:
                break
            seen.append(name)
        listed = [n for n in seen if n not in (".", "..")]
        assert len(listed) == len(names) and set(listed) == set(names)
        for at, mark in marks.items():  # both lie before the window by now
            libc.seekdir(handle, mark)
            assert _next_name(libc, handle) == seen[at]
        libc.rewinddir(handle)
        assert [_next_name(libc, handle) for _ in range(len(seen))] == seen
        assert _next_name(libc, handle) is None
    finally:
        libc.closedir(handle)

    # Changes while a listing is read: what was not touched is listed exactly once.
    handle = libc.opendir(str(big).encode())
    try:
        first = [_next_name(libc, handle) for _ in range(3_000)]
        first = [n for n in first if n not in (".", "..")]
        removed = set(first[:1_000]) | set(names[-1_000:])
        for name in removed:
            os.unlink(big / name)
        added = {f"added-{i:04d}" for i in range(500)}
        for name in added:
            os.close(os.open(big / name, os.O_CREAT | os.O_WRONLY, 0o644))
        rest = []
        while (name := _next_name(libc, handle)) is not None:
            rest.append(name)
    finally:
        libc.closedir(handle)
    together = first + rest
    untouched = set(names) - removed
    counts = Counter(together)
    assert all(counts[name] == 1 for name in untouched), [
        n for n in untouched if counts[n] != 1][:10]
    assert all(count == 1 for name, count in counts.items() if name not in (".", ".."))
    assert sorted(os.listdir(big)) == sorted(untouched | added)
    volume.umount(mnt)


def test_subdir_confines_the_mount(volume, tmp_path):
    mnt = volume.mount(tmp_path / "all")
    (mnt / "home" / "agent1").mkdir(parents=True)
    (mnt / "home" / "agent1" / "notes").write_bytes(b"mine")
    (mnt / "secret").write_bytes(b"not for agent1")
    sub = volume.mount(tmp_path / "agent1", "--subdir", "/home/agent1")
    assert os.listdir(sub) == ["notes"]
    assert (sub / "notes").read_bytes() == b"mine"
    # ".." of the mount's root is the mount point's parent, not the volume's /home.
    assert os.path.realpath(sub / "..") == str(tmp_path)
    assert not (sub / ".." / "secret").exists()
    volume.umount(sub)
    missing = run("mount", "--data-dir", volume.data, volume.meta_url, tmp_path / "agent1",
                  "-d", "--subdir", "/nope", check=False)
    assert missing.returncode != 0
    volume.umount(mnt)


def test_read_only_mount_refuses_writes(volume, tmp_path):
    mnt = volume.mount(tmp_path / "rw")
    (mnt / "f").write_bytes(b"x")
    volume.umount(mnt)
    ro = volume.mount(tmp_path / "ro", "--read-only")
    assert (ro / "f").read_bytes() == b"x"
    with pytest.raises(OSError) as error:
        (ro / "g").write_bytes(b"y")
    assert error.value.errno == errno.EROFS
    volume.umount(ro)
