"""s3cmd and rclone (Debian packages) against Cairn's S3 endpoint.

s3cmd: a config file written here (host_base/host_bucket = 127.0.0.1:PORT, i.e. path style;
use_https False; SigV4), mb/put/ls/get/del/rb and a 20 MiB multipart put with 5 MiB chunks
(s3cmd checks downloads against the MD5 it keeps in x-amz-meta-s3cmd-attrs).
rclone: a remote defined only by RCLONE_CONFIG_CAIRN_* variables (provider Other, path
style), copy, sync, check (must pass: ETags are the MD5s rclone expects, and multipart
objects keep the MD5 rclone stores in metadata), lsf, delete, rmdir.
Contents are checked by SHA-256 locally and through the native API."""
from __future__ import annotations


import pytest

import s3kit
from s3kit import MiB


def tree(root, files: dict) -> dict:
    out = {}
    for rel, size in sorted(files.items()):
        out[rel] = s3kit.write_random_file(root / rel, size, f"{root.name}-{rel}-{size}")["sha256"]
    return out


def local_hashes(root) -> dict:
    return {str(p.relative_to(root)): s3kit.sha256_file(p)
            for p in sorted(root.rglob("*")) if p.is_file()}


# ---------------------------------------------------------------------------------------
# s3cmd
# ---------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def s3cmd(s3env, tmp_path_factory):
    exe = s3kit.require_tool("s3cmd", "the Debian package s3cmd")
    config = s3kit.write_s3cmd_config(tmp_path_factory.mktemp("s3cmd") / "s3cfg", s3env,
                                      signature_v2=False)
    env = s3env.env()

    def run(*args, check: bool = True, timeout: float = 180.0):
        r = s3kit.run_tool([exe, "-c", str(config), "--no-progress", *args], env,
                           timeout=timeout)
        if check:
            assert r.returncode == 0, s3kit.summary(r)
        assert "MD5 signatures do not match" not in r.stdout + r.stderr, s3kit.summary(r)
        return r

    return run


def test_s3cmd_put_get_ls_del(s3cmd, s3env, tmp_path):
    bucket = s3kit.unique_bucket("s3cmd")
    s3cmd("mb", f"s3://{bucket}")
    assert f"s3://{bucket}" in s3cmd("ls").stdout
    hashes = tree(tmp_path / "in", {"a.bin": 100_000, "dir/b c.txt": 777, "empty": 0})
    for rel in hashes:
        s3cmd("put", str(tmp_path / "in" / rel), f"s3://{bucket}/{rel}")
    listing = s3cmd("ls", "--recursive", f"s3://{bucket}").stdout
    for rel in hashes:
        assert f"s3://{bucket}/{rel}" in listing, listing
    top = s3cmd("ls", f"s3://{bucket}/").stdout
    assert f"DIR s3://{bucket}/dir/" in " ".join(top.split()), top

    for rel, digest in hashes.items():
        out = tmp_path / "out" / rel
        out.parent.mkdir(parents=True, exist_ok=True)
        s3cmd("get", "--force", f"s3://{bucket}/{rel}", str(out))
        assert s3kit.sha256_file(out) == digest, rel
        assert s3env.recorded_sha256(bucket, rel) == digest, rel

    s3cmd("del", f"s3://{bucket}/a.bin")
    assert f"s3://{bucket}/a.bin" not in s3cmd("ls", "--recursive", f"s3://{bucket}").stdout
    assert s3env.native_head(bucket, "a.bin") is None
    refused = s3cmd("rb", f"s3://{bucket}", check=False)
    assert refused.returncode != 0, s3kit.summary(refused)
    s3cmd("del", "--recursive", "--force", f"s3://{bucket}")
    s3cmd("rb", f"s3://{bucket}")
    assert f"s3://{bucket}" not in s3cmd("ls").stdout


def test_s3cmd_multipart_put(s3cmd, s3env, tmp_path):
    bucket = s3kit.unique_bucket("s3cmd")
    s3cmd("mb", f"s3://{bucket}")
    info = s3kit.write_random_file(tmp_path / "big.bin", 20 * MiB, "s3cmd-mp",
                                   part_size=5 * MiB)
    s3cmd("put", "--multipart-chunk-size-mb=5", str(tmp_path / "big.bin"),
          f"s3://{bucket}/big.bin")
    s3 = s3env.boto()
    head = s3.head_object(Bucket=bucket, Key="big.bin")
    assert s3kit.unquote_etag(head["ETag"]) == info["multipart_etag"], \
        "not a 4-part upload with 5 MiB parts"
    assert "s3cmd-attrs" in head["Metadata"], head["Metadata"]
    s3cmd("get", "--force", f"s3://{bucket}/big.bin", str(tmp_path / "big.out"))
    assert s3kit.sha256_file(tmp_path / "big.out") == info["sha256"]
    assert s3env.recorded_sha256(bucket, "big.bin") == info["sha256"]


# ---------------------------------------------------------------------------------------
# rclone
# ---------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def rclone(s3env, tmp_path_factory):
    exe = s3kit.require_tool("rclone", "the Debian package rclone")
    empty_config = tmp_path_factory.mktemp("rclone") / "rclone.conf"
    empty_config.write_text("")
    env = s3kit.client_env(s3env.main, s3env.home, {
        "RCLONE_CONFIG_CAIRN_TYPE": "s3", "RCLONE_CONFIG_CAIRN_PROVIDER": "Other",
        "RCLONE_CONFIG_CAIRN_ENV_AUTH": "false",
        "RCLONE_CONFIG_CAIRN_ACCESS_KEY_ID": s3env.main.access_key,
        "RCLONE_CONFIG_CAIRN_SECRET_ACCESS_KEY": s3env.main.secret_key,
        "RCLONE_CONFIG_CAIRN_ENDPOINT": s3env.endpoint,
        "RCLONE_CONFIG_CAIRN_REGION": s3kit.REGION,
        "RCLONE_CONFIG_CAIRN_FORCE_PATH_STYLE": "true",
    })

    def run(*args, check: bool = True, timeout: float = 180.0):
        cmd = [exe, "--config", str(empty_config), "--retries", "1", "--low-level-retries",
               "1", "--contimeout", "5s", "--timeout", "60s", "--s3-upload-cutoff", "5M",
               "--s3-chunk-size", "5M", *args]
        r = s3kit.run_tool(cmd, env, timeout=timeout)
        if check:
            assert r.returncode == 0, s3kit.summary(r)
        return r

    return run


def test_rclone_copy_sync_check_lsf_delete(rclone, s3env, tmp_path):
    bucket = s3kit.unique_bucket("rclone")
    remote = f"cairn:{bucket}/data"
    src = tmp_path / "src"
    files = {"a.txt": 10, "b/c.bin": 200_000, "b/d e.bin": 3000, "uni ü/ß+%.bin": 99,
             "empty": 0, "multi/part.bin": 12 * MiB + 3}  # > upload cutoff: multipart
    hashes = tree(src, files)
    rclone("mkdir", f"cairn:{bucket}")
    rclone("copy", str(src), remote)
    for rel, digest in hashes.items():
        assert s3env.recorded_sha256(bucket, "data/" + rel) == digest, rel
    multipart_etag = s3kit.unquote_etag(
        s3env.boto().head_object(Bucket=bucket, Key="data/multi/part.bin")["ETag"])
    assert multipart_etag.endswith("-3"), multipart_etag

    check = rclone("check", str(src), remote)
    assert "0 differences found" in check.stderr + check.stdout, s3kit.summary(check)
    listed = rclone("lsf", "-R", "--files-only", remote).stdout.splitlines()
    assert sorted(listed) == sorted(files), listed

    # change a file, add one, remove one; sync; check again
    hashes["a.txt"] = s3kit.write_random_file(src / "a.txt", 11, "changed")["sha256"]
    hashes["new/file"] = s3kit.write_random_file(src / "new/file", 5000, "new")["sha256"]
    (src / "b/d e.bin").unlink()
    del hashes["b/d e.bin"]
    rclone("sync", str(src), remote)
    check = rclone("check", str(src), remote)
    assert "0 differences found" in check.stderr + check.stdout, s3kit.summary(check)
    assert sorted(rclone("lsf", "-R", "--files-only", remote).stdout.splitlines()) == \
        sorted(hashes)
    assert s3env.native_head(bucket, "data/b/d e.bin") is None

    dst = tmp_path / "dst"
    rclone("copy", remote, str(dst))
    assert local_hashes(dst) == hashes

    # a corrupted remote object is detected by check (so check really compares hashes)
    s3env.boto().put_object(Bucket=bucket, Key="data/a.txt", Body=b"X" * 11)
    bad = rclone("check", str(src), remote, check=False)
    assert bad.returncode != 0 and "1 differences found" in bad.stderr + bad.stdout, \
        s3kit.summary(bad)

    rclone("delete", f"{remote}/b/c.bin")
    assert "b/c.bin" not in rclone("lsf", "-R", remote).stdout.splitlines()
    rclone("delete", remote)
    assert rclone("lsf", "-R", "--files-only", remote).stdout.strip() == ""
    rclone("rmdir", f"cairn:{bucket}")
    assert bucket not in rclone("lsd", "cairn:").stdout
