"""Dedup across doors: one file written through the mount, copied into ten directories and
uploaded once more through S3 takes the physical space of one copy; `cairn status` shows
the volume's 11 logical copies over 1 physical one; deleting everything and running GC
with no grace gives the space back.

The size is CAIRN_DEDUP_TEST_MIB (default 64, which keeps the test near 20 s). The long
run of the issue, 1 GiB (a few minutes: eleven 1 GiB copies through the mount):

    CAIRN_DEDUP_TEST_MIB=1024 /usr/bin/python3 -m pytest test_dedup.py

(about 2 GiB of scratch space: the file, a local copy for the upload, and the chunks).
"""
from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest

from conftest import CAIRN, Volume, run

MiB = 1 << 20
SIZE = int(os.environ.get("CAIRN_DEDUP_TEST_MIB", "64")) * MiB
COPIES = 10
# What chunk files may take beyond the bytes they hold (none today: a chunk file is its
# bytes), and the few small files the store keeps beside them.
SLACK = 1 * MiB


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def chunk_bytes_on_disk(data: Path) -> int:
    """Bytes of every file under the chunk store's roots (hot and cold)."""
    total = 0
    for root in (data / "hot", data / "cold"):
        for directory, _dirs, files in os.walk(root):
            for name in files:
                try:
                    total += os.lstat(os.path.join(directory, name)).st_size
                except FileNotFoundError:
                    pass  # a temp file going away under us
    return total


def write_random(path: Path, size: int, copy: Path) -> str:
    """Writes `size` random bytes to `path` and to `copy`; returns their SHA-256."""
    digest = hashlib.sha256()
    with open(path, "wb") as out, open(copy, "wb") as local:
        left = size
        while left:
            piece = os.urandom(min(left, 4 * MiB))
            out.write(piece)
            local.write(piece)
            digest.update(piece)
            left -= len(piece)
    return digest.hexdigest()


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while piece := f.read(4 * MiB):
            digest.update(piece)
    return digest.hexdigest()


def status(volume) -> dict:
    """The figures of `cairn status` this test reads."""
    out = run("status", "--data-dir", volume.data, "--meta", volume.meta_url).stdout
    found = {}
    m = re.search(r"^chunks: (\d+) \((\d+) bytes, (\d+) awaiting GC\)$", out, re.M)
    assert m, out
    found["store_chunks"], found["store_chunk_bytes"] = int(m[1]), int(m[2])
    m = re.search(r"^volume: (\S+) \(uuid ", out, re.M)
    assert m, out
    found["volume"] = m[1]
    m = re.search(r"^  inodes: (\d+), files: (\d+) \((\d+) logical bytes\)$", out, re.M)
    assert m, out
    found["files"], found["file_bytes"] = int(m[2]), int(m[3])
    m = re.search(r"^  file chunks: (\d+) \((\d+) physical bytes", out, re.M)
    assert m, out
    found["file_chunks"], found["file_chunk_bytes"] = int(m[1]), int(m[2])
    found["text"] = out
    return found


class Server:
    """`cairn serve` on the volume's data directory and metadata, with an S3 key."""

    def __init__(self, volume, base: Path, port: int | None = None):
        self.access, self.secret = "AKDEDUPTEST000000001", "dedup-secret-" + "s" * 27
        self.port, self.s3_port = port or free_port(), free_port()
        env = dict(os.environ, CAIRN_S3_ACCESS_KEY=self.access, CAIRN_S3_SECRET_KEY=self.secret)
        for name in ("AWS_CA_BUNDLE", "HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy"):
            env.pop(name, None)
        self.log = open(base / "serve.log", "ab")  # a restart adds to it
        self.proc = subprocess.Popen(
            [CAIRN, "serve", "--data-dir", str(volume.data), "--meta", volume.meta_url,
             "--listen", f"127.0.0.1:{self.port}", "--s3-listen", f"127.0.0.1:{self.s3_port}",
             "--gc-interval", "0", "--scrub-rate", "0", "--access-log", "off"],
            stdin=subprocess.DEVNULL, stdout=self.log, stderr=subprocess.STDOUT, env=env)
        self.url = f"http://127.0.0.1:{self.port}"
        deadline = time.monotonic() + 30
        while True:
            assert self.proc.poll() is None, (base / "serve.log").read_text()
            try:
                with urllib.request.urlopen(self.url + "/health", timeout=1) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            assert time.monotonic() < deadline, "cairn serve did not answer /health"
            time.sleep(0.05)
        self.admin_key = (volume.data / "admin.key").read_text().strip()

    def get_json(self, path: str, key: str | None = None) -> dict:
        request = urllib.request.Request(self.url + path)
        if key:
            request.add_header("Authorization", "Bearer " + key)
        with urllib.request.urlopen(request, timeout=10) as r:
            return json.loads(r.read())

    def s3(self):
        boto3 = pytest.importorskip("boto3")
        import botocore.config
        config = botocore.config.Config(region_name="us-east-1", signature_version="s3v4",
                                        s3={"addressing_style": "path"},
                                        retries={"total_max_attempts": 1, "mode": "standard"})
        return boto3.session.Session(aws_access_key_id=self.access,
                                     aws_secret_access_key=self.secret).client(
            "s3", endpoint_url=f"http://127.0.0.1:{self.s3_port}", config=config)

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            self.proc.wait(timeout=60)
        self.log.close()


def test_one_file_in_eleven_places_and_in_s3_takes_one_copy_until_gc_gives_it_back(tmp_path):
    volume = Volume(tmp_path)
    volume.format("--trash-days", "0")  # deletes free space at once
    server = None
    try:
        mnt = volume.mount(tmp_path / "mnt")
        before = chunk_bytes_on_disk(volume.data)
        assert before < SLACK, before

        local = tmp_path / "local-copy"
        digest = write_random(mnt / "original", SIZE, local)
        for i in range(COPIES):
            os.mkdir(mnt / f"dir{i}")
            shutil.copyfile(mnt / "original", mnt / f"dir{i}" / "copy")
        assert sha256_of(mnt / f"dir{COPIES - 1}" / "copy") == digest

        # Eleven files, the space of one. Beyond the file's chunks the disk holds only the
        # partial last blocks a flush stored when the write buffer filled (a block is
        # counted whole from its first byte), replaced by the next flush and awaiting GC:
        # at most one block per buffer of 64 MiB.
        after_files = chunk_bytes_on_disk(volume.data)
        grown = after_files - before
        assert SIZE <= grown <= SIZE + SIZE // 16 + SLACK, \
            f"{grown} bytes on disk for {SIZE} bytes of data"
        st = status(volume)
        assert st["volume"] == "vol"
        assert st["files"] == COPIES + 1
        assert st["file_bytes"] == (COPIES + 1) * SIZE
        assert st["file_chunk_bytes"] == SIZE
        assert st["file_chunks"] == SIZE // (4 * MiB)
        assert st["store_chunk_bytes"] == grown, st["text"]  # what the disk holds

        # The same bytes through S3: a new object, no new chunk. Parts are a multiple of
        # the 4 MiB chunk, so the object's chunks start where the file's blocks start.
        server = Server(volume, tmp_path)
        s3 = server.s3()
        from boto3.s3.transfer import TransferConfig
        s3.create_bucket(Bucket="dedup")
        s3.upload_file(str(local), "dedup", "object",
                       Config=TransferConfig(multipart_threshold=16 * MiB,
                                             multipart_chunksize=16 * MiB))
        assert s3.head_object(Bucket="dedup", Key="object")["ContentLength"] == SIZE
        after_upload = chunk_bytes_on_disk(volume.data)
        assert after_upload - after_files <= SLACK, \
            f"the S3 upload added {after_upload - after_files} bytes on disk"
        st = status(volume)
        assert st["store_chunk_bytes"] == grown, st["text"]
        print(f"data {SIZE} B; chunk files after 11 copies {grown} B, after the S3 upload "
              f"{after_upload - before} B; status: {st['files']} files, {st['file_bytes']} B "
              f"logical, {st['file_chunk_bytes']} B physical")
        assert (st["files"], st["file_bytes"], st["file_chunk_bytes"]) == \
            (COPIES + 1, (COPIES + 1) * SIZE, SIZE)
        # The tenant's usage counts its object's chunks as its own (physical = logical
        # here); the store's total above is what the disk holds: the chunks once.
        usage = server.get_json("/v1/usage?tenant=default", server.admin_key)
        assert usage["total"]["objects"] == 1
        assert usage["total"]["logical_bytes"] == SIZE
        assert usage["total"]["physical_bytes"] == SIZE
        # /health sees the volume and its one mount.
        health = server.get_json("/health")
        assert health["storage"]["volume"] == "vol"
        assert health["storage"]["mounts_alive"] == 1
        assert health["storage"]["chunk_store"]["healthy"] is True

        # Delete everything; GC with no grace gives the space back.
        s3.delete_object(Bucket="dedup", Key="object")
        s3.delete_bucket(Bucket="dedup")
        server.stop()
        server = None
        os.unlink(mnt / "original")
        for i in range(COPIES):
            shutil.rmtree(mnt / f"dir{i}")
        volume.umount(mnt)
        st = status(volume)
        assert (st["files"], st["file_bytes"], st["file_chunks"]) == (0, 0, 0), st["text"]
        assert chunk_bytes_on_disk(volume.data) >= SIZE  # nothing freed before GC
        for _ in range(3):  # a deleted object is purged by one pass, its chunks by the next
            run("gc", "--data-dir", volume.data, "--meta", volume.meta_url, "--grace", "0",
                "--allow-mass-delete", timeout=600)
            if chunk_bytes_on_disk(volume.data) - before <= SLACK:
                break
        freed_to = chunk_bytes_on_disk(volume.data)
        assert freed_to - before <= SLACK, f"{freed_to - before} bytes left after GC"
        print(f"chunk files after deleting everything and GC: {freed_to - before} B")
        assert status(volume)["store_chunk_bytes"] == 0
    finally:
        if server is not None:
            server.stop()
        volume.close()
