"""Bad days for a mount: a full chunk store, a chunk whose bytes no longer match its name,
a metadata database that goes away, SIGTERM while files are being written.

What a user checks: an error reaches the program (write, fsync or close fails) whenever data
was not stored; what was acknowledged reads back byte-identical, also after a remount; a
damaged chunk is never served; no call hangs; the mount point is never left dangling; and
`cairn fsck` is clean afterwards."""
from __future__ import annotations

import errno
import hashlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import Volume, is_mounted, pg, run, wait_gone

MiB = 1 << 20
BLOCK = 4 * MiB  # fs::kBlockBytes: a file's block is one chunk


def digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def write_file(path: Path, data: bytes, fsync: bool) -> None:
    """Writes a whole file; raises OSError from whichever call failed (the fd is closed
    either way, and a failing close raises too)."""
    fd = os.open(path, os.O_CREAT | os.O_WRONLY | os.O_TRUNC, 0o644)
    step = "write"
    try:
        for at in range(0, len(data), MiB):
            os.write(fd, data[at:at + MiB])
        step = "fsync"
        if fsync:
            os.fsync(fd)
    except OSError as e:
        e.step = step
        try:
            os.close(fd)
        except OSError:
            pass
        raise
    try:
        os.close(fd)
    except OSError as e:
        e.step = "close"
        raise


PROBE = r'''
import errno, os, sys
op, path = sys.argv[1], sys.argv[2]
try:
    if op == "stat":
        os.stat(path)
    elif op == "read":
        with open(path, "rb") as f:
            f.read()
    elif op == "create":
        fd = os.open(path, os.O_CREAT | os.O_WRONLY, 0o644)
        os.write(fd, b"x" * 4096)
        os.close(fd)
    elif op == "list":
        os.listdir(path)
    print("ok")
except OSError as e:
    print(errno.errorcode.get(e.errno, str(e.errno)))
'''


def probe(op: str, path: Path, bound: float) -> tuple[str, float]:
    """One file system call in a child process (a hung FUSE request must not hang the
    test): what it answered ("ok" or the errno's name) and how long it took."""
    start = time.monotonic()
    child = subprocess.Popen([sys.executable, "-c", PROBE, op, str(path)],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        out, _ = child.communicate(timeout=bound)
    except subprocess.TimeoutExpired:
        child.kill()
        child.communicate(timeout=30)
        return "hung", time.monotonic() - start
    return out.strip(), time.monotonic() - start


# ---- 1. ENOSPC from the chunk store -------------------------------------------------------

SMALL_MIB = 48


@pytest.fixture
def small_fs(tmp_path):
    """A tmpfs of SMALL_MIB MiB that the test fills (unmounted however the test ends)."""
    point = tmp_path / "small"
    point.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={SMALL_MIB}m,mode=0700",
                              "tmpfs", str(point)], capture_output=True, text=True, timeout=30)
    assert mounted.returncode == 0, f"cannot mount a tmpfs (tests run as root): {mounted.stderr}"
    try:
        yield point
    finally:
        subprocess.run(["umount", "-l", str(point)], capture_output=True, timeout=30)


def holds_bytes(path):
    try:
        return path.stat().st_size > 0
    except FileNotFoundError:  # went meanwhile
        return False


@pytest.mark.parametrize("buffer_mib", ["64", "4"], ids=["close", "write"])
def test_full_chunk_store_fails_the_write_and_loses_nothing(small_fs, tmp_path, buffer_mib):
    # With the default 64 MiB buffer a 4 MiB file is stored by fsync or close; with a 4 MiB
    # buffer, by the write that fills the block.
    # The default layout, data and SQLite database in one directory, both on the small file
    # system: the hardest case (the database must still commit the deletes that free space;
    # the space reserve beside it is for that). The mount's log stays outside.
    vol = Volume(tmp_path, data=small_fs / "data")
    vol.format("--trash-days", "0")  # deleting must free the space (no trash to keep it)
    try:
        mnt = vol.mount(tmp_path / "mnt", "--buffer-size", buffer_mib)
        stored: dict[str, str] = {}
        failure = None
        for i in range(3 * SMALL_MIB // 4):  # bounded: the disk holds fewer 4 MiB files
            data = os.urandom(BLOCK)
            try:
                write_file(mnt / f"fill-{i}", data, fsync=bool(i % 2))
            except OSError as e:
                failure = (f"fill-{i}", data, e)
                break
            stored[f"fill-{i}"] = digest(data)
        assert failure is not None, "the small file system never filled"
        name, data, error = failure
        assert error.errno == errno.ENOSPC, f"{name}: {error!r} (want ENOSPC)"
        if buffer_mib == "4":  # the 4th MiB fills the block: that write() stores it
            assert error.step == "write", f"{name}: {error.step} failed, not write"
        else:
            assert error.step == ("fsync" if int(name.split("-")[1]) % 2 else "close"), error.step
        assert len(stored) >= 3, "failed before the disk was nearly full"
        # The refused chunk leaves no temp file behind to hold the space. (The kernel's
        # release of the closed file comes later and retries the buffered block once; its
        # temp file goes as that attempt fails, hence the bounded wait.) The mount's spare
        # temp files, made ahead and empty, hold no space.
        deadline = time.monotonic() + 10
        while True:
            leftovers = [p for p in vol.data.glob("*/tmp/*") if holds_bytes(p)]
            if not leftovers or time.monotonic() > deadline:
                break
            time.sleep(0.05)
        assert not leftovers, leftovers

        # More writes on the full disk: each fails, or (when it fit) is really there.
        for i in range(4):
            small = os.urandom(64 * 1024 * (i + 1))
            try:
                write_file(mnt / f"more-{i}", small, fsync=bool(i % 2))
            except OSError as e:
                assert e.errno == errno.ENOSPC, f"more-{i}: {e!r}"
                continue
            stored[f"more-{i}"] = digest(small)

        def check(names):
            for n in names:
                assert digest((mnt / n).read_bytes()) == stored[n], f"{n} differs"

        check(stored)
        vol.umount(mnt)
        mnt = vol.mount(tmp_path / "mnt")
        check(stored)
        # What close refused is not there: at most a prefix of it. (Read after the remount:
        # until its last handle is released, the mount keeps unstored writes for a retry,
        # and a flush by another handle of the file retries them.)
        kept = (mnt / name).read_bytes()
        assert data.startswith(kept), f"{name} holds bytes that were never written"

        # Free space as a user would: delete files through the mount, then collect.
        doomed = sorted(stored)[: max(3, len(stored) // 2)]
        for n in doomed:
            os.unlink(mnt / n)
            del stored[n]
        for leftover in (name, *(f"more-{i}" for i in range(4))):
            if leftover not in stored and (mnt / leftover).exists():
                os.unlink(mnt / leftover)
        run("gc", "--data-dir", vol.data, "--meta", vol.meta_url, "--grace", "0",
            "--allow-mass-delete")
        for i in range(2):
            data = os.urandom(BLOCK)
            write_file(mnt / f"after-{i}", data, fsync=bool(i))
            stored[f"after-{i}"] = digest(data)
        check(stored)
        vol.umount(mnt)
        mnt = vol.mount(tmp_path / "mnt")
        check(stored)
        vol.umount(mnt)
        report = vol.fsck().stdout
        assert report.strip().endswith("clean"), report
    finally:
        vol.close()


def test_a_write_refused_for_a_full_disk_never_appears_later(small_fs, tmp_path):
    """A write() that failed with ENOSPC (its buffer's flush could not store) must leave
    nothing behind: once space is freed, closing the still-open file commits only what was
    acknowledged, never the refused bytes."""
    vol = Volume(tmp_path, data=small_fs / "data")
    vol.format("--trash-days", "0")
    try:
        # A 4 MiB buffer: every write that fills it flushes, so write() itself reports.
        mnt = vol.mount(tmp_path / "mnt", "--buffer-size", "4")
        old = os.urandom(BLOCK)
        write_file(mnt / "ghost", old, fsync=True)
        assert (mnt / "ghost").read_bytes() == old  # in the kernel's page cache now
        filled = []
        for i in range(3 * SMALL_MIB // 4):  # bounded: the disk holds fewer 4 MiB files
            try:
                write_file(mnt / f"fill-{i}", os.urandom(BLOCK), fsync=True)
            except OSError as e:
                assert e.errno == errno.ENOSPC, repr(e)
                break
            filled.append(f"fill-{i}")
        assert len(filled) >= 3, "failed before the disk was nearly full"
        fd = os.open(mnt / "victim", os.O_CREAT | os.O_WRONLY | os.O_TRUNC, 0o644)
        acknowledged = b""
        refused = None
        try:
            for i in range(16):  # bounded: the disk is full already
                piece = os.urandom(MiB)
                try:
                    n = os.write(fd, piece)
                except OSError as e:
                    assert e.errno == errno.ENOSPC, repr(e)
                    refused = piece
                    break
                acknowledged += piece[:n]
            assert refused is not None, "no write was refused on a full disk"
            # Rewriting a cached file fails the same way; reopened, it shows its stored
            # bytes, never the refused ones the page cache took on their way.
            with pytest.raises(OSError) as failed:
                with open(mnt / "ghost", "r+b") as f:
                    f.write(os.urandom(len(old)))
            assert failed.value.errno == errno.ENOSPC, repr(failed.value)
            assert (mnt / "ghost").read_bytes() == old, "a refused rewrite is served from cache"
            # Space comes back while the file is still open.
            for name in filled[: len(filled) // 2 + 1]:
                os.unlink(mnt / name)
            run("gc", "--data-dir", vol.data, "--meta", vol.meta_url, "--grace", "0",
                "--allow-mass-delete")
        finally:
            os.close(fd)  # a flush with room: it must not commit the refused write
        assert (mnt / "victim").read_bytes() == acknowledged
        vol.umount(mnt)
        mnt = vol.mount(tmp_path / "mnt")
        kept = (mnt / "victim").read_bytes()
        assert len(kept) == len(acknowledged), (len(kept), len(acknowledged))
        assert kept == acknowledged, "the file holds bytes of a refused write"
        vol.umount(mnt)
    finally:
        vol.close()


# ---- 2. A corrupt chunk -----------------------------------------------------------------

def test_corrupt_chunk_is_never_served(volume, tmp_path):
    mnt = volume.mount(tmp_path / "mnt")
    bad = os.urandom(MiB + 123)
    good = os.urandom(2 * MiB)
    write_file(mnt / "bad", bad, fsync=False)
    write_file(mnt / "good", good, fsync=True)
    volume.umount(mnt)

    # A chunk file is named by the SHA-256 of its bytes: one block, one chunk.
    found = [p for p in volume.data.rglob(digest(bad)) if "quarantine" not in p.parts]
    assert len(found) == 1, f"no chunk file named {digest(bad)} under {volume.data}"
    chunk = found[0]
    raw = bytearray(chunk.read_bytes())
    assert raw == bad, "the chunk file does not hold the file's bytes as written"
    raw[len(raw) // 2] ^= 0x01
    chunk.write_bytes(bytes(raw))

    mnt = volume.mount(tmp_path / "mnt")
    log = tmp_path / "mount-mnt.log"
    for attempt in range(2):  # the first read finds it, the second knows it is damaged
        with pytest.raises(OSError) as failed:
            (mnt / "bad").read_bytes()
        assert failed.value.errno == errno.EIO, f"read {attempt}: {failed.value!r}"
    # A write into the middle of its block, or a truncate inside it, needs the block's other
    # bytes: it fails rather than store a new chunk made of zeros or damaged bytes.
    fd = os.open(mnt / "bad", os.O_WRONLY)
    try:
        with pytest.raises(OSError) as failed:
            os.pwrite(fd, b"patch", 1000)
            os.fsync(fd)
        assert failed.value.errno == errno.EIO, repr(failed.value)
    finally:
        try:
            os.close(fd)
        except OSError:
            pass
    with pytest.raises(OSError) as failed:
        os.truncate(mnt / "bad", 1000)
    assert failed.value.errno == errno.EIO, repr(failed.value)
    assert os.stat(mnt / "bad").st_size == len(bad)
    assert digest((mnt / "good").read_bytes()) == digest(good)
    text = log.read_text()
    reports = [line for line in text.splitlines() if "integrity" in line and digest(bad) in line]
    # Logged and counted once: retries of a known damage must not flood the log.
    assert len(reports) == 1, text
    assert "mismatch" in reports[0] and "quarantine" in reports[0], reports[0]

    volume.umount(mnt)

    # Where a user sees it: the damaged file was taken out of service (kept for an operator
    # in quarantine/), the chunk is marked damaged, and fsck names it and exits 1. (The
    # mount keeps no counter of its own that a user can read.)
    quarantined = [p for p in volume.data.rglob(f"{digest(bad)}.*") if "quarantine" in p.parts]
    assert len(quarantined) == 1, list(volume.data.rglob("*"))
    assert quarantined[0].read_bytes() == bytes(raw)
    report = run("fsck", "--data-dir", volume.data, "--meta", volume.meta_url, check=False)
    assert report.returncode == 1 and digest(bad) in report.stdout, report.stdout + report.stderr

    # One handle reads through the damage and, once the same bytes are written again (a
    # fresh copy), reads them from the very same handle.
    mnt = volume.mount(tmp_path / "mnt")
    with open(mnt / "bad", "rb") as held:
        with pytest.raises(OSError) as failed:
            held.read()
        assert failed.value.errno == errno.EIO, repr(failed.value)
        write_file(mnt / "same-bytes", bad, fsync=True)
        held.seek(0)
        assert digest(held.read()) == digest(bad)
    assert digest((mnt / "bad").read_bytes()) == digest(bad)
    volume.umount(mnt)
    again = [line for line in log.read_text().splitlines()
             if "integrity" in line and digest(bad) in line]
    assert again == reports, "a known damage was reported again"

    # With the fresh copy in place fsck is clean again.
    report = volume.fsck().stdout
    assert report.strip().endswith("clean"), report


# ---- 3. The metadata database goes away ----------------------------------------------------

BOUND_S = 10.0


def postgres_processes(directory: Path) -> list[int]:
    """The test server's postmaster and its children."""
    postmaster = int((directory / "data" / "postmaster.pid").read_text().split()[0])
    children = subprocess.run(["pgrep", "-P", str(postmaster)], capture_output=True, text=True,
                              timeout=10).stdout.split()
    return [postmaster] + [int(c) for c in children]


def test_lost_postgres_gives_eio_fast_and_the_mount_recovers(own_postgres, tmp_path):
    directory, url = own_postgres
    vol = Volume(tmp_path, meta_url=url)
    vol.format()
    try:
        # No kernel caches: every call below reaches the mount.
        mnt = vol.mount(tmp_path / "mnt", "--attr-cache", "0", "--entry-cache", "0",
                        "--dir-entry-cache", "0")
        before = os.urandom(MiB + 5)
        write_file(mnt / "before", before, fsync=False)
        (mnt / "dir").mkdir()
        held = os.open(mnt / "held", os.O_CREAT | os.O_WRONLY, 0o644)  # open across the loss

        pg("stop", directory)
        try:
            for op, path in [("stat", mnt / "before"), ("stat", mnt / "never-seen"),
                             ("read", mnt / "before"), ("list", mnt / "dir"),
                             ("create", mnt / "during")]:
                answer, took = probe(op, path, BOUND_S + 20)
                assert answer == "EIO", f"{op} {path.name} with the database down: {answer}"
                assert took < BOUND_S, f"{op} {path.name} took {took:.1f}s"
            # Written while the database is down: close must not pretend it was stored.
            os.write(held, b"y" * 8192)
            start = time.monotonic()
            with pytest.raises(OSError) as failed:
                os.fsync(held)
            assert failed.value.errno == errno.EIO, repr(failed.value)
            with pytest.raises(OSError) as failed:
                os.close(held)
            assert failed.value.errno == errno.EIO, repr(failed.value)
            assert time.monotonic() - start < 2 * BOUND_S
            # A new mount while the database is down says so and gives up, bounded.
            second = tmp_path / "second"
            second.mkdir()
            start = time.monotonic()
            refused = run("mount", "--data-dir", vol.data, url, second, "-d", check=False,
                          timeout=BOUND_S + 20)
            assert refused.returncode != 0 and not is_mounted(second), refused.stdout
            assert time.monotonic() - start < BOUND_S
        finally:
            pg("resume", directory)

        # The same mount process serves again by itself, from the first call on (the
        # server accepts connections once `resume` returns).
        for op, path in [("stat", mnt / "before"), ("list", mnt / "dir")]:
            answer, took = probe(op, path, BOUND_S + 20)
            assert answer == "ok", f"{op} {path.name} once the database is back: {answer}"
        assert digest((mnt / "before").read_bytes()) == digest(before)
        after = os.urandom(MiB)
        write_file(mnt / "after", after, fsync=True)
        assert digest((mnt / "after").read_bytes()) == digest(after)
        assert not (mnt / "during").exists()
        # A restart while the mount is idle leaves it holding dead connections: the next
        # calls still work.
        pg("restart", directory)
        for op, path in [("stat", mnt / "after"), ("read", mnt / "before"),
                         ("create", mnt / "after-restart")]:
            answer, took = probe(op, path, BOUND_S + 20)
            assert answer == "ok", f"{op} {path.name} after a restart: {answer}"
        # A server that hangs without closing its connections (every process stopped, as a
        # frozen host looks): calls still end with EIO in bounded time.
        frozen = postgres_processes(directory)
        try:
            for p in frozen:
                os.kill(p, signal.SIGSTOP)
            for op, path in [("stat", mnt / "never-seen-2"), ("read", mnt / "after")]:
                answer, took = probe(op, path, BOUND_S + 30)
                assert answer == "EIO", f"{op} {path.name} with the database hung: {answer}"
                assert took < BOUND_S, f"{op} {path.name} took {took:.1f}s with it hung"
        finally:
            for p in frozen:
                os.kill(p, signal.SIGCONT)
        answer, _ = probe("stat", mnt / "after", BOUND_S + 30)
        assert answer == "ok", f"stat once the database answers again: {answer}"
        assert sorted(os.listdir(mnt)) == ["after", "after-restart", "before", "dir", "held"]
        vol.umount(mnt)
        mnt = vol.mount(tmp_path / "mnt")
        assert digest((mnt / "after").read_bytes()) == digest(after)
        vol.umount(mnt)
        report = vol.fsck().stdout
        assert report.strip().endswith("clean"), report
    finally:
        vol.close()


# ---- 4. SIGTERM under load ----------------------------------------------------------------

def test_sigterm_under_load_loses_nothing_acknowledged(volume, tmp_path):
    from test_crash import WRITER  # writes, closes (some fsync), logs what was acknowledged

    script = tmp_path / "writer.py"
    script.write_text(WRITER)
    point = tmp_path / "mnt"
    mnt = volume.mount(point)
    ((_, pid),) = volume.mounts
    manifests = [tmp_path / f"manifest-{n}" for n in range(3)]
    writers = [subprocess.Popen([sys.executable, str(script), str(mnt), str(m), str(100 + n)],
                                stderr=subprocess.DEVNULL) for n, m in enumerate(manifests)]
    try:
        time.sleep(2.5)
        assert all(w.poll() is None for w in writers), "a writer stopped before SIGTERM"
        os.kill(pid, signal.SIGTERM)
        wait_gone(pid, timeout=20)  # raises if it does not exit by itself
        volume.mounts.clear()
        assert not is_mounted(point), "the mount point is still mounted after SIGTERM"
        os.listdir(point)  # ENOTCONN here would be a dangling mount point
    finally:
        for w in writers:
            w.kill()
            w.wait(timeout=30)
    lines = [line for m in manifests if m.exists() for line in m.read_text().splitlines()]
    assert len(lines) >= 6, "the writers never got going"
    mnt = volume.mount(point)
    for line in lines:
        name, want = line.split()
        assert digest((mnt / name).read_bytes()) == want, f"{name} differs after SIGTERM"
    volume.umount(mnt)
    report = volume.fsck().stdout
    assert report.strip().endswith("clean"), report


def test_sigterm_while_blocks_of_an_open_file_are_stored_leaves_no_staging(tmp_path):
    """Full blocks of a file still open are stored in the background (--max-uploads). A
    SIGTERM then ends the mount: those stores finish and let go of their staging before the
    session ends, so nothing pins their chunks (GC takes them) and fsck is clean."""
    import sqlite3
    vol = Volume(tmp_path)
    vol.format("--trash-days", "0")
    try:
        point = tmp_path / "mnt"
        mnt = vol.mount(point, "--max-uploads", "2", "--buffer-size", "64")
        ((_, pid),) = vol.mounts
        fd = os.open(mnt / "open", os.O_CREAT | os.O_WRONLY, 0o600)
        for i in range(24):  # 6 full blocks, stored while the file stays open
            os.write(fd, os.urandom(1 << 20))
        os.kill(pid, signal.SIGTERM)
        wait_gone(pid, timeout=20)
        vol.mounts.clear()
        try:
            os.close(fd)
        except OSError:
            pass  # the mount is gone: the close cannot reach it
        subprocess.run(["fusermount3", "-u", "-z", str(point)], capture_output=True)
        db = sqlite3.connect(vol.data / "meta.db")
        try:
            staged = db.execute(
                "SELECT count(*) FROM owner_chunks WHERE owner_kind = 'fs-staging'").fetchone()[0]
        finally:
            db.close()
        assert staged == 0, f"{staged} staging references left behind"
        run("gc", "--data-dir", vol.data, "--meta", vol.meta_url, "--grace", "0",
            "--allow-mass-delete")
        chunks = [p for p in (vol.data / "hot" / "chunks").rglob("*") if p.is_file()]
        assert chunks == [], f"{len(chunks)} chunk files of a file never closed are kept"
        report = vol.fsck().stdout
        assert report.strip().endswith("clean"), report
    finally:
        vol.close()


def test_sqlite_that_cannot_commit_gives_eio_and_the_mount_recovers(volume, tmp_path):
    """SQLite is a file beside the data, so "lost" is the file system under it refusing
    writes (full, remounted read-only, failing): an immutable write-ahead log (chattr +i
    binds root too) stands in for that. Reads of what the database holds still work;
    everything that must commit fails with EIO, fast; once the log is writable again the
    same mount commits again."""
    mnt = volume.mount(tmp_path / "mnt", "--attr-cache", "0", "--entry-cache", "0",
                       "--dir-entry-cache", "0")
    before = os.urandom(MiB + 5)
    write_file(mnt / "before", before, fsync=False)
    held = os.open(mnt / "held", os.O_CREAT | os.O_WRONLY, 0o644)
    wal = volume.data / "meta.db-wal"
    assert wal.exists(), "expected SQLite in WAL mode beside the data"
    locked = subprocess.run(["chattr", "+i", str(wal)], capture_output=True, text=True)
    assert locked.returncode == 0, f"chattr +i on {wal}: {locked.stderr}"
    try:
        for op, path, want in [("stat", mnt / "before", "ok"), ("read", mnt / "before", "ok"),
                               ("create", mnt / "during", "EIO")]:
            answer, took = probe(op, path, BOUND_S + 20)
            assert answer == want, f"{op} {path.name} while SQLite cannot commit: {answer}"
            assert took < BOUND_S, f"{op} {path.name} took {took:.1f}s"
        os.write(held, b"y" * 8192)
        with pytest.raises(OSError) as failed:
            os.fsync(held)
        assert failed.value.errno == errno.EIO, repr(failed.value)
    finally:
        subprocess.run(["chattr", "-i", str(wal)], check=True)
    os.close(held)  # the writes held for a retry commit now
    assert (mnt / "held").read_bytes() == b"y" * 8192
    after = os.urandom(MiB)
    write_file(mnt / "after", after, fsync=True)
    assert not (mnt / "during").exists()
    volume.umount(mnt)
    mnt = volume.mount(tmp_path / "mnt")
    assert digest((mnt / "before").read_bytes()) == digest(before)
    assert digest((mnt / "after").read_bytes()) == digest(after)
    assert (mnt / "held").read_bytes() == b"y" * 8192
    volume.umount(mnt)
    report = volume.fsck().stdout
    assert report.strip().endswith("clean"), report
