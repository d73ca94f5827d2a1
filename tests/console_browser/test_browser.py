"""The web console in a real browser (Debian's chromium, driven by playwright-core)
against a real `cairn serve`: each scenario is a node script (*.mjs here) that drives the
page and exits non-zero with a message on failure; Python sets up its data and checks
what must be checked outside the browser (bytes downloaded, links fetched)."""
from __future__ import annotations

import hashlib
import os
import struct
import subprocess
import uuid
import zlib
from pathlib import Path

import pytest

import cairn_harness as h
from conftest import HERE, parse_result

SCRIPT_TIMEOUT_S = 150


def run_script(cairn, screenshots: Path, script: str, **env) -> dict:
    """Runs one scenario script (bounded); returns what it printed as RESULT."""
    name = script.removesuffix(".mjs")
    extra = {"CAIRN_CONSOLE_URL": cairn.console_url,
             "CAIRN_SCREENSHOT": str(screenshots / f"{name}.png")}
    extra.update({k: str(v) for k, v in env.items()})
    full_env = h.base_env(extra)
    full_env.pop("NODE_OPTIONS", None)
    try:
        r = subprocess.run(["node", str(HERE / script)], cwd=HERE, env=full_env,
                           stdin=subprocess.DEVNULL, capture_output=True, text=True,
                           timeout=SCRIPT_TIMEOUT_S)
    except subprocess.TimeoutExpired as e:
        pytest.fail(f"{script} ran past {SCRIPT_TIMEOUT_S} s\n{e.stderr or ''}", pytrace=False)
    if r.returncode != 0:
        pytest.fail(f"{script} failed ({r.returncode}):\n{r.stderr[-6000:]}\n{r.stdout[-2000:]}",
                    pytrace=False)
    return parse_result(r.stdout)


def fresh(prefix: str) -> str:
    return prefix + uuid.uuid4().hex[:10]


def png(width: int, height: int) -> bytes:
    """A small RGB PNG, made with zlib and struct only."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return (struct.pack(">I", len(data)) + kind + data +
                struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF))
    rows = b"".join(
        b"\x00" + b"".join(bytes((x * 255 // max(width - 1, 1), y * 255 // max(height - 1, 1), 160))
                           for x in range(width))
        for y in range(height))
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) +
            chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b""))


def write_random_file(path: Path, size: int) -> str:
    """Writes `size` random bytes; returns their sha256."""
    digest = hashlib.sha256()
    with open(path, "wb") as f:
        left = size
        while left:
            block = os.urandom(min(left, h.MiB))
            digest.update(block)
            f.write(block)
            left -= len(block)
    return digest.hexdigest()


def download_sha256(cairn, tenant: str, bucket: str, key: str) -> tuple[int, str]:
    """The object's bytes through the console's download call (streamed)."""
    r = cairn.admin.http.get(cairn.console_url + "/api/download" +
                             h.query(tenant=tenant, bucket=bucket, key=key),
                             stream=True, timeout=h.HTTP_TIMEOUT)
    assert r.status_code == 200, h.describe(r, "download")
    digest, size = hashlib.sha256(), 0
    for block in r.iter_content(h.MiB):
        digest.update(block)
        size += len(block)
    return size, digest.hexdigest()


def test_sign_in_with_an_api_key(cairn, screenshots):
    run_script(cairn, screenshots, "signin.mjs", CAIRN_API_KEY=cairn.admin_key,
               CAIRN_KEY_ID=h.key_id_of(cairn.admin_key))


def test_create_a_bucket(cairn, screenshots):
    tenant, bucket = fresh("t"), fresh("b-")
    run_script(cairn, screenshots, "buckets.mjs", CAIRN_API_KEY=cairn.admin_key,
               CAIRN_TENANT=tenant, CAIRN_BUCKET=bucket)
    listed = cairn.admin.call("GET", "/api/buckets" + h.query(tenant=tenant))
    assert [b["name"] for b in listed["buckets"]] == [bucket]


def test_upload_a_50_mib_file_with_progress(cairn, screenshots, tmp_path):
    tenant, bucket = fresh("t"), fresh("up-")
    cairn.admin.bucket(tenant, bucket)
    path = tmp_path / "fifty.bin"
    size = 50 * h.MiB
    expected = write_random_file(path, size)
    result = run_script(cairn, screenshots, "upload.mjs", CAIRN_API_KEY=cairn.admin_key,
                        CAIRN_TENANT=tenant, CAIRN_BUCKET=bucket, CAIRN_FILE=path)
    assert result["content_hash"] == "sha256:" + expected, result
    assert download_sha256(cairn, tenant, bucket, "fifty.bin") == (size, expected)


def test_a_failed_part_is_resumed(cairn, screenshots, tmp_path):
    tenant, bucket = fresh("t"), fresh("re-")
    cairn.admin.bucket(tenant, bucket)
    path = tmp_path / "twenty.bin"
    size = 20 * h.MiB  # three parts: 8, 8 and 4 MiB
    expected = write_random_file(path, size)
    result = run_script(cairn, screenshots, "resume.mjs", CAIRN_API_KEY=cairn.admin_key,
                        CAIRN_TENANT=tenant, CAIRN_BUCKET=bucket, CAIRN_FILE=path)
    assert result["content_hash"] == "sha256:" + expected, result
    assert download_sha256(cairn, tenant, bucket, "twenty.bin") == (size, expected)


def test_cancel_an_upload_stores_nothing(cairn, screenshots, tmp_path):
    tenant, bucket = fresh("t"), fresh("ca-")
    cairn.admin.bucket(tenant, bucket)
    path = tmp_path / "cancelled.bin"
    write_random_file(path, 20 * h.MiB)
    result = run_script(cairn, screenshots, "cancel.mjs", CAIRN_API_KEY=cairn.admin_key,
                        CAIRN_TENANT=tenant, CAIRN_BUCKET=bucket, CAIRN_FILE=path)
    listed = cairn.admin.call("GET", "/api/objects" + h.query(tenant=tenant, bucket=bucket))
    assert listed["objects"] == [], listed
    # The upload and its stored parts are gone on the server.
    r = cairn.admin.http.get(cairn.console_url + "/api/uploads/parts" +
                             h.query(tenant=tenant, bucket=bucket, key="cancelled.bin",
                                     upload_id=result["upload_id"]), timeout=h.HTTP_TIMEOUT)
    assert r.status_code == 404, h.describe(r, "parts of a cancelled upload")


def test_upload_a_folder(cairn, screenshots, tmp_path):
    tenant, bucket = fresh("t"), fresh("fo-")
    cairn.admin.bucket(tenant, bucket)
    files = {"tree/a.txt": b"first file", "tree/sub/b.txt": b"second, deeper",
             "tree/sub/deeper/c.bin": os.urandom(100 * h.KiB)}
    for rel, data in files.items():
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_bytes(data)
    run_script(cairn, screenshots, "folder.mjs", CAIRN_API_KEY=cairn.admin_key,
               CAIRN_TENANT=tenant, CAIRN_BUCKET=bucket, CAIRN_DIR=tmp_path / "tree",
               CAIRN_FILES=len(files))
    listed = cairn.admin.call("GET", "/api/objects" + h.query(tenant=tenant, bucket=bucket))
    assert sorted(o["key"] for o in listed["objects"]) == sorted(files), listed
    for key, data in files.items():
        assert download_sha256(cairn, tenant, bucket, key) == \
            (len(data), hashlib.sha256(data).hexdigest())


def test_browse_into_a_folder(cairn, screenshots):
    tenant, bucket = fresh("t"), fresh("br-")
    cairn.admin.bucket(tenant, bucket)
    for key in ("root.txt", "docs/readme.txt", "docs/notes.md", "docs/deep/x.txt"):
        cairn.admin.upload(tenant, bucket, key, key.encode(), "text/plain")
    run_script(cairn, screenshots, "browse.mjs", CAIRN_API_KEY=cairn.admin_key,
               CAIRN_TENANT=tenant, CAIRN_BUCKET=bucket)
    listed = cairn.admin.call("GET", "/api/objects" + h.query(tenant=tenant, bucket=bucket,
                                                              prefix="docs/dropped"))
    assert [o["key"] for o in listed["objects"]] == ["docs/dropped-1.txt", "docs/dropped-2.txt"]
    assert download_sha256(cairn, tenant, bucket, "docs/dropped-1.txt")[1] == \
        hashlib.sha256(b"dropped one").hexdigest()


def test_preview_text_and_an_image(cairn, screenshots):
    tenant, bucket = fresh("t"), fresh("pv-")
    cairn.admin.bucket(tenant, bucket)
    text = "Hello from Cairn.\nLine two: <b>not bold</b> & ünïcödé\n"
    cairn.admin.upload(tenant, bucket, "preview/hello.txt", text.encode(), "text/plain")
    cairn.admin.upload(tenant, bucket, "preview/page.html",
                       b"<script>alert(1)</script><h1>page</h1>", "text/html")
    cairn.admin.upload(tenant, bucket, "preview/dot.png", png(96, 64), "image/png")
    run_script(cairn, screenshots, "preview.mjs", CAIRN_API_KEY=cairn.admin_key,
               CAIRN_TENANT=tenant, CAIRN_BUCKET=bucket, CAIRN_TEXT=text, CAIRN_PNG_WIDTH=96)


def test_share_a_link_signed_in_with_an_s3_key_pair(cairn, screenshots):
    tenant, bucket = fresh("t"), fresh("sh-")
    cairn.admin.bucket(tenant, bucket)
    data = os.urandom(300 * h.KiB + 7)
    key = "shared/a file.bin"
    cairn.admin.upload(tenant, bucket, key, data)
    pair = cairn.admin.key("s3", [tenant], "read")
    result = run_script(cairn, screenshots, "share.mjs", CAIRN_API_KEY=cairn.admin_key,
                        CAIRN_TENANT=tenant, CAIRN_BUCKET=bucket, CAIRN_KEY=key,
                        CAIRN_ACCESS_KEY=pair["id"], CAIRN_SECRET_KEY=pair["secret"])
    url = result["url"]
    assert url.startswith(cairn.srv.s3_url + "/"), url
    fetched = subprocess.run(["curl", "-sS", "--fail", "--noproxy", "*", "--max-time", "30",
                              "-o", "-", url], capture_output=True, timeout=60,
                             env=h.base_env())
    assert fetched.returncode == 0, fetched.stderr.decode(errors="replace")
    assert fetched.stdout == data


def test_create_and_revoke_a_key(cairn, screenshots):
    run_script(cairn, screenshots, "keys.mjs", CAIRN_API_KEY=cairn.admin_key,
               CAIRN_TENANT=fresh("t"))


def test_run_gc_and_fsck_from_operations(cairn, screenshots):
    # Something for GC to do: an object deleted.
    tenant, bucket = fresh("t"), fresh("gc-")
    cairn.admin.bucket(tenant, bucket)
    cairn.admin.upload(tenant, bucket, "gone.bin", os.urandom(64 * h.KiB))
    cairn.admin.call("DELETE", "/api/objects", {"tenant": tenant, "bucket": bucket,
                                                "keys": ["gone.bin"]})
    run_script(cairn, screenshots, "operations.mjs", CAIRN_API_KEY=cairn.admin_key)


def test_sign_out_ends_the_session(cairn, screenshots):
    run_script(cairn, screenshots, "signout.mjs", CAIRN_API_KEY=cairn.admin_key)


def test_a_key_of_tenant_a_never_sees_tenant_b(cairn, screenshots):
    a, b = fresh("ta"), fresh("tb")
    bucket_a, bucket_b = fresh("a-"), fresh("secret-b-")
    cairn.admin.bucket(a, bucket_a)
    cairn.admin.bucket(b, bucket_b)
    key = cairn.admin.key("api", [a], "read")
    run_script(cairn, screenshots, "tenants.mjs", CAIRN_API_KEY=key["secret"],
               CAIRN_TENANT_A=a, CAIRN_TENANT_B=b, CAIRN_BUCKET_A=bucket_a,
               CAIRN_BUCKET_B=bucket_b)


def test_a_key_named_like_markup_renders_as_text(cairn, screenshots):
    tenant, bucket = fresh("t"), fresh("x-")
    cairn.admin.bucket(tenant, bucket)
    name = "<img src=x onerror=alert(1)>"
    cairn.admin.upload(tenant, bucket, name, b"harmless", "text/html")
    run_script(cairn, screenshots, "xss.mjs", CAIRN_API_KEY=cairn.admin_key,
               CAIRN_TENANT=tenant, CAIRN_BUCKET=bucket, CAIRN_KEY=name)


def test_a_change_without_the_csrf_token_is_refused(cairn, screenshots):
    run_script(cairn, screenshots, "csrf.mjs", CAIRN_API_KEY=cairn.admin_key,
               CAIRN_TENANT=fresh("t"))
