"""`cairn mount --cache-dir/--cache-size`: a local copy of each chunk read, served on later
reads (also after a remount); a copy damaged on the cache disk is dropped and the bytes come
from the store, never wrong; one mount per cache directory; the size needs the directory."""
from __future__ import annotations

import os
import stat

from conftest import run
from test_observe import free_port, scrape

MiB = 1 << 20


def copies(cache) -> list:
    return sorted(p for p in cache.iterdir() if len(p.name) == 64)


def test_chunks_read_are_served_from_verified_local_copies(volume, tmp_path):
    cache = tmp_path / "cache"
    mnt = tmp_path / "mnt"
    data = os.urandom(9 * MiB)  # two full 4 MiB blocks and a partial one
    volume.mount(mnt)
    (mnt / "f").write_bytes(data)
    volume.umount(mnt)

    port = free_port()
    volume.mount(mnt, "--cache-dir", cache, "--cache-size", "64", "--metrics",
                 f"127.0.0.1:{port}")
    assert (mnt / "f").read_bytes() == data
    first = scrape(port)
    assert first["cairn_mount_chunk_cache_fills_total"] == 3
    assert first["cairn_mount_chunk_cache_bytes"] == len(data)
    assert first["cairn_mount_chunk_cache_capacity_bytes"] == 64 * MiB
    assert len(copies(cache)) == 3
    assert stat.S_IMODE(cache.stat().st_mode) == 0o700
    for copy in copies(cache):
        assert stat.S_IMODE(copy.stat().st_mode) == 0o600
    # One mount per cache directory.
    other = run("mount", "--data-dir", volume.data, volume.meta_url, tmp_path / "mnt2",
                "--cache-dir", cache, check=False, timeout=60)
    assert other.returncode != 0
    assert "in use" in other.stderr
    volume.umount(mnt)

    # A bit flipped in one copy on the cache disk: the next mount reads the other copies,
    # drops the bad one and takes those bytes from the store; nothing is blamed on the store.
    victim = copies(cache)[0]
    raw = bytearray(victim.read_bytes())
    raw[1000] ^= 1
    victim.write_bytes(bytes(raw))
    port = free_port()
    volume.mount(mnt, "--cache-dir", cache, "--metrics", f"127.0.0.1:{port}")
    assert (mnt / "f").read_bytes() == data
    after = scrape(port)
    assert after["cairn_mount_chunk_cache_hits_total"] >= 3
    assert after["cairn_mount_chunk_cache_dropped_total"] == 1
    assert not victim.exists()  # dropped; a later reader copies the chunk afresh
    assert after['cairn_chunk_verify_failures_total{reason="checksum_mismatch"}'] == 0
    assert after['cairn_mount_errors_total{errno="EIO"}'] == 0
    assert after["cairn_mount_chunk_cache_capacity_bytes"] == 1024 * MiB  # the default
    volume.umount(mnt)
    volume.fsck()  # clean: it fails the test otherwise


def test_cache_size_without_a_directory_is_refused(volume, tmp_path):
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    result = run("mount", "--data-dir", volume.data, volume.meta_url, mnt, "--cache-size",
                 "10", check=False, timeout=60)
    assert result.returncode == 2
    assert "--cache-size needs --cache-dir" in result.stderr
