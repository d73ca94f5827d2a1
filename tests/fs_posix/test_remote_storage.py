"""`cairn mount --storage http://HOST:PORT`: a mount whose chunks go through a Cairn server
(for a host that shares the volume's metadata store but not the chunk directories), and
the server's chunk API it uses (`/v1/chunks/...`), attacked directly.

Each test starts `cairn serve` on the volume's data directory and metadata; the mount is
given another data directory, which must stay untouched: every byte goes over HTTP.
"""
from __future__ import annotations

import errno
import hashlib
import json
import os
import re
import shutil
import stat
import subprocess
import threading
import urllib.error
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from conftest import CAIRN, Volume, is_mounted, run, wait_gone
from test_dedup import Server, chunk_bytes_on_disk, sha256_of
from test_observe import free_port, scrape

MiB = 1 << 20


def metric(server: Server, name: str, **labels) -> float:
    """Sum of a server metric's samples whose labels include `labels`."""
    with urllib.request.urlopen(server.url + "/metrics", timeout=10) as r:
        text = r.read().decode()
    total = 0.0
    for line in text.splitlines():
        m = re.match(rf"^{name}(?:\{{(.*)\}})? (\S+)$", line)
        if not m:
            continue
        found = dict(re.findall(r'(\w+)="([^"]*)"', m[1] or ""))
        if all(found.get(k) == v for k, v in labels.items()):
            total += float(m[2])
    return total


def remote_mount(volume: Volume, server: Server, point: Path, key: str, check=True, *extra):
    """Mounts `volume` with its chunks through `server`, from a data directory of its own."""
    point.mkdir(parents=True, exist_ok=True)
    elsewhere = volume.base / "mount-host-data"
    env = dict(os.environ, CAIRN_STORAGE_KEY=key)
    result = subprocess.run(
        [CAIRN, "mount", "--data-dir", str(elsewhere), volume.meta_url, str(point), "-d",
         "--log-file", str(volume.base / f"mount-{point.name}.log"), "--storage", server.url,
         *map(str, extra)],
        capture_output=True, text=True, timeout=60, env=env)
    if not check:
        return result
    assert result.returncode == 0, result.stdout + result.stderr
    pid = int(result.stdout.rsplit("(pid ", 1)[1].split(")")[0])
    assert is_mounted(point)
    volume.mounts.append((point, pid))
    assert not elsewhere.exists(), "a remote mount made chunk directories of its own"
    return point


def chunk_request(server: Server, method: str, path: str, key: str | None, body=None,
                  headers=None):
    request = urllib.request.Request(server.url + path, data=body, method=method)
    if key:
        request.add_header("Authorization", "Bearer " + key)
    for name, value in (headers or {}).items():
        request.add_header(name, value)
    try:
        with urllib.request.urlopen(request, timeout=10) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


@pytest.fixture
def served(tmp_path):
    volume = Volume(tmp_path)
    volume.format("--trash-days", "0")
    server = Server(volume, tmp_path)
    yield volume, server
    volume.close()
    server.stop()


def test_files_go_through_the_server_once_and_read_back_verified(served, tmp_path):
    volume, server = served
    mnt = remote_mount(volume, server, tmp_path / "mnt", server.admin_key)
    before = chunk_bytes_on_disk(volume.data)
    data = os.urandom(10 * MiB + 12345)
    (mnt / "big").write_bytes(data)
    (mnt / "small").write_bytes(b"hello remote\n")
    with open(mnt / "synced", "wb") as f:
        f.write(b"x" * 5000)
        os.fsync(f.fileno())
    # The bytes are in the server's chunk directories: 3 blocks of the big file and 2 small.
    assert chunk_bytes_on_disk(volume.data) - before == len(data) + 13 + 5000
    puts = metric(server, "cairn_requests_total", method="PUT")
    assert puts == 5, puts

    # The same bytes again (a copy through the mount): the server already holds every
    # chunk, so nothing is sent (HEAD answers), and the disk does not grow.
    shutil.copyfile(mnt / "big", mnt / "copy")
    assert metric(server, "cairn_requests_total", method="PUT") == puts
    assert chunk_bytes_on_disk(volume.data) - before == len(data) + 13 + 5000

    # Read back from a fresh mount (no page cache), whole and at odd offsets.
    volume.umount(mnt)
    mnt = remote_mount(volume, server, tmp_path / "mnt", server.admin_key)
    assert sha256_of(mnt / "big") == hashlib.sha256(data).hexdigest()
    assert sha256_of(mnt / "copy") == hashlib.sha256(data).hexdigest()
    with open(mnt / "big", "rb") as f:
        f.seek(4 * MiB - 7)
        assert f.read(300000) == data[4 * MiB - 7:4 * MiB - 7 + 300000]
    assert (mnt / "small").read_bytes() == b"hello remote\n"
    # A partial write into a stored block reads the block from the server first.
    with open(mnt / "big", "r+b") as f:
        f.seek(5 * MiB)
        f.write(b"PATCH")
    expected = data[:5 * MiB] + b"PATCH" + data[5 * MiB + 5:]
    volume.umount(mnt)
    mnt = remote_mount(volume, server, tmp_path / "mnt", server.admin_key)
    assert sha256_of(mnt / "big") == hashlib.sha256(expected).hexdigest()

    # statfs reports the server's chunk store, not this host's data directory.
    mine, theirs = os.statvfs(mnt), os.statvfs(volume.data)
    assert mine.f_blocks * mine.f_frsize == pytest.approx(theirs.f_blocks * theirs.f_frsize,
                                                          rel=0.01)
    volume.umount(mnt)
    volume.fsck()  # clean (it fails on any problem)


def test_a_lost_server_is_an_error_and_the_mount_recovers(served, tmp_path):
    volume, server = served
    mnt = remote_mount(volume, server, tmp_path / "mnt", server.admin_key)
    data = os.urandom(3 * MiB)
    (mnt / "kept").write_bytes(data)
    volume.umount(mnt)
    mnt = remote_mount(volume, server, tmp_path / "mnt", server.admin_key)
    port = server.port
    server.stop()

    with pytest.raises(OSError) as failed:
        (mnt / "kept").read_bytes()
    assert failed.value.errno == errno.EIO, repr(failed.value)
    with pytest.raises(OSError) as failed:
        (mnt / "new").write_bytes(os.urandom(MiB))  # the close stores: it fails
    assert failed.value.errno == errno.EIO, repr(failed.value)

    server = Server(volume, tmp_path, port=port)
    try:
        assert (mnt / "kept").read_bytes() == data
        (mnt / "after").write_bytes(b"back")
        assert (mnt / "after").read_bytes() == b"back"
        volume.umount(mnt)
    finally:
        server.stop()
    # What the refused close left is never a file with bytes it does not hold.
    mnt = volume.mount(tmp_path / "local")  # through the chunk directories
    assert (mnt / "kept").read_bytes() == data
    assert (mnt / "after").read_bytes() == b"back"
    if (mnt / "new").exists():
        assert os.path.getsize(mnt / "new") == 0
    volume.umount(mnt)


def test_a_damaged_chunk_on_the_server_is_never_served(served, tmp_path):
    volume, server = served
    mnt = remote_mount(volume, server, tmp_path / "mnt", server.admin_key)
    bad = os.urandom(MiB + 77)
    (mnt / "bad").write_bytes(bad)
    volume.umount(mnt)
    name = hashlib.sha256(bad).hexdigest()
    [chunk] = [p for p in volume.data.rglob(name) if "quarantine" not in p.parts]
    raw = bytearray(chunk.read_bytes())
    raw[MiB // 2] ^= 0x40
    chunk.write_bytes(bytes(raw))
    mnt = remote_mount(volume, server, tmp_path / "mnt", server.admin_key)
    with pytest.raises(OSError) as failed:
        (mnt / "bad").read_bytes()
    assert failed.value.errno == errno.EIO, repr(failed.value)
    # The same bytes written again heal it (the server checks its copy before it says it
    # holds one), and the file reads whole.
    (mnt / "again").write_bytes(bad)
    assert (mnt / "bad").read_bytes() == bad
    volume.umount(mnt)


def test_the_mount_refuses_a_wrong_key_or_server_before_mounting(served, tmp_path):
    volume, server = served
    point = tmp_path / "mnt"
    one_tenant = run("keys", "create", "--data-dir", volume.data, "--meta", volume.meta_url,
                     "--tenant", "alice", "--scope", "write").stdout.strip()
    reader = run("keys", "create", "--data-dir", volume.data, "--meta", volume.meta_url,
                 "--tenant", "*", "--scope", "read").stdout.strip()
    for key, expected in ((one_tenant, "every tenant"), ("cairn_nope.secret", "401"),
                          ("", "needs an API key")):
        result = remote_mount(volume, server, point, key, check=False)
        assert result.returncode != 0, result.stdout
        assert expected in result.stderr, result.stderr
        assert not is_mounted(point)
    # A read key passes the check (space and reads) but cannot store.
    mnt = remote_mount(volume, server, point, reader)
    with pytest.raises(OSError) as failed:
        (mnt / "f").write_bytes(b"data")
    assert failed.value.errno in (errno.EIO, errno.EACCES, errno.EPERM), repr(failed.value)
    volume.umount(mnt)
    # A server of another store (its metadata is elsewhere, so it would refuse every chunk
    # this mount references): refused before mounting.
    (tmp_path / "other").mkdir()
    other = Volume(tmp_path / "other")
    other.format()
    other_server = Server(other, other.base)
    try:
        result = remote_mount(volume, other_server, point, other_server.admin_key, check=False)
        assert result.returncode != 0 and "another store" in result.stderr, result.stderr
        assert not is_mounted(point)
    finally:
        other_server.stop()
    result = run("mount", "--data-dir", tmp_path / "x", volume.meta_url, point, "--storage",
                 "ftp://host", check=False)
    assert result.returncode != 0 and "http://HOST:PORT" in result.stderr, result.stderr


def test_a_cache_dir_serves_the_servers_chunks_from_verified_local_copies(served, tmp_path):
    volume, server = served
    mnt = remote_mount(volume, server, tmp_path / "mnt", server.admin_key)
    data = os.urandom(9 * MiB)  # two full 4 MiB blocks and a partial one
    (mnt / "f").write_bytes(data)
    volume.umount(mnt)

    cache = tmp_path / "cache"
    copies = lambda: sorted(p for p in cache.iterdir() if len(p.name) == 64)  # noqa: E731
    with_cache = ("--cache-dir", cache, "--cache-size", "64")
    port = free_port()
    mnt = remote_mount(volume, server, tmp_path / "mnt", server.admin_key, True, *with_cache,
                       "--metrics", f"127.0.0.1:{port}")
    assert sha256_of(mnt / "f") == hashlib.sha256(data).hexdigest()
    first = scrape(port)
    assert first["cairn_mount_chunk_cache_fills_total"] == 3
    assert first["cairn_mount_chunk_cache_bytes"] == len(data)
    assert len(copies()) == 3
    assert stat.S_IMODE(cache.stat().st_mode) == 0o700
    assert all(stat.S_IMODE(c.stat().st_mode) == 0o600 for c in copies())
    assert sorted(c.name for c in copies()) == sorted(
        hashlib.sha256(data[i:i + 4 * MiB]).hexdigest() for i in range(0, len(data), 4 * MiB))
    volume.umount(mnt)

    # A new mount with the server gone: every byte comes from the copies.
    port = free_port()
    mnt = remote_mount(volume, server, tmp_path / "mnt", server.admin_key, True, *with_cache,
                       "--metrics", f"127.0.0.1:{port}")
    server_port = server.port
    server.stop()
    assert (mnt / "f").read_bytes() == data
    with open(mnt / "f", "rb") as f:
        f.seek(4 * MiB - 3)
        assert f.read(10) == data[4 * MiB - 3:4 * MiB + 7]
    offline = scrape(port)
    assert offline["cairn_mount_chunk_cache_hits_total"] >= 3
    assert offline["cairn_mount_chunk_cache_misses_total"] == 0
    assert offline['cairn_mount_errors_total{errno="EIO"}'] == 0
    volume.umount(mnt)

    # A bit flipped in one copy on the cache disk: that copy is dropped and its bytes come
    # from the server again (and are copied afresh); nothing wrong is read.
    server = Server(volume, tmp_path, port=server_port)
    try:
        victim = copies()[1]
        raw = bytearray(victim.read_bytes())
        raw[300000] ^= 1
        victim.write_bytes(bytes(raw))
        port = free_port()
        mnt = remote_mount(volume, server, tmp_path / "mnt", server.admin_key, True, *with_cache,
                           "--metrics", f"127.0.0.1:{port}")
        assert (mnt / "f").read_bytes() == data
        after = scrape(port)
        assert after["cairn_mount_chunk_cache_dropped_total"] == 1
        assert after["cairn_mount_chunk_cache_fills_total"] == 1
        assert after['cairn_mount_errors_total{errno="EIO"}'] == 0
        assert victim.read_bytes() != bytes(raw)  # copied again from the server's bytes
        log = (volume.base / "mount-mnt.log").read_text()
        assert "failed its check" in log and victim.name in log, log[-2000:]
        volume.umount(mnt)
    finally:
        server.stop()


def test_the_chunk_api_takes_only_referenced_chunks_with_their_own_bytes(served, tmp_path):
    volume, server = served
    key = server.admin_key
    mnt = remote_mount(volume, server, tmp_path / "mnt", key)
    body = os.urandom(70000)
    (mnt / "f").write_bytes(body)
    volume.umount(mnt)
    name = hashlib.sha256(body).hexdigest()
    path = f"/v1/chunks/hot/{name}"

    assert chunk_request(server, "HEAD", path, key)[0] == 200
    status, got = chunk_request(server, "GET", path, key)
    assert status == 200 and got == body
    status, got = chunk_request(server, "GET", path, key, headers={"Range": "bytes=100-199"})
    assert status == 206 and got == body[100:200]
    assert chunk_request(server, "GET", path, None)[0] == 401
    alice = run("keys", "create", "--data-dir", volume.data, "--meta", volume.meta_url,
                "--tenant", "alice", "--scope", "admin").stdout.strip()
    assert chunk_request(server, "GET", path, alice)[0] == 403

    # A chunk no file or object names: refused, and nothing is written.
    stray = os.urandom(1000)
    stray_name = hashlib.sha256(stray).hexdigest()
    status, answer = chunk_request(server, "PUT", f"/v1/chunks/hot/{stray_name}", key, stray)
    assert status == 404 and b"no file or object holds" in answer, answer
    assert not list(volume.data.rglob(stray_name))
    assert chunk_request(server, "HEAD", f"/v1/chunks/hot/{stray_name}", key)[0] == 404
    assert chunk_request(server, "GET", f"/v1/chunks/hot/{stray_name}", key)[0] == 404
    # Bytes that are not the named chunk's: refused, the stored copy unchanged.
    status, answer = chunk_request(server, "PUT", path, key, os.urandom(len(body)))
    assert status == 400 and b"hashes to" in answer, answer
    status, answer = chunk_request(server, "PUT", path, key, body[:-1])
    assert status == 400, answer
    status, got = chunk_request(server, "GET", path, key)
    assert status == 200 and got == body
    # The right bytes again: accepted (idempotent).
    assert chunk_request(server, "PUT", path, key, body)[0] == 204
    # Malformed names and methods.
    assert chunk_request(server, "GET", "/v1/chunks/hot/xyz", key)[0] == 400
    assert chunk_request(server, "GET", f"/v1/chunks/lukewarm/{name}", key)[0] == 400
    assert chunk_request(server, "DELETE", path, key)[0] == 405
    status, answer = chunk_request(server, "GET", "/v1/chunks/hot", key)
    space = json.loads(answer)
    assert status == 200 and space["total_bytes"] >= space["free_bytes"] > 0, space


class FlippingProxy:
    """Forwards every request to the server, flipping one bit of each GET body sent back
    with a 206: a network (or a server) that hands out wrong bytes."""

    def __init__(self, upstream: str):
        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def forward(self):
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else None
                request = urllib.request.Request(upstream + self.path, data=body,
                                                 method=self.command)
                for name in ("Authorization", "Range"):
                    if self.headers.get(name):
                        request.add_header(name, self.headers[name])
                try:
                    with urllib.request.urlopen(request, timeout=10) as r:
                        status, payload = r.status, r.read()
                except urllib.error.HTTPError as e:
                    status, payload = e.code, e.read()
                if self.command == "GET" and status == 206 and payload:
                    payload = bytes([payload[0] ^ 0x01]) + payload[1:]
                self.send_response(status)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(payload)

            do_GET = do_HEAD = do_PUT = forward

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def stop(self):
        self.httpd.shutdown()
        self.httpd.server_close()


def test_wrong_bytes_from_the_network_are_never_served(served, tmp_path):
    volume, server = served
    mnt = remote_mount(volume, server, tmp_path / "mnt", server.admin_key)
    data = os.urandom(2 * MiB + 5)
    (mnt / "f").write_bytes(data)
    volume.umount(mnt)
    proxy = FlippingProxy(server.url)
    try:
        class Via:  # the mount sees the proxy as its server
            url = proxy.url
        mnt = remote_mount(volume, Via, tmp_path / "mnt", server.admin_key)
        for _ in range(2):
            with pytest.raises(OSError) as failed:
                (mnt / "f").read_bytes()
            assert failed.value.errno == errno.EIO, repr(failed.value)
        volume.umount(mnt)
    finally:
        proxy.stop()
    log = (tmp_path / "mount-mnt.log").read_text()
    assert "integrity" in log and "does not match its recorded checksum" in log, log
    # The server's copy was never the problem: it reads whole without the proxy.
    mnt = remote_mount(volume, server, tmp_path / "mnt", server.admin_key)
    assert (mnt / "f").read_bytes() == data
    volume.umount(mnt)
