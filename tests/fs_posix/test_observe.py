"""What users see of a mount from outside: `cairn mount --metrics` serves Prometheus
counters that move with the work done through the mount, and `cairn status` lists the
volume's mounts (alive, then gone after unmount; expired when one died)."""
from __future__ import annotations

import os
import re
import socket
import subprocess
import time
import urllib.error
import urllib.request

from conftest import run, wait_gone

MiB = 1 << 20


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def scrape(port: int) -> dict[str, float]:
    """Every sample of /metrics, keyed by its name and labels as written."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as r:
        assert r.status == 200
        assert r.headers["Content-Type"].startswith("text/plain; version=0.0.4")
        text = r.read().decode()
    samples = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        name, value = line.rsplit(" ", 1)
        samples[name] = float(value)
    return samples


def status_text(volume) -> str:
    return run("status", "--data-dir", volume.data, "--meta", volume.meta_url).stdout


def test_metrics_move_with_writes_reads_dedup_and_errors(volume, tmp_path):
    port = free_port()
    mnt = volume.mount(tmp_path / "mnt", "--metrics", f"127.0.0.1:{port}")
    before = scrape(port)
    # Every operation the mount serves has its counter from the start.
    for op in ("lookup", "getattr", "read", "write", "create", "unlink", "flush", "release"):
        assert f'cairn_mount_operations_total{{op="{op}"}}' in before, op
    assert before['cairn_mount_errors_total{errno="EIO"}'] == 0

    data = os.urandom(9 * MiB)  # two full 4 MiB blocks and a partial one
    (mnt / "a").write_bytes(data)
    with open(mnt / "a", "rb") as f:
        os.posix_fadvise(f.fileno(), 0, 0, os.POSIX_FADV_DONTNEED)
    assert (mnt / "a").read_bytes() == data
    (mnt / "b").write_bytes(data)  # the same bytes: every block deduplicated
    assert not os.path.exists(mnt / "missing")
    after = scrape(port)

    def moved(name):
        return after[name] - before.get(name, 0)

    assert moved('cairn_mount_operations_total{op="write"}') >= 1
    assert moved('cairn_mount_operations_total{op="create"}') == 2
    assert moved('cairn_mount_operations_total{op="read"}') >= 1
    assert moved("cairn_mount_written_bytes_total") == 2 * len(data)
    assert moved("cairn_mount_read_bytes_total") >= len(data)
    assert moved("cairn_mount_chunks_stored_total") == 3
    assert moved("cairn_mount_chunks_deduplicated_total") == 3
    assert moved('cairn_mount_errors_total{errno="ENOENT"}') >= 1
    assert after['cairn_mount_errors_total{errno="EIO"}'] == 0
    assert after["cairn_mount_read_errors_total"] == 0
    assert after['cairn_chunk_verify_failures_total{reason="checksum_mismatch"}'] == 0
    # The histogram counts each call once, in the bucket its time falls in.
    for op in ("write", "read", "lookup"):
        count = after[f'cairn_mount_operation_duration_seconds_count{{op="{op}"}}']
        assert count == after[f'cairn_mount_operations_total{{op="{op}"}}'], op
        assert after[f'cairn_mount_operation_duration_seconds_bucket{{op="{op}",le="+Inf"}}'] \
            == count
        assert after[f'cairn_mount_operation_duration_seconds_sum{{op="{op}"}}'] > 0
    # The read looked up the file's block rows: misses fetch them, hits reuse them.
    hits = after["cairn_mount_block_row_cache_hits_total"]
    misses = after["cairn_mount_block_row_cache_misses_total"]
    assert misses >= 1 and hits + misses >= 3
    assert abs(after["cairn_mount_block_row_cache_hit_ratio"] - hits / (hits + misses)) < 1e-6

    # Only GET /metrics is served.
    for path, method, code in (("/other", "GET", 404), ("/metrics", "POST", 405)):
        request = urllib.request.Request(f"http://127.0.0.1:{port}{path}", method=method,
                                         data=b"" if method == "POST" else None)
        try:
            urllib.request.urlopen(request, timeout=10)
            raise AssertionError(f"{method} {path} was answered 200")
        except urllib.error.HTTPError as error:
            assert error.code == code
    volume.umount(mnt)
    try:
        urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2)
        raise AssertionError("the metrics endpoint outlived the mount")
    except urllib.error.URLError:
        pass


def test_a_file_unchanged_since_this_mount_read_it_is_reread_from_the_page_cache(volume,
                                                                               tmp_path):
    """keep_cache: a second open of a file nobody changed reads the kernel's pages (no read
    reaches the mount); after another mount changes it, the next open reads it again."""
    port = free_port()
    a = volume.mount(tmp_path / "a", "--metrics", f"127.0.0.1:{port}")
    b = volume.mount(tmp_path / "b")
    data = os.urandom(3 * MiB)
    (a / "f").write_bytes(data)
    assert (a / "f").read_bytes() == data
    reads = scrape(port)['cairn_mount_operations_total{op="read"}']
    for _ in range(3):
        assert (a / "f").read_bytes() == data
    assert scrape(port)['cairn_mount_operations_total{op="read"}'] == reads, \
        "an unchanged file was read from the mount again"
    changed = os.urandom(3 * MiB)
    (b / "f").write_bytes(changed)
    assert (a / "f").read_bytes() == changed  # close-to-open: no wait for the feed
    assert scrape(port)['cairn_mount_operations_total{op="read"}'] > reads


def test_a_write_larger_than_the_buffer_stores_each_block_once(volume, tmp_path):
    """A full buffer flushes in the middle of a sequential write; the block being written
    stays in the buffer (storing it half full would store it twice), and what another mount
    sees meanwhile is a prefix of the data, never zeros where data goes."""
    port = free_port()
    a = volume.mount(tmp_path / "a", "--metrics", f"127.0.0.1:{port}", "--buffer-size", "8")
    b = volume.mount(tmp_path / "b")
    data = os.urandom(20 * MiB + 3)
    before = scrape(port)["cairn_mount_chunks_stored_total"]
    seen = []
    with open(a / "big", "wb") as f:
        for offset in range(0, len(data), MiB // 2):
            f.write(data[offset:offset + MiB // 2])
            if offset % (4 * MiB) == 0:
                seen.append((b / "big").read_bytes() if os.path.exists(b / "big") else b"")
    stored = scrape(port)["cairn_mount_chunks_stored_total"] - before
    assert stored == 6, f"{stored} chunks stored for 6 blocks"
    assert (b / "big").read_bytes() == data
    for view in seen:
        assert data.startswith(view), f"another mount saw {len(view)} bytes not a prefix"


def test_a_block_written_again_while_it_is_stored_keeps_the_last_bytes(tmp_path):
    """A write that fills a block starts storing it in the background (--max-uploads); a
    write into that block before the close waits for it and makes it dirty again. The file
    holds the last bytes written, and the chunks of the superseded versions are not kept
    alive by the mount: GC takes them while it is still mounted."""
    from conftest import Volume
    vol = Volume(tmp_path)
    vol.format("--trash-days", "0")
    try:
        a = vol.mount(tmp_path / "a", "--max-uploads", "2")
        versions = [os.urandom(4 * MiB) for _ in range(5)]
        tail = os.urandom(MiB)
        fd = os.open(a / "f", os.O_CREAT | os.O_WRONLY, 0o600)
        try:
            for version in versions:
                os.pwrite(fd, version, 0)  # fills block 0: an upload starts
                os.pwrite(fd, tail, 4 * MiB)
        finally:
            os.close(fd)
        want = versions[-1] + tail
        assert (a / "f").read_bytes() == want
        b = vol.mount(tmp_path / "b", "--max-uploads", "0")
        assert (b / "f").read_bytes() == want
        run("gc", "--data-dir", vol.data, "--meta", vol.meta_url, "--grace", "0",
            "--allow-mass-delete")
        chunks = [p for p in (vol.data / "hot" / "chunks").rglob("*") if p.is_file()]
        assert len(chunks) == 2, f"{len(chunks)} chunk files kept for a file of 2 blocks"
        assert (b / "f").read_bytes() == want
        vol.umount(b)
        vol.umount(a)
        report = vol.fsck().stdout
        assert report.strip().endswith("clean"), report
    finally:
        vol.close()


def test_metrics_are_off_by_default_and_a_bad_address_is_refused(volume, tmp_path):
    point = tmp_path / "bad"
    point.mkdir()
    for address in ("nonsense", "127.0.0.1:99999", "127.0.0.1:"):
        result = run("mount", "--data-dir", volume.data, volume.meta_url, point, "-d",
                     "--metrics", address, check=False)
        assert result.returncode == 2, result.stdout + result.stderr
        assert "--metrics" in result.stderr and address in result.stderr, result.stderr
    # A port taken by someone else: the mount fails, and says which address.
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        address = f"127.0.0.1:{taken.getsockname()[1]}"
        result = run("mount", "--data-dir", volume.data, volume.meta_url, point, "-d",
                     "--metrics", address, check=False)
    assert result.returncode == 1, result.stdout + result.stderr
    assert address in result.stderr, result.stderr
    assert "mounts: 0 alive" in status_text(volume)
    # Without --metrics nothing listens (the mount serves no HTTP).
    mnt = volume.mount(tmp_path / "mnt")
    pid = volume.mounts[0][1]
    listening = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with open(table) as f:
            for line in f.readlines()[1:]:
                fields = line.split()
                if fields[3] == "0A":  # LISTEN
                    listening.add(fields[9])  # socket inode
    fds = os.listdir(f"/proc/{pid}/fd")
    sockets = {os.readlink(f"/proc/{pid}/fd/{fd}")[8:-1] for fd in fds
               if os.readlink(f"/proc/{pid}/fd/{fd}").startswith("socket:[")}
    assert not (sockets & listening), "the mount listens on a TCP port without --metrics"
    volume.umount(mnt)


def test_status_lists_a_live_mount_and_drops_it_after_unmount(volume, tmp_path):
    out = status_text(volume)
    assert re.search(r"^volume: vol \(uuid [0-9a-f-]{36}, trash 7 days\)$", out, re.M), out
    assert "mounts: 0 alive, 0 expired" in out
    mnt = volume.mount(tmp_path / "mnt")
    pid = volume.mounts[0][1]
    (mnt / "f").write_bytes(b"x" * 1000)
    out = status_text(volume)
    assert "mounts: 1 alive, 0 expired" in out, out
    line = [l for l in out.splitlines() if l.strip().startswith("alive")]
    assert len(line) == 1, out
    assert f"mount_point={os.path.realpath(mnt)} " in line[0], line[0]
    assert f"host={socket.gethostname()} " in line[0], line[0]
    assert f"pid={pid} " in line[0], line[0]
    assert re.search(r"version=\S+ .*heartbeat \d+\.\d s ago$", line[0]), line[0]
    assert re.search(r"^  inodes: \d+, files: 1 \(1000 logical bytes\)$", out, re.M), out
    volume.umount(mnt)
    out = status_text(volume)
    assert "mounts: 0 alive, 0 expired" in out, out
    assert str(os.path.realpath(mnt)) not in out


def test_status_reports_a_mount_whose_heartbeat_expired(volume, tmp_path):
    mnt = volume.mount(tmp_path / "mnt", "--heartbeat", "0.2")  # expires 1.2 s after a beat
    pid = volume.mounts[0][1]
    os.kill(pid, 9)
    wait_gone(pid)
    volume.mounts.clear()
    time.sleep(1.5)
    out = status_text(volume)
    assert "mounts: 0 alive, 1 expired" in out, out
    assert re.search(r"^    expired host=\S+ mount_point=" + re.escape(os.path.realpath(mnt)),
                     out, re.M), out
    assert "warning: 1 mount session(s) expired" in out, out
    subprocess.run(["fusermount3", "-u", "-z", str(mnt)], capture_output=True)
