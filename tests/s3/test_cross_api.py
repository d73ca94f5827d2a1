"""One store, two APIs: an object written through S3 reads back byte-identical through the
native API (/v1/objects/by-key/<bucket>/<tenant>/<key>) and vice versa; identical content
written through both is stored once; completing a 1 GiB multipart upload links the parts'
chunks (the CompleteMultipartUpload call is quick and writes no chunk data); CopyObject
of a large object adds no physical bytes."""
from __future__ import annotations

import base64
import concurrent.futures
import hashlib
import os
import random
import threading

import pytest

pytest.importorskip("boto3", reason="python3-boto3 is not installed")
from botocore.exceptions import ClientError  # noqa: E402

import s3kit  # noqa: E402
from s3kit import MiB, h  # noqa: E402

CROSS_KEYS = ["plain.bin", "dir/sub/file name.txt", "ü/日本語 ключ+%.bin", "ctl\x01\x1f.bin",
              "trailing/", "a+b%20c"]


@pytest.mark.parametrize("key", CROSS_KEYS, ids=repr)
def test_s3_put_native_get(s3, s3env, bucket, key):
    body = s3kit.data(100_003, "s3->native " + key)
    s3.put_object(Bucket=bucket, Key=key, Body=body, ContentType="application/x-cross")
    r = s3env.native_get(bucket, key)
    assert r.status_code == 200, h.describe(r, "native GET of an S3 object")
    assert s3kit.sha256_hex(r.content) == s3kit.sha256_hex(body)
    assert r.headers.get("X-Content-SHA256", "").lower() == s3kit.sha256_hex(body)
    assert r.headers.get("Content-Type", "").startswith("application/x-cross")
    listed = s3env.native.list_all(namespace=bucket, tenant=s3env.main.tenant)
    assert [(o["key"], o["content_hash"], o["size_bytes"]) for o in listed] == \
        [(key, "sha256:" + s3kit.sha256_hex(body), len(body))]
    # not visible under another tenant's name
    r = s3env.native_get(bucket, key, tenant=s3env.other.tenant)
    assert r.status_code == 404, h.describe(r)


@pytest.mark.parametrize("key", CROSS_KEYS, ids=repr)
def test_native_put_s3_get(s3, s3env, bucket, key):
    body = s3kit.data(100_003, "native->s3 " + key)
    s3env.native.put(body, tenant=s3env.main.tenant, namespace=bucket, key=key,
                     content_type="application/x-native")
    got = s3.get_object(Bucket=bucket, Key=key)
    assert s3kit.sha256_hex(got["Body"].read()) == s3kit.sha256_hex(body)
    assert got["ContentLength"] == len(body)
    assert got["ContentType"].startswith("application/x-native")
    etag = got["ETag"]
    # A native upload computes no MD5 unless asked: its ETag is the multipart-style
    # "<hex>-1", which S3 clients never compare with an MD5.
    assert etag == f'"{s3kit.sha256_hex(body)[:32]}-1"', etag
    head = s3.head_object(Bucket=bucket, Key=key)
    assert head["ETag"] == etag
    with pytest.raises(ClientError) as info:
        s3.get_object(Bucket=bucket, Key=key, IfNoneMatch=etag)
    assert s3kit.http_status(info.value) == 304
    assert [o["Key"] for o in s3.list_objects_v2(Bucket=bucket)["Contents"]] == [key]


def test_native_put_asking_for_md5_has_an_md5_etag(s3, s3env, bucket):
    body = s3kit.data(300_007, "native md5")
    s3env.native.put(body, tenant=s3env.main.tenant, namespace=bucket, key="asked",
                     headers={"X-Compute-MD5": "true"})
    assert s3.head_object(Bucket=bucket, Key="asked")["ETag"] == f'"{s3kit.md5_hex(body)}"'
    md5_b64 = base64.b64encode(hashlib.md5(body).digest()).decode()
    s3env.native.put(body, tenant=s3env.main.tenant, namespace=bucket, key="verified",
                     headers={"Content-MD5": md5_b64})
    assert s3.head_object(Bucket=bucket, Key="verified")["ETag"] == f'"{s3kit.md5_hex(body)}"'
    # and the same bytes uploaded through S3 get their MD5, with the chunks shared
    s3.put_object(Bucket=bucket, Key="from-s3", Body=body)
    assert s3.head_object(Bucket=bucket, Key="from-s3")["ETag"] == f'"{s3kit.md5_hex(body)}"'


def test_user_metadata_crosses_apis(s3, s3env, bucket):
    s3.put_object(Bucket=bucket, Key="from-s3", Body=b"1", Metadata={"colour": "blue"})
    r = s3env.native_get(bucket, "from-s3", method="HEAD")
    assert {k.lower(): v for k, v in r.headers.items()}.get("x-meta-colour") == "blue", \
        h.describe(r)
    s3env.native.put(b"2", tenant=s3env.main.tenant, namespace=bucket, key="from-native",
                     meta={"shape": "round"})
    assert s3.head_object(Bucket=bucket, Key="from-native")["Metadata"] == {"shape": "round"}


def test_overwrite_and_delete_across_apis(s3, s3env, bucket):
    s3.put_object(Bucket=bucket, Key="k", Body=b"from s3")
    s3env.native.put(b"from native", tenant=s3env.main.tenant, namespace=bucket, key="k")
    assert s3.get_object(Bucket=bucket, Key="k")["Body"].read() == b"from native"
    s3.put_object(Bucket=bucket, Key="k", Body=b"from s3 again")
    assert s3env.native_get(bucket, "k").content == b"from s3 again"

    r = s3env.native.delete_by_key(bucket, s3env.main.tenant, "k")
    assert r.status_code == 204, h.describe(r)
    with pytest.raises(ClientError) as info:
        s3.get_object(Bucket=bucket, Key="k")
    assert s3kit.error_code(info.value) == "NoSuchKey"

    s3env.native.put(b"again", tenant=s3env.main.tenant, namespace=bucket, key="k2")
    s3.delete_object(Bucket=bucket, Key="k2")
    assert s3env.native_get(bucket, "k2").status_code == 404
    assert s3.list_objects_v2(Bucket=bucket)["KeyCount"] == 0


def test_bucket_with_native_objects_is_not_empty(s3, s3env, bucket):
    s3env.native.put(b"x", tenant=s3env.main.tenant, namespace=bucket, key="native-only")
    with pytest.raises(ClientError) as info:
        s3.delete_bucket(Bucket=bucket)
    assert s3kit.error_code(info.value) == "BucketNotEmpty"


def test_identical_content_through_both_apis_is_stored_once(s3, s3env, bucket):
    size = 9 * MiB + 12345  # several chunks, far above the inline threshold
    body = s3kit.data(size, "dedup across APIs")
    tenant = s3env.main.tenant
    s3env.native.put(body, tenant=tenant, namespace=bucket, key="native copy")
    files_before = s3kit.chunk_files(s3env.data_dir)
    row_before = h.usage_row(s3env.native.usage_json(tenant), bucket, "hot")
    assert row_before["physical_bytes"] >= size

    s3.put_object(Bucket=bucket, Key="s3 copy", Body=body)
    assert s3kit.chunk_files(s3env.data_dir) == files_before, \
        "an S3 PUT of content already stored through the native API wrote new chunk files"
    row_after = h.usage_row(s3env.native.usage_json(tenant), bucket, "hot")
    assert row_after["objects"] == row_before["objects"] + 1
    assert row_after["logical_bytes"] == row_before["logical_bytes"] + size
    assert row_after["physical_bytes"] == row_before["physical_bytes"]

    # and the other way round, in another bucket of the same tenant: no new chunk files
    other = s3kit.unique_bucket("dedup")
    s3.create_bucket(Bucket=other)
    body2 = s3kit.data(size, "dedup the other way")
    s3.put_object(Bucket=other, Key="first via s3", Body=body2)
    files_mid = s3kit.chunk_files(s3env.data_dir)
    s3env.native.put(body2, tenant=tenant, namespace=other, key="then native")
    assert s3kit.chunk_files(s3env.data_dir) == files_mid
    assert s3env.recorded_sha256(other, "then native") == s3kit.sha256_hex(body2)


# ---------------------------------------------------------------------------------------
# A large multipart upload (1 GiB by default; CAIRN_S3_BIG_BYTES shrinks it)
# ---------------------------------------------------------------------------------------
BIG_BYTES = int(os.environ.get("CAIRN_S3_BIG_BYTES", str(1024 * MiB)))
PART_BYTES = 16 * MiB
IN_FLIGHT = 3  # parts generated but not yet uploaded; bounds memory to ~IN_FLIGHT + 1 parts


def part_bytes(number: int, size: int) -> bytes:
    return random.Random(f"big-part-{number}").randbytes(size)


@pytest.fixture(scope="module")
def big_upload(s3env):
    """Uploads BIG_BYTES in PART_BYTES parts from a generator (bounded memory) and
    completes it; returns what the tests check."""
    s3 = s3env.boto(read_timeout=300)
    bucket = s3kit.unique_bucket("big")
    s3.create_bucket(Bucket=bucket)
    key = "big/object.bin"
    upload_id = s3.create_multipart_upload(Bucket=bucket, Key=key)["UploadId"]
    whole = hashlib.sha256()
    part_md5s: dict[int, str] = {}
    etags: dict[int, str] = {}
    slots = threading.BoundedSemaphore(IN_FLIGHT)

    def upload(number: int, body: bytes) -> None:
        try:
            r = s3.upload_part(Bucket=bucket, Key=key, UploadId=upload_id, PartNumber=number,
                               Body=body)
            etags[number] = r["ETag"]
        finally:
            slots.release()

    numbers = range(1, (BIG_BYTES + PART_BYTES - 1) // PART_BYTES + 1)
    with concurrent.futures.ThreadPoolExecutor(IN_FLIGHT) as pool:
        futures = []
        for number in numbers:
            size = min(PART_BYTES, BIG_BYTES - (number - 1) * PART_BYTES)
            body = part_bytes(number, size)
            whole.update(body)
            part_md5s[number] = s3kit.md5_hex(body)
            assert slots.acquire(timeout=300), "part uploads stalled"
            futures.append(pool.submit(upload, number, body))
            del body
        for f in futures:
            f.result(timeout=300)

    parts = [{"PartNumber": n, "ETag": etags[n]} for n in numbers]
    chunk_bytes_before = sum(s3kit.chunk_files(s3env.data_dir).values())
    result = s3.complete_multipart_upload(Bucket=bucket, Key=key, UploadId=upload_id,
                                          MultipartUpload={"Parts": parts})
    chunk_bytes_after = sum(s3kit.chunk_files(s3env.data_dir).values())
    return dict(s3=s3, bucket=bucket, key=key, sha256=whole.hexdigest(), result=result,
                expected_etag=s3kit.multipart_etag(part_md5s[n] for n in numbers),
                parts=len(parts),
                chunk_bytes_before=chunk_bytes_before, chunk_bytes_after=chunk_bytes_after)


@pytest.mark.time_limit(900)
def test_complete_multipart_of_1gib_answers_the_multipart_etag(big_upload):
    """Completing links the parts' chunks (the test below checks that no data is
    copied); its speed is a benchmark figure (docs/performance.md), not asserted here."""
    assert s3kit.unquote_etag(big_upload["result"]["ETag"]) == big_upload["expected_etag"]


@pytest.mark.time_limit(900)
def test_complete_multipart_writes_no_chunk_data(big_upload):
    grew = big_upload["chunk_bytes_after"] - big_upload["chunk_bytes_before"]
    assert grew <= MiB, f"completing the upload wrote {grew} bytes of chunk files"
    assert big_upload["chunk_bytes_after"] <= BIG_BYTES * 1.01 + 64 * MiB, \
        "more chunk bytes on disk than the object's size: parts stored twice?"


@pytest.mark.time_limit(900)
def test_1gib_multipart_content(big_upload, s3env):
    s3, bucket, key = big_upload["s3"], big_upload["bucket"], big_upload["key"]
    head = s3.head_object(Bucket=bucket, Key=key)
    assert head["ContentLength"] == BIG_BYTES
    assert s3kit.unquote_etag(head["ETag"]) == big_upload["expected_etag"]
    assert s3env.recorded_sha256(bucket, key) == big_upload["sha256"]
    digest, size = s3kit.sha256_stream(s3.get_object(Bucket=bucket, Key=key)["Body"])
    assert (digest, size) == (big_upload["sha256"], BIG_BYTES)


@pytest.mark.time_limit(900)
def test_copy_of_large_object_adds_no_physical_bytes(big_upload, s3env):
    s3, bucket, key = big_upload["s3"], big_upload["bucket"], big_upload["key"]
    tenant = s3env.main.tenant
    files_before = s3kit.chunk_files(s3env.data_dir)
    row_before = h.usage_row(s3env.native.usage_json(tenant), bucket, "hot")
    s3.copy_object(Bucket=bucket, Key="big/copy.bin", CopySource={"Bucket": bucket, "Key": key})
    s3.copy_object(Bucket=bucket, Key="big/copy-replaced.bin", MetadataDirective="REPLACE",
                   Metadata={"copy": "2"}, CopySource={"Bucket": bucket, "Key": key})
    assert s3kit.chunk_files(s3env.data_dir) == files_before, \
        "CopyObject wrote chunk files"
    row_after = h.usage_row(s3env.native.usage_json(tenant), bucket, "hot")
    assert row_after["physical_bytes"] == row_before["physical_bytes"]
    assert row_after["logical_bytes"] == row_before["logical_bytes"] + 2 * BIG_BYTES
    for copy in ("big/copy.bin", "big/copy-replaced.bin"):
        assert s3.head_object(Bucket=bucket, Key=copy)["ContentLength"] == BIG_BYTES
        assert s3env.recorded_sha256(bucket, copy) == big_upload["sha256"]
