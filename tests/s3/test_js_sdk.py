"""The current AWS SDK for JavaScript v3 (@aws-sdk/client-s3 and @aws-sdk/lib-storage from
npm, pinned by tests/s3/js/package-lock.json) with its defaults — CRC32 checksums, sent as
aws-chunked trailers (STREAMING-UNSIGNED-PAYLOAD-TRAILER) for streamed bodies: PutObject
(buffer and stream), GetObject (+ Range), a ~30 MiB multipart Upload via lib-storage
(partSize 5 MiB, queueSize 4), ListObjectsV2, DeleteObjects and PutObject with
ChecksumAlgorithm SHA256. tests/s3/js/run.mjs does the work and reports JSON; each step is
a test here, and every object it leaves is re-checked by SHA-256 through the native API."""
from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

import s3kit

JS_DIR = Path(__file__).resolve().parent / "js"
STEPS = ["create_bucket", "put_buffer", "put_stream_crc32_trailer", "put_stream_sha256",
         "put_buffer_sha256", "multipart_upload_lib_storage", "get_range", "put_tmp_objects",
         "list_objects_v2", "delete_objects"]
TRAILER_MODES = ("STREAMING-UNSIGNED-PAYLOAD-TRAILER", "STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER")


def ensure_node_modules(npm: str) -> None:
    """`npm ci` (or `npm install` without a lockfile) once, if node_modules is missing."""
    if (JS_DIR / "node_modules" / "@aws-sdk" / "client-s3").is_dir() and \
            (JS_DIR / "node_modules" / "@aws-sdk" / "lib-storage").is_dir():
        return
    lock = (JS_DIR / "package-lock.json").exists()
    cmd = [npm, "ci" if lock else "install", "--no-audit", "--no-fund"]
    # npm is the installer, not a client under test: it keeps the caller's environment
    # (registry settings, proxies, cache).
    r = s3kit.run_tool(cmd, dict(os.environ), cwd=str(JS_DIR), timeout=600)
    assert r.returncode == 0, "installing the JS SDK failed:\n" + s3kit.summary(r)


@pytest.fixture(scope="module")
def js_run(s3env, tmp_path_factory):
    node = s3kit.require_tool("node", "the Debian package nodejs")
    npm = s3kit.require_tool("npm", "the Debian package npm")
    ensure_node_modules(npm)
    bucket = s3kit.unique_bucket("js")
    config = {"endpoint": s3env.endpoint, "region": s3kit.REGION,
              "accessKeyId": s3env.main.access_key, "secretAccessKey": s3env.main.secret_key,
              "bucket": bucket, "workdir": str(tmp_path_factory.mktemp("js-work"))}
    env = s3env.env()
    env["NODE_OPTIONS"] = ""
    r = s3kit.run_tool([node, str(JS_DIR / "run.mjs"), json.dumps(config)], env,
                       cwd=str(JS_DIR), timeout=200)
    lines = [line for line in r.stdout.splitlines() if line.startswith("{")]
    assert lines, "run.mjs printed no JSON report:\n" + s3kit.summary(r)
    report = json.loads(lines[-1])
    assert r.returncode == 0 and not report.get("deadline"), \
        f"run.mjs failed ({report.get('deadline')}):\n" + s3kit.summary(r)
    shutil.rmtree(config["workdir"], ignore_errors=True)
    report["bucket"] = bucket
    report["stderr"] = r.stderr[-3000:]
    return report


@pytest.mark.parametrize("step", STEPS)
def test_step(js_run, step):
    result = js_run["steps"].get(step)
    assert result is not None, f"step {step} did not run; stderr:\n{js_run['stderr']}"
    assert result["ok"], f"{step} failed with SDK {js_run['sdk']}: {result}"


def requests_of(js_run, command: str) -> list[dict]:
    return [r["headers"] for r in js_run["requests"] if r["command"] == command]


def test_sdk_default_sent_crc32_as_aws_chunked_trailer(js_run):
    """Guards the coverage: the current SDK's default for a streamed PutObject must really
    have been an aws-chunked body with a CRC32 trailer (and the server accepted it)."""
    puts = requests_of(js_run, "PutObjectCommand")
    trailer_puts = [hd for hd in puts if hd.get("x-amz-content-sha256") in TRAILER_MODES]
    assert trailer_puts, ("no PutObject used an aws-chunked trailer; this SDK version "
                          f"({js_run['sdk']}) changed its defaults: {puts}")
    assert any(hd.get("x-amz-trailer") == "x-amz-checksum-crc32" and
               "aws-chunked" in hd.get("content-encoding", "") for hd in trailer_puts), puts
    assert js_run["steps"]["put_stream_crc32_trailer"]["ok"]


def test_sha256_checksum_was_sent(js_run):
    puts = requests_of(js_run, "PutObjectCommand")
    assert any(hd.get("x-amz-trailer") == "x-amz-checksum-sha256" or
               "x-amz-checksum-sha256" in hd for hd in puts), puts


def test_multipart_parts_carried_checksums(js_run):
    parts = requests_of(js_run, "UploadPartCommand")
    assert len(parts) == 7, f"expected 7 parts of 5 MiB for 30 MiB + 12345 bytes: {parts}"


def test_objects_match_through_native_api(js_run, s3env):
    assert js_run["objects"], "run.mjs left no objects to check"
    for key, digest in js_run["objects"].items():
        assert s3env.recorded_sha256(js_run["bucket"], key) == digest, key
        assert s3env.native_sha256(js_run["bucket"], key) == digest, key
    for key in js_run["deleted"]:
        assert s3env.native_head(js_run["bucket"], key) is None, key
