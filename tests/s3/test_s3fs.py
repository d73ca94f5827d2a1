"""s3fs-fuse (Debian package s3fs) mounts a Cairn bucket: write files (small, multipart,
in a new directory, with a space in the name), list, read back, rename (CopyObject +
DeleteObject), append, delete, then unmount; the mount point is removed. What s3fs wrote
is checked by SHA-256 through boto3 and the native API.

Options are those for a plain S3 service: path-style requests, SigV4 only, region
us-east-1, short timeouts, one retry, no local cache. s3fs runs in the foreground (-f)
as a child process; the mount is awaited with a bounded poll and always unmounted
(fusermount -u, then umount -l) and the process stopped."""
from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time

import pytest

import s3kit
from s3kit import MiB

MOUNT_TIMEOUT_S = 20.0
UNMOUNT_TIMEOUT_S = 20.0


def wait_until(predicate, timeout: float, interval: float = 0.1) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return predicate()


def unmount(mountpoint: str) -> None:
    if not os.path.ismount(mountpoint):
        return
    for cmd in (["fusermount", "-u", mountpoint], ["umount", mountpoint],
                ["umount", "-l", mountpoint]):
        if shutil.which(cmd[0]) is None:
            continue
        subprocess.run(cmd, capture_output=True, timeout=UNMOUNT_TIMEOUT_S,
                       stdin=subprocess.DEVNULL)
        if wait_until(lambda: not os.path.ismount(mountpoint), 5):
            return


@pytest.fixture
def mounted(s3env, s3, tmp_path):
    exe = s3kit.require_tool("s3fs", "the Debian package s3fs")
    if not os.path.exists("/dev/fuse"):
        pytest.skip("/dev/fuse is absent: FUSE is not available here")
    bucket = s3kit.unique_bucket("s3fs")
    s3.create_bucket(Bucket=bucket)
    s3.put_object(Bucket=bucket, Key="pre/existing.txt", Body=b"written before the mount\n")
    passwd = tmp_path / "passwd-s3fs"
    passwd.write_text(f"{s3env.main.access_key}:{s3env.main.secret_key}\n")
    os.chmod(passwd, 0o600)
    mountpoint = tmp_path / "mnt"
    mountpoint.mkdir()
    log = open(tmp_path / "s3fs.log", "wb")
    options = [f"passwd_file={passwd}", f"url={s3env.endpoint}", "use_path_request_style",
               "endpoint=us-east-1", "sigv4", "retries=1", "connect_timeout=5",
               "readwrite_timeout=60", "stat_cache_expire=1", "multipart_size=5",
               "dbglevel=warn"]
    cmd = [exe, bucket, str(mountpoint), "-f", "-o", ",".join(options)]
    proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                            env=s3env.env(), start_new_session=True)

    def log_text() -> str:
        log.flush()
        return (tmp_path / "s3fs.log").read_text(errors="replace")[-4000:]

    try:
        ok = wait_until(lambda: os.path.ismount(mountpoint) or proc.poll() is not None,
                        MOUNT_TIMEOUT_S)
        if not os.path.ismount(mountpoint):
            text = log_text()
            fuse_refused = "fuse: device not found" in text or \
                ("Operation not permitted" in text and "fuse" in text.lower())
            if proc.poll() is not None and fuse_refused:
                pytest.skip(f"FUSE mounts are not permitted here: {text[-300:]}")
            raise AssertionError(f"s3fs did not mount within {MOUNT_TIMEOUT_S:.0f} s "
                                 f"(exited: {proc.poll()}, waited: {ok})\n{text}")
        yield bucket, str(mountpoint), proc, log_text
    finally:
        unmount(str(mountpoint))
        if proc.poll() is None:
            try:
                proc.wait(UNMOUNT_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGTERM)
                try:
                    proc.wait(10)
                except subprocess.TimeoutExpired:
                    os.killpg(proc.pid, signal.SIGKILL)
                    proc.wait(10)
        log.close()


def test_s3fs_write_list_read_unmount(mounted, s3, s3env, tmp_path):
    bucket, mnt, proc, log_text = mounted
    files = {"small.txt": 1000, "multipart.bin": 12 * MiB + 11, "dir/nested.bin": 70_000,
             "with space.dat": 4096, "empty": 0}
    expected = {}
    for rel, size in files.items():
        blob = s3kit.data(size, f"s3fs-{rel}")
        path = os.path.join(mnt, rel)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "wb") as f:
            f.write(blob)
            f.flush()
            os.fsync(f.fileno())
        expected[rel] = s3kit.sha256_hex(blob)

    assert sorted(os.listdir(mnt)) == sorted(["small.txt", "multipart.bin", "dir",
                                              "with space.dat", "empty", "pre"]), log_text()
    assert os.listdir(os.path.join(mnt, "dir")) == ["nested.bin"]
    with open(os.path.join(mnt, "pre", "existing.txt"), "rb") as f:
        assert f.read() == b"written before the mount\n"
    for rel, digest in expected.items():
        assert s3kit.sha256_file(os.path.join(mnt, rel)) == digest, rel
        assert os.path.getsize(os.path.join(mnt, rel)) == files[rel]
        got = s3.get_object(Bucket=bucket, Key=rel)["Body"].read()
        assert s3kit.sha256_hex(got) == digest, f"{rel} as stored by s3fs"
        assert s3env.recorded_sha256(bucket, rel) == digest, rel

    # rename = CopyObject + DeleteObject; append rewrites (possibly with UploadPartCopy)
    os.rename(os.path.join(mnt, "small.txt"), os.path.join(mnt, "renamed.txt"))
    assert s3kit.sha256_hex(s3.get_object(Bucket=bucket, Key="renamed.txt")["Body"].read()) \
        == expected["small.txt"]
    assert s3env.native_head(bucket, "small.txt") is None
    extra = s3kit.data(MiB, "s3fs-append")
    with open(os.path.join(mnt, "multipart.bin"), "ab") as f:
        f.write(extra)
    whole = s3kit.data(files["multipart.bin"], "s3fs-multipart.bin") + extra
    assert s3kit.sha256_hex(s3.get_object(Bucket=bucket, Key="multipart.bin")["Body"].read()) \
        == s3kit.sha256_hex(whole)

    os.remove(os.path.join(mnt, "with space.dat"))
    assert "with space.dat" not in os.listdir(mnt)
    assert s3env.native_head(bucket, "with space.dat") is None

    unmount(mnt)
    assert not os.path.ismount(mnt), log_text()
    assert proc.wait(UNMOUNT_TIMEOUT_S) == 0, log_text()
    os.rmdir(mnt)
    assert not os.path.exists(mnt)
