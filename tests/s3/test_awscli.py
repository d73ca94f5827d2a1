"""AWS CLI v2 (Debian's awscli, /usr/bin/aws — never whatever `aws` is first in PATH)
against Cairn's S3 endpoint: `aws s3` (mb, ls, cp, rm, rb, sync, presign, a 200 MiB
multipart cp) and `aws s3api` (put/get/head/copy-object, delete-objects, list-objects-v2
with a delimiter and pagination). Every payload is checked by SHA-256, through the CLI and
through the native API."""
from __future__ import annotations

import json
import os
import time
import urllib.request

import pytest

import s3kit
from s3kit import MiB

AWS = "/usr/bin/aws"
READ_TIMEOUT_S = 30  # a stalled response fails in 30 s, not the CLI's default 60 s


@pytest.fixture(scope="module")
def aws(s3env):
    exe = s3kit.require_tool(AWS, "the Debian package awscli (AWS CLI v2)")
    env = s3env.env()

    def run(*args, check: bool = True, timeout: float = 240.0, extra_env: dict = None):
        cmd = [exe, *args, "--endpoint-url", s3env.endpoint, "--no-cli-pager",
               "--cli-connect-timeout", "5", "--cli-read-timeout", str(READ_TIMEOUT_S)]
        r = s3kit.run_tool(cmd, {**env, **(extra_env or {})}, timeout=timeout)
        if check:
            assert r.returncode == 0, s3kit.summary(r)
        return r

    def api(*args, **kwargs) -> dict:
        r = run("s3api", *args, "--output", "json", **kwargs)
        return json.loads(r.stdout) if r.stdout.strip() else {}

    run.api = api
    return run


def fetch(url: str) -> bytes:
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    with opener.open(url, timeout=30) as response:
        assert response.status == 200
        return response.read()


def make_tree(root, files: dict) -> dict:
    """files: relative path -> size; returns relative path -> sha256."""
    out = {}
    for i, (rel, size) in enumerate(sorted(files.items())):
        out[rel] = s3kit.write_random_file(root / rel, size, f"tree-{rel}-{size}-{i}")["sha256"]
    return out


def tree_hashes(root) -> dict:
    return {str(p.relative_to(root)): s3kit.sha256_file(p)
            for p in sorted(root.rglob("*")) if p.is_file()}


def test_mb_ls_cp_rm_rb(aws, s3env, tmp_path):
    bucket = s3kit.unique_bucket("cli")
    key = "dir/file name ü+%.bin"
    assert f"make_bucket: {bucket}" in aws("s3", "mb", f"s3://{bucket}").stdout
    assert bucket in aws("s3", "ls").stdout.split()

    info = s3kit.write_random_file(tmp_path / "in.bin", MiB + 3, "cli-small")
    out = aws("s3", "cp", "--no-progress", str(tmp_path / "in.bin"), f"s3://{bucket}/{key}")
    assert "upload:" in out.stdout, s3kit.summary(out)
    listing = aws("s3", "ls", f"s3://{bucket}/dir/").stdout
    assert "file name ü+%.bin" in listing and str(MiB + 3) in listing, listing

    aws("s3", "cp", "--no-progress", f"s3://{bucket}/{key}", str(tmp_path / "out.bin"))
    assert s3kit.sha256_file(tmp_path / "out.bin") == info["sha256"]
    assert s3env.native_sha256(bucket, key) == info["sha256"]

    refused = aws("s3", "rb", f"s3://{bucket}", check=False)
    assert refused.returncode != 0 and "BucketNotEmpty" in refused.stderr, s3kit.summary(refused)

    assert "delete:" in aws("s3", "rm", f"s3://{bucket}/{key}").stdout
    assert "file name" not in aws("s3", "ls", f"s3://{bucket}/dir/", check=False).stdout
    assert s3env.native_head(bucket, key) is None
    assert f"remove_bucket: {bucket}" in aws("s3", "rb", f"s3://{bucket}").stdout
    assert bucket not in aws("s3", "ls").stdout.split()


def test_rb_force_removes_objects_and_bucket(aws, s3env, tmp_path):
    bucket = s3kit.unique_bucket("cli")
    aws("s3", "mb", f"s3://{bucket}")
    make_tree(tmp_path / "t", {"a": 10, "b/c": 20, "b/d e": 0})
    aws("s3", "cp", "--no-progress", "--recursive", str(tmp_path / "t"), f"s3://{bucket}/")
    aws("s3", "rb", "--force", f"s3://{bucket}")
    assert bucket not in aws("s3", "ls").stdout.split()


def test_sync_up_down_and_delete(aws, s3env, tmp_path):
    bucket = s3kit.unique_bucket("cli")
    aws("s3", "mb", f"s3://{bucket}")
    src, dst = tmp_path / "src", tmp_path / "dst"
    files = {"top.txt": 1000, "empty": 0, "a/b/c.bin": 70_000, "a/space name.dat": 5000,
             "uni/日本語 é.txt": 333, "plus+and%percent": 12, "big/nine.bin": 9 * MiB + 1}
    hashes = make_tree(src, files)
    an_hour_ago = time.time() - 3600  # older than any LastModified, whatever its precision
    for path in src.rglob("*"):
        os.utime(path, (an_hour_ago, an_hour_ago))

    first = aws("s3", "sync", "--no-progress", str(src), f"s3://{bucket}/tree/")
    uploads = [line for line in first.stdout.splitlines() if line.startswith("upload:")]
    assert len(uploads) == len(files), s3kit.summary(first)
    listed = aws.api("list-objects-v2", "--bucket", bucket, "--prefix", "tree/")
    assert sorted(o["Key"] for o in listed["Contents"]) == sorted("tree/" + k for k in files)
    for rel, digest in hashes.items():
        assert s3env.recorded_sha256(bucket, "tree/" + rel) == digest, rel

    again = aws("s3", "sync", "--no-progress", str(src), f"s3://{bucket}/tree/")
    assert "upload:" not in again.stdout, "a second sync re-uploaded unchanged files:\n" + \
        s3kit.summary(again)

    # change one file (new size), add one, delete one
    hashes["top.txt"] = s3kit.write_random_file(src / "top.txt", 1234, "changed")["sha256"]
    hashes["new/file"] = s3kit.write_random_file(src / "new/file", 77, "new")["sha256"]
    (src / "a/space name.dat").unlink()
    del hashes["a/space name.dat"]
    third = aws("s3", "sync", "--no-progress", "--delete", str(src), f"s3://{bucket}/tree/")
    lines = third.stdout.splitlines()
    assert sum(line.startswith("upload:") for line in lines) == 2, s3kit.summary(third)
    assert sum(line.startswith("delete:") for line in lines) == 1, s3kit.summary(third)

    aws("s3", "sync", "--no-progress", f"s3://{bucket}/tree/", str(dst))
    assert tree_hashes(dst) == hashes


def test_cp_200mib_is_multipart_with_8mib_parts(aws, s3env, tmp_path):
    bucket = s3kit.unique_bucket("cli")
    aws("s3", "mb", f"s3://{bucket}")
    size = 200 * MiB
    src, out = tmp_path / "big.bin", tmp_path / "big.out"
    try:
        info = s3kit.write_random_file(src, size, "cli-200", part_size=8 * MiB)
        aws("s3", "cp", "--no-progress", str(src), f"s3://{bucket}/big.bin", timeout=280)
        head = aws.api("head-object", "--bucket", bucket, "--key", "big.bin")
        assert head["ContentLength"] == size
        assert s3kit.unquote_etag(head["ETag"]) == info["multipart_etag"], (
            "ETag of a 25-part upload must be md5(concatenated part md5s)-25")
        assert s3env.recorded_sha256(bucket, "big.bin") == info["sha256"]
        aws("s3", "cp", "--no-progress", f"s3://{bucket}/big.bin", str(out), timeout=280)
        assert s3kit.sha256_file(out) == info["sha256"]
    finally:
        src.unlink(missing_ok=True)
        out.unlink(missing_ok=True)


def test_s3api_put_get_head_copy_delete(aws, s3env, tmp_path):
    bucket = s3kit.unique_bucket("cli")
    aws("s3", "mb", f"s3://{bucket}")
    info = s3kit.write_random_file(tmp_path / "obj", 300_001, "s3api")
    put = aws.api("put-object", "--bucket", bucket, "--key", "k/obj", "--body",
                  str(tmp_path / "obj"), "--metadata", "colour=blue,Mixed-Case=Yes",
                  "--content-type", "text/x-cairn")
    assert s3kit.unquote_etag(put["ETag"]) == info["md5"]

    got = aws.api("get-object", "--bucket", bucket, "--key", "k/obj", str(tmp_path / "got"))
    assert s3kit.sha256_file(tmp_path / "got") == info["sha256"]
    assert got["ContentType"] == "text/x-cairn"
    assert got["Metadata"] == {"colour": "blue", "mixed-case": "Yes"}
    assert got["ContentLength"] == 300_001

    head = aws.api("head-object", "--bucket", bucket, "--key", "k/obj")
    assert head["Metadata"] == {"colour": "blue", "mixed-case": "Yes"}
    assert s3kit.unquote_etag(head["ETag"]) == info["md5"]

    aws.api("copy-object", "--bucket", bucket, "--key", "k/copy", "--copy-source",
            f"{bucket}/k/obj")
    copied = aws.api("head-object", "--bucket", bucket, "--key", "k/copy")
    assert copied["Metadata"] == {"colour": "blue", "mixed-case": "Yes"}
    assert copied["ContentType"] == "text/x-cairn"

    aws.api("copy-object", "--bucket", bucket, "--key", "k/replaced", "--copy-source",
            f"{bucket}/k/obj", "--metadata-directive", "REPLACE", "--metadata", "shape=round",
            "--content-type", "application/x-other")
    replaced = aws.api("head-object", "--bucket", bucket, "--key", "k/replaced")
    assert replaced["Metadata"] == {"shape": "round"}
    assert replaced["ContentType"] == "application/x-other"
    for key in ("k/copy", "k/replaced"):
        assert s3env.recorded_sha256(bucket, key) == info["sha256"], key

    spec = {"Objects": [{"Key": "k/obj"}, {"Key": "k/copy"}, {"Key": "k/replaced"},
                        {"Key": "k/never-existed"}], "Quiet": False}
    deleted = aws.api("delete-objects", "--bucket", bucket, "--delete", json.dumps(spec))
    assert sorted(d["Key"] for d in deleted.get("Deleted", [])) == \
        ["k/copy", "k/never-existed", "k/obj", "k/replaced"]
    assert not deleted.get("Errors")
    gone = aws("s3api", "head-object", "--bucket", bucket, "--key", "k/obj", check=False)
    assert gone.returncode != 0 and "404" in gone.stderr, s3kit.summary(gone)


@pytest.fixture(scope="module")
def listing_bucket(aws, tmp_path_factory):
    """A bucket with a small known tree, uploaded with one `aws s3 cp --recursive`."""
    bucket = s3kit.unique_bucket("cli")
    aws("s3", "mb", f"s3://{bucket}")
    root = tmp_path_factory.mktemp("listing")
    names = [f"p/dir{d}/f{i}" for d in range(3) for i in range(4)] + \
        [f"p/top{i}" for i in range(7)] + ["p/dir1/deeper/x", "q/other", "p/z space"]
    for i, name in enumerate(names):
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(f"{i}:{name}".encode())
    aws("s3", "cp", "--no-progress", "--recursive", str(root), f"s3://{bucket}/")
    return bucket, sorted(names)


def test_list_objects_v2_delimiter(aws, listing_bucket):
    bucket, names = listing_bucket
    out = aws.api("list-objects-v2", "--bucket", bucket, "--prefix", "p/", "--delimiter", "/")
    assert [c["Prefix"] for c in out["CommonPrefixes"]] == ["p/dir0/", "p/dir1/", "p/dir2/"]
    assert [o["Key"] for o in out["Contents"]] == \
        sorted([f"p/top{i}" for i in range(7)] + ["p/z space"])
    # the same with pages of two entries (CLI follows the continuation tokens)
    paged = aws.api("list-objects-v2", "--bucket", bucket, "--prefix", "p/", "--delimiter",
                    "/", "--page-size", "2")
    assert [c["Prefix"] for c in paged["CommonPrefixes"]] == \
        ["p/dir0/", "p/dir1/", "p/dir2/"]
    assert [o["Key"] for o in paged["Contents"]] == [o["Key"] for o in out["Contents"]]


def test_list_objects_v2_pagination(aws, listing_bucket):
    bucket, names = listing_bucket
    full = aws.api("list-objects-v2", "--bucket", bucket, "--page-size", "3")
    assert [o["Key"] for o in full["Contents"]] == names

    seen, token = [], None
    for _ in range(20):
        args = ["list-objects-v2", "--bucket", bucket, "--prefix", "p/", "--max-items", "7",
                "--page-size", "3"]
        if token:
            args += ["--starting-token", token]
        page = aws.api(*args)
        keys = [o["Key"] for o in page.get("Contents", [])]
        assert len(keys) <= 7
        seen += keys
        token = page.get("NextToken")
        if not token:
            break
    else:
        raise AssertionError("pagination did not end within 20 pages")
    assert seen == [n for n in names if n.startswith("p/")]


def test_presign_fetched_with_urllib(aws, s3env, tmp_path):
    bucket = s3kit.unique_bucket("cli")
    aws("s3", "mb", f"s3://{bucket}")
    info = s3kit.write_random_file(tmp_path / "p.bin", 200_000, "presign-cli")
    key = "shared/a b+c ü.bin"
    aws("s3", "cp", "--no-progress", str(tmp_path / "p.bin"), f"s3://{bucket}/{key}")
    url = aws("s3", "presign", f"s3://{bucket}/{key}", "--expires-in", "300").stdout.strip()
    assert url.startswith(s3env.endpoint + "/"), url
    assert "X-Amz-Signature=" in url
    assert s3kit.sha256_hex(fetch(url)) == info["sha256"]


def test_upload_after_an_empty_upload_on_the_same_connection(aws, s3env, tmp_path):
    """awscli sends `Expect: 100-continue` even for an empty body. When a server answers
    such a request with its final status and no `100 Continue` (which RFC 9110 allows),
    awscli's botocore keeps that status line for the next request on the same keep-alive
    connection and misreads the next responses: a read timeout, or an upload "failed" for
    want of an ETag. One connection (max_concurrent_requests = 1) makes it deterministic;
    with the default 10 threads `aws s3 sync` of a tree with an empty file stalls at
    random. Real clients therefore need `100 Continue` for every Expect request."""
    bucket = s3kit.unique_bucket("cli")
    aws("s3", "mb", f"s3://{bucket}")
    src = tmp_path / "src"
    src.mkdir()
    (src / "a-empty").write_bytes(b"")
    hashes = {"a-empty": s3kit.sha256_hex(b"")}
    for name in ("b-data", "c-data", "d-data"):
        hashes[name] = s3kit.write_random_file(src / name, 1000, name)["sha256"]
    config = tmp_path / "aws-config"
    config.write_text("[default]\nregion = us-east-1\ns3 =\n    addressing_style = path\n"
                      "    max_concurrent_requests = 1\n")
    started = time.monotonic()
    r = aws("s3", "cp", "--no-progress", "--recursive", str(src), f"s3://{bucket}/",
            check=False, extra_env={"AWS_CONFIG_FILE": str(config)})
    elapsed = time.monotonic() - started
    assert r.returncode == 0, s3kit.summary(r)
    assert elapsed < READ_TIMEOUT_S / 2, f"uploads stalled ({elapsed:.1f} s)"
    for name, digest in hashes.items():
        assert s3env.recorded_sha256(bucket, name) == digest, name
