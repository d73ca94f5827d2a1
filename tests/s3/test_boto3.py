"""Every S3 operation of the contract through Debian's python3-boto3 (run under
/usr/bin/python3): buckets, objects, ranges, conditional GET/HEAD/PUT, user metadata,
CopyObject directives, DeleteObjects, ListObjects/ListObjectsV2 against a model (keys with
spaces, unicode, '+', '%' and control characters; encoding-type=url), multipart upload
(incl. UploadPartCopy with ranges), tagging, presigned GET/PUT and virtual-hosted-style
addressing. Errors must be ClientErrors with S3's code. Contents are checked by SHA-256."""
from __future__ import annotations

import contextlib
import datetime as dt
import hashlib

import pytest

boto3 = pytest.importorskip("boto3", reason="python3-boto3 is not installed")
from botocore.exceptions import ClientError  # noqa: E402

import s3kit  # noqa: E402
import s3model  # noqa: E402
from s3kit import KiB, MiB, h  # noqa: E402


def expect_error(code: str, fn, *args, status: int = 0, **kwargs) -> ClientError:
    with pytest.raises(ClientError) as info:
        fn(*args, **kwargs)
    got = s3kit.error_code(info.value)
    assert got == code, f"expected {code}, got {got}: {info.value.response}"
    if status:
        assert s3kit.http_status(info.value) == status, info.value.response
    return info.value


@contextlib.contextmanager
def extra_headers(client, operation: str, headers: dict):
    """Adds headers to one operation's requests before they are signed."""
    def add(request, **_):
        for name, value in headers.items():
            request.headers[name] = value
    event = f"before-sign.s3.{operation}"
    client.meta.events.register(event, add)
    try:
        yield
    finally:
        client.meta.events.unregister(event, add)


def put(s3, bucket, key, body: bytes, **kwargs) -> dict:
    r = s3.put_object(Bucket=bucket, Key=key, Body=body, **kwargs)
    assert s3kit.unquote_etag(r["ETag"]) == s3kit.md5_hex(body), \
        f"ETag of a single PUT must be the MD5 of the content: {r['ETag']}"
    return r


def get_bytes(s3, bucket, key, **kwargs) -> bytes:
    return s3.get_object(Bucket=bucket, Key=key, **kwargs)["Body"].read()


# ---------------------------------------------------------------------------------------
# Buckets
# ---------------------------------------------------------------------------------------
def test_bucket_lifecycle(s3):
    name = s3kit.unique_bucket("life")
    s3.create_bucket(Bucket=name)
    assert name in [b["Name"] for b in s3.list_buckets()["Buckets"]]
    s3.head_bucket(Bucket=name)
    # us-east-1 answers a repeated CreateBucket of one's own bucket with 200 and changes
    # nothing (other regions: 409 BucketAlreadyOwnedByYou).
    assert s3.create_bucket(Bucket=name)["ResponseMetadata"]["HTTPStatusCode"] == 200

    s3.put_object(Bucket=name, Key="x", Body=b"x")
    expect_error("BucketNotEmpty", s3.delete_bucket, Bucket=name, status=409)
    s3.delete_object(Bucket=name, Key="x")
    r = s3.delete_bucket(Bucket=name)
    assert r["ResponseMetadata"]["HTTPStatusCode"] == 204
    expect_error("404", s3.head_bucket, Bucket=name)
    assert name not in [b["Name"] for b in s3.list_buckets()["Buckets"]]
    expect_error("NoSuchBucket", s3.delete_bucket, Bucket=name, status=404)


def test_list_buckets_has_owner_and_dates(s3, bucket):
    r = s3.list_buckets()
    entry = next(b for b in r["Buckets"] if b["Name"] == bucket)
    assert isinstance(entry["CreationDate"], dt.datetime)
    assert abs((s3kit.utc_now() - entry["CreationDate"]).total_seconds()) < 600
    assert "Owner" in r


@pytest.mark.parametrize("name", ["Upper-Case", "ab", "under_score", "-leading-dash",
                                  "a" * 64, "double..dot", "192.168.1.1"])
def test_create_bucket_rejects_invalid_names(s3, name):
    expect_error("InvalidBucketName", s3.create_bucket, Bucket=name, status=400)


def test_get_bucket_location(s3, bucket):
    r = s3.get_bucket_location(Bucket=bucket)
    assert r.get("LocationConstraint") in (None, "", "us-east-1"), r
    expect_error("NoSuchBucket", s3.get_bucket_location, Bucket=s3kit.unique_bucket("none"))


def test_missing_bucket_errors(s3):
    missing = s3kit.unique_bucket("none")
    expect_error("404", s3.head_bucket, Bucket=missing)
    expect_error("NoSuchBucket", s3.get_object, Bucket=missing, Key="k", status=404)
    expect_error("NoSuchBucket", s3.put_object, Bucket=missing, Key="k", Body=b"1", status=404)
    expect_error("NoSuchBucket", s3.list_objects_v2, Bucket=missing, status=404)
    expect_error("NoSuchBucket", s3.list_objects, Bucket=missing, status=404)
    expect_error("NoSuchBucket", s3.delete_object, Bucket=missing, Key="k", status=404)
    expect_error("NoSuchBucket", s3.get_object_tagging, Bucket=missing, Key="k", status=404)
    expect_error("NoSuchBucket", s3.put_object_tagging, Bucket=missing, Key="k", status=404,
                 Tagging={"TagSet": [{"Key": "a", "Value": "b"}]})
    expect_error("NoSuchBucket", s3.copy_object, Bucket=missing, Key="k",
                 CopySource={"Bucket": missing, "Key": "k"}, status=404)
    expect_error("NoSuchBucket", s3.create_multipart_upload, Bucket=missing, Key="k")
    expect_error("NoSuchBucket", s3.list_multipart_uploads, Bucket=missing)


# ---------------------------------------------------------------------------------------
# Objects
# ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("size", [0, 1, 32 * KiB - 1, 32 * KiB + 1, 4 * MiB + 1, 9 * MiB])
def test_put_get_head_sizes(s3, s3env, bucket, size):
    body = s3kit.data(size, f"size-{size}")
    put(s3, bucket, "obj", body, ContentType="application/x-cairn-test")
    got = s3.get_object(Bucket=bucket, Key="obj")
    assert s3kit.sha256_hex(got["Body"].read()) == s3kit.sha256_hex(body)
    assert got["ContentLength"] == size
    assert got["ContentType"] == "application/x-cairn-test"
    assert s3kit.unquote_etag(got["ETag"]) == s3kit.md5_hex(body)
    head = s3.head_object(Bucket=bucket, Key="obj")
    assert head["ContentLength"] == size
    assert s3kit.unquote_etag(head["ETag"]) == s3kit.md5_hex(body)
    assert abs((s3kit.utc_now() - head["LastModified"]).total_seconds()) < 600
    assert s3env.recorded_sha256(bucket, "obj") == s3kit.sha256_hex(body)


def test_overwrite_replaces_content_and_metadata(s3, bucket):
    put(s3, bucket, "k", b"first", Metadata={"v": "1"})
    put(s3, bucket, "k", b"second version", Metadata={"w": "2"})
    got = s3.get_object(Bucket=bucket, Key="k")
    assert got["Body"].read() == b"second version"
    assert got["Metadata"] == {"w": "2"}


def test_missing_key_errors(s3, bucket):
    expect_error("NoSuchKey", s3.get_object, Bucket=bucket, Key="nope", status=404)
    expect_error("404", s3.head_object, Bucket=bucket, Key="nope")


def test_delete_object_is_idempotent(s3, s3env, bucket):
    put(s3, bucket, "d", b"bye")
    assert s3.delete_object(Bucket=bucket, Key="d")["ResponseMetadata"]["HTTPStatusCode"] == 204
    expect_error("NoSuchKey", s3.get_object, Bucket=bucket, Key="d")
    assert s3env.native_head(bucket, "d") is None
    # S3 answers 204 for a key that does not exist (clients rely on it)
    assert s3.delete_object(Bucket=bucket, Key="d")["ResponseMetadata"]["HTTPStatusCode"] == 204


def test_user_metadata_round_trip(s3, bucket):
    meta = {"colour": "blue", "Mixed-Case": "Value With Spaces", "empty": "",
            "symbols": "a=b;c,d/e:f", "long": "x" * 1000}
    put(s3, bucket, "m", b"meta", Metadata=meta)
    expected = {k.lower(): v for k, v in meta.items()}
    assert s3.head_object(Bucket=bucket, Key="m")["Metadata"] == expected
    assert s3.get_object(Bucket=bucket, Key="m")["Metadata"] == expected


SPECIAL_KEYS = [
    "plain", "with space", "trailing space ", "  leading", "a+b", "100%", "%41%2F%zz",
    "uni/日本語/ключ/é", "emoji/😀", "ctrl\x01\x1f\x7f", "tab\there", "new\nline",
    "cr\rkey", "x?y#z&w=v", "semi;colon,comma", "quote\"'", "back\\slash", "tilde~star*",
    "dir/", "dir//double", "/leading-slash", "dots/./and/../x", "a" * 1024,
]


@pytest.mark.parametrize("key", SPECIAL_KEYS, ids=lambda k: repr(k)[:40])
def test_special_key_round_trip(s3, s3env, bucket, key):
    body = s3kit.data(1000, key)
    put(s3, bucket, key, body)
    assert get_bytes(s3, bucket, key) == body
    assert s3.head_object(Bucket=bucket, Key=key)["ContentLength"] == 1000
    assert s3env.native_sha256(bucket, key) == s3kit.sha256_hex(body)
    listed = s3.list_objects_v2(Bucket=bucket)
    assert [o["Key"] for o in listed.get("Contents", [])] == [key]
    s3.delete_object(Bucket=bucket, Key=key)
    expect_error("NoSuchKey", s3.get_object, Bucket=bucket, Key=key)


def test_key_longer_than_1024_bytes_is_rejected(s3, bucket):
    expect_error("KeyTooLongError", s3.put_object, Bucket=bucket, Key="é" * 513, Body=b"x",
                 status=400)


# ---------------------------------------------------------------------------------------
# Ranges and conditional requests
# ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("spec,start,end", [
    ("bytes=0-9", 0, 9), ("bytes=990-", 990, 999), ("bytes=-7", 993, 999),
    ("bytes=500-500", 500, 500), ("bytes=900-5000", 900, 999), ("bytes=0-", 0, 999),
    ("bytes=-5000", 0, 999),
])
def test_range_get(s3, bucket, spec, start, end):
    body = s3kit.data(1000, "range")
    put(s3, bucket, "r", body)
    got = s3.get_object(Bucket=bucket, Key="r", Range=spec)
    assert got["ResponseMetadata"]["HTTPStatusCode"] == 206
    assert got["ContentRange"] == f"bytes {start}-{end}/1000"
    assert got["ContentLength"] == end - start + 1
    assert got["Body"].read() == body[start:end + 1]


@pytest.mark.parametrize("spec", ["bytes=1000-", "bytes=5000-6000"])
def test_unsatisfiable_range(s3, bucket, spec):
    put(s3, bucket, "r", s3kit.data(1000, "range"))
    expect_error("InvalidRange", s3.get_object, Bucket=bucket, Key="r", Range=spec,
                 status=416)


def test_range_on_empty_object_is_invalid(s3, bucket):
    put(s3, bucket, "empty", b"")
    expect_error("InvalidRange", s3.get_object, Bucket=bucket, Key="empty", Range="bytes=0-0",
                 status=416)


def test_range_across_chunk_boundaries(s3, bucket):
    body = s3kit.data(9 * MiB, "chunk-range")
    put(s3, bucket, "big", body)
    for start, end in [(4 * MiB - 5, 4 * MiB + 5), (MiB, 8 * MiB + 3), (8 * MiB, 9 * MiB - 1)]:
        got = get_bytes(s3, bucket, "big", Range=f"bytes={start}-{end}")
        assert s3kit.sha256_hex(got) == s3kit.sha256_hex(body[start:end + 1]), (start, end)


@pytest.fixture
def conditional_object(s3, bucket):
    put(s3, bucket, "c", b"conditional body")
    head = s3.head_object(Bucket=bucket, Key="c")
    return bucket, head["ETag"], head["LastModified"]


def test_conditional_get(s3, conditional_object):
    bucket, etag, modified = conditional_object
    hour = dt.timedelta(hours=1)
    ok = [dict(IfMatch=etag), dict(IfNoneMatch='"0123456789abcdef0123456789abcdef"'),
          dict(IfModifiedSince=modified - hour), dict(IfUnmodifiedSince=modified + hour),
          dict(IfUnmodifiedSince=modified),
          # S3: If-Match true wins over If-Unmodified-Since false
          dict(IfMatch=etag, IfUnmodifiedSince=modified - hour)]
    for conditions in ok:
        got = s3.get_object(Bucket=bucket, Key="c", **conditions)
        assert got["Body"].read() == b"conditional body", conditions
    not_modified = [dict(IfNoneMatch=etag), dict(IfModifiedSince=modified + hour),
                    dict(IfModifiedSince=modified),  # compared at one-second resolution
                    # S3: If-None-Match false wins over If-Modified-Since true
                    dict(IfNoneMatch=etag, IfModifiedSince=modified - hour)]
    for conditions in not_modified:
        with pytest.raises(ClientError) as info:
            s3.get_object(Bucket=bucket, Key="c", **conditions)
        assert s3kit.http_status(info.value) == 304, (conditions, info.value.response)
    failed = [dict(IfMatch='"0123456789abcdef0123456789abcdef"'),
              dict(IfUnmodifiedSince=modified - hour)]
    for conditions in failed:
        err = expect_error("PreconditionFailed", s3.get_object, Bucket=bucket, Key="c",
                           **conditions)
        assert s3kit.http_status(err) == 412, conditions


def test_conditional_head(s3, conditional_object):
    bucket, etag, modified = conditional_object
    assert s3.head_object(Bucket=bucket, Key="c", IfMatch=etag)["ETag"] == etag
    with pytest.raises(ClientError) as info:
        s3.head_object(Bucket=bucket, Key="c", IfNoneMatch=etag)
    assert s3kit.http_status(info.value) == 304
    with pytest.raises(ClientError) as info:
        s3.head_object(Bucket=bucket, Key="c", IfMatch='"ffffffffffffffffffffffffffffffff"')
    assert s3kit.http_status(info.value) == 412


def test_conditional_put_if_none_match(s3, bucket):
    """PutObject with If-None-Match: * creates a key only if it does not exist (412
    PreconditionFailed otherwise). Cairn supports it: a 501 NotImplemented is a failure
    (it used to skip this test, hiding the regression)."""
    with extra_headers(s3, "PutObject", {"If-None-Match": "*"}):
        try:
            s3.put_object(Bucket=bucket, Key="once", Body=b"first")
        except ClientError as e:
            if s3kit.http_status(e) == 501:
                pytest.fail("conditional PUT (If-None-Match: *) answered 501 NotImplemented")
            raise
        err = expect_error("PreconditionFailed", s3.put_object, Bucket=bucket, Key="once",
                           Body=b"second")
        assert s3kit.http_status(err) == 412
    assert get_bytes(s3, bucket, "once") == b"first"


def test_put_with_content_md5(s3, s3env, bucket):
    import base64
    body = b"verified by md5"
    good = base64.b64encode(hashlib.md5(body).digest()).decode()
    put(s3, bucket, "md5-ok", body, ContentMD5=good)
    bad = base64.b64encode(hashlib.md5(b"other").digest()).decode()
    expect_error("BadDigest", s3.put_object, Bucket=bucket, Key="md5-bad", Body=body,
                 ContentMD5=bad, status=400)
    assert s3env.native_head(bucket, "md5-bad") is None


@pytest.mark.parametrize("algorithm", ["CRC32", "SHA256"])
def test_put_with_checksum_header(s3, bucket, algorithm):
    """boto3 sends x-amz-checksum-<alg> as a header over plain HTTP."""
    body = s3kit.data(100_000, algorithm)
    put(s3, bucket, "sum", body, ChecksumAlgorithm=algorithm)
    assert s3kit.sha256_hex(get_bytes(s3, bucket, "sum")) == s3kit.sha256_hex(body)


def test_put_with_wrong_checksum_header_is_bad_digest(s3, s3env, bucket):
    body = s3kit.data(10_000, "wrong-crc")
    expect_error("BadDigest", s3.put_object, Bucket=bucket, Key="bad-crc", Body=body,
                 ChecksumCRC32=s3kit.crc32_b64(b"not the body"), status=400)
    assert s3env.native_head(bucket, "bad-crc") is None


# ---------------------------------------------------------------------------------------
# CopyObject
# ---------------------------------------------------------------------------------------
def test_copy_object_metadata_directives(s3, s3env, bucket):
    body = s3kit.data(50_000, "copy")
    src_key = "src dir/ü+%.bin"
    put(s3, bucket, src_key, body, Metadata={"a": "1"}, ContentType="text/x-src")
    other = s3kit.unique_bucket("copy")
    s3.create_bucket(Bucket=other)
    source = {"Bucket": bucket, "Key": src_key}

    r = s3.copy_object(Bucket=other, Key="copied", CopySource=source)
    assert s3kit.unquote_etag(r["CopyObjectResult"]["ETag"]) == s3kit.md5_hex(body)
    head = s3.head_object(Bucket=other, Key="copied")
    assert head["Metadata"] == {"a": "1"} and head["ContentType"] == "text/x-src"

    s3.copy_object(Bucket=bucket, Key="replaced", CopySource=source, MetadataDirective="REPLACE",
                   Metadata={"b": "2"}, ContentType="text/x-new")
    head = s3.head_object(Bucket=bucket, Key="replaced")
    assert head["Metadata"] == {"b": "2"} and head["ContentType"] == "text/x-new"

    for b, k in ((other, "copied"), (bucket, "replaced")):
        assert s3kit.sha256_hex(get_bytes(s3, b, k)) == s3kit.sha256_hex(body)
        assert s3env.recorded_sha256(b, k) == s3kit.sha256_hex(body)
    # the source is untouched
    assert s3.head_object(Bucket=bucket, Key=src_key)["Metadata"] == {"a": "1"}


def test_copy_onto_itself_needs_replace(s3, bucket):
    body = b"in place"
    put(s3, bucket, "self", body, Metadata={"old": "1"})
    source = {"Bucket": bucket, "Key": "self"}
    expect_error("InvalidRequest", s3.copy_object, Bucket=bucket, Key="self", CopySource=source,
                 status=400)
    s3.copy_object(Bucket=bucket, Key="self", CopySource=source, MetadataDirective="REPLACE",
                   Metadata={"new": "2"})
    got = s3.get_object(Bucket=bucket, Key="self")
    assert got["Body"].read() == body and got["Metadata"] == {"new": "2"}


def test_copy_missing_source(s3, bucket):
    expect_error("NoSuchKey", s3.copy_object, Bucket=bucket, Key="dst",
                 CopySource={"Bucket": bucket, "Key": "absent"}, status=404)
    expect_error("NoSuchBucket", s3.copy_object, Bucket=bucket, Key="dst",
                 CopySource={"Bucket": s3kit.unique_bucket("none"), "Key": "absent"},
                 status=404)


# ---------------------------------------------------------------------------------------
# DeleteObjects
# ---------------------------------------------------------------------------------------
def test_delete_objects_verbose_and_quiet(s3, bucket):
    keys = [f"del/{i}" for i in range(6)] + ["del/with space", "del/ü+%"]
    for k in keys:
        put(s3, bucket, k, k.encode())
    r = s3.delete_objects(Bucket=bucket, Delete={
        "Objects": [{"Key": k} for k in keys[:4]] + [{"Key": "del/never"}], "Quiet": False})
    assert sorted(d["Key"] for d in r["Deleted"]) == sorted(keys[:4] + ["del/never"])
    assert not r.get("Errors")

    r = s3.delete_objects(Bucket=bucket, Delete={
        "Objects": [{"Key": k} for k in keys[4:]], "Quiet": True})
    assert not r.get("Deleted"), f"quiet mode must not list deleted keys: {r.get('Deleted')}"
    assert not r.get("Errors")
    assert s3.list_objects_v2(Bucket=bucket, Prefix="del/")["KeyCount"] == 0


def test_delete_objects_errors(s3, bucket):
    expect_error("NoSuchBucket", s3.delete_objects, Bucket=s3kit.unique_bucket("none"),
                 Delete={"Objects": [{"Key": "a"}]}, status=404)
    expect_error("MalformedXML", s3.delete_objects, Bucket=bucket,
                 Delete={"Objects": [{"Key": f"k{i}"} for i in range(1001)]}, status=400)

    put(s3, bucket, "keep-a", b"a")
    put(s3, bucket, "keep-b", b"b")
    too_long = "x" * 1100  # cannot exist: keys are at most 1024 bytes
    reported_as_error = None
    for quiet in (False, True):
        put(s3, bucket, "victim", b"v")
        try:
            r = s3.delete_objects(Bucket=bucket, Delete={
                "Objects": [{"Key": "victim"}, {"Key": too_long}], "Quiet": quiet})
        except ClientError as e:
            # rejecting the whole request is acceptable if it then deletes nothing
            assert s3kit.http_status(e) == 400, e.response
            assert s3kit.error_code(e) in ("KeyTooLongError", "InvalidArgument",
                                           "MalformedXML"), e.response
            assert get_bytes(s3, bucket, "victim") == b"v"
            s3.delete_object(Bucket=bucket, Key="victim")
            continue
        errors = {e["Key"]: e for e in r.get("Errors", [])}
        deleted = [d["Key"] for d in r.get("Deleted", [])]
        for e in errors.values():
            assert e.get("Code") and "Message" in e, e
        assert "victim" not in errors, r
        if quiet:
            assert not deleted, f"quiet mode listed deleted keys: {deleted}"
            if reported_as_error:  # errors are reported in quiet mode too
                assert too_long in errors, r
        else:
            assert "victim" in deleted, r
            assert (too_long in errors) != (too_long in deleted), r
            reported_as_error = too_long in errors
        expect_error("404", s3.head_object, Bucket=bucket, Key="victim")
    assert [o["Key"] for o in s3.list_objects_v2(Bucket=bucket)["Contents"]] == \
        ["keep-a", "keep-b"]


# ---------------------------------------------------------------------------------------
# Listing (against the model in s3model.py)
# ---------------------------------------------------------------------------------------
LIST_KEYS = sorted(set(
    [f"d/sub{i}/f{j}" for i in range(3) for j in range(3)] +
    [f"d/file{i}" for i in range(4)] +
    ["d/sub1/deep/x", "d/", "d//dbl", "top", "sp ace/a", "sp ace/b c", "sp+plus/1",
     "pct%25/raw", "pct%/2", "uni/é/1", "uni/日本/2", "uni/😀", "ctl/\x01a", "ctl/\x1fb",
     "ctl/\x7fc", "ctl/tab\tx", "ctl/nl\ny", "ctl/cr\rz", "z-last", "a-b-c", "a-b/d",
     "a+b+c", "a%b%c"]), key=s3model.utf8_key)

LIST_COMBOS = [
    dict(), dict(max_keys=1), dict(max_keys=4), dict(delimiter="/"),
    dict(delimiter="/", max_keys=1), dict(delimiter="/", max_keys=3),
    dict(prefix="d/"), dict(prefix="d/", delimiter="/"),
    dict(prefix="d/", delimiter="/", max_keys=2),
    dict(prefix="d/sub", delimiter="/"), dict(prefix="d/sub1/", delimiter="/", max_keys=1),
    dict(prefix="sp ace/", delimiter=" "), dict(prefix="uni/", delimiter="/", max_keys=2),
    dict(prefix="ctl/", max_keys=2), dict(prefix="ctl/", delimiter="\x1f"),
    dict(delimiter="-"), dict(delimiter="+", max_keys=1), dict(delimiter="%"),
    dict(delimiter="b/"), dict(delimiter="ü"), dict(prefix="nothing-here", delimiter="/"),
    dict(start_after="d/sub1/f0"), dict(start_after="d/sub1/f0", delimiter="/"),
    dict(start_after="d/sub1/f0", prefix="d/", delimiter="/", max_keys=2),
    dict(start_after="uni/é"), dict(start_after="zzz"), dict(start_after="ctl/\x1fb", max_keys=3),
    dict(prefix="d/", start_after="a"), dict(prefix="pct%", delimiter="/"),
]


@pytest.fixture(scope="module")
def list_bucket(s3):
    name = s3kit.unique_bucket("list")
    s3.create_bucket(Bucket=name)
    for key in LIST_KEYS:
        s3.put_object(Bucket=name, Key=key, Body=key.encode())
    return name


@pytest.mark.parametrize("explicit_url", [False, True], ids=["auto-url", "explicit-url"])
@pytest.mark.parametrize("combo", LIST_COMBOS, ids=lambda c: repr(c)[:60])
def test_list_objects_v2_against_model(s3, list_bucket, combo, explicit_url):
    args = dict(prefix="", delimiter="", start_after="", max_keys=1000)
    args.update(combo)
    expected = s3model.list_entries(LIST_KEYS, prefix=args["prefix"],
                                    delimiter=args["delimiter"], start_after=args["start_after"])
    got = s3model.fetch_v2_pages(s3, list_bucket, explicit_url=explicit_url,
                                 max_pages=len(LIST_KEYS) + 3, **args)
    s3model.compare_pages(got, expected, args["max_keys"], f"ListObjectsV2 {combo}")


@pytest.mark.parametrize("combo", [dict(), dict(max_keys=3), dict(prefix="d/", max_keys=2),
                                   dict(delimiter="/"), dict(prefix="d/", delimiter="/"),
                                   dict(marker="d/sub1/f0"), dict(marker="ctl/", max_keys=2)],
                         ids=lambda c: repr(c)[:60])
def test_list_objects_v1_against_model(s3, list_bucket, combo):
    args = dict(prefix="", delimiter="", marker="", max_keys=1000)
    args.update(combo)
    expected = s3model.list_entries(LIST_KEYS, prefix=args["prefix"],
                                    delimiter=args["delimiter"], start_after=args["marker"])
    got = s3model.fetch_v1_pages(s3, list_bucket, max_pages=len(LIST_KEYS) + 3, **args)
    s3model.compare_pages(got, expected, args["max_keys"], f"ListObjects {combo}")


def test_list_objects_v2_entry_fields(s3, bucket):
    body = s3kit.data(1234, "fields")
    put(s3, bucket, "f", body)
    r = s3.list_objects_v2(Bucket=bucket)
    assert r["Name"] == bucket and r["KeyCount"] == 1 and r["IsTruncated"] is False
    entry = r["Contents"][0]
    assert entry["Key"] == "f" and entry["Size"] == 1234
    assert s3kit.unquote_etag(entry["ETag"]) == s3kit.md5_hex(body)
    assert abs((s3kit.utc_now() - entry["LastModified"]).total_seconds()) < 600


def test_list_objects_v2_url_encoding_forms(s3, bucket):
    keys = ["a b", "a+b", "a%b", "ctl\x01", "é"]
    for k in keys:
        put(s3, bucket, k, b"1")
    r = s3.list_objects_v2(Bucket=bucket, EncodingType="url")
    encoded = {s3model.s3_url_decode(o["Key"]): o["Key"] for o in r["Contents"]}
    assert sorted(encoded) == sorted(keys)
    assert encoded["a b"] in ("a+b", "a%20b")
    assert encoded["a+b"] == "a%2Bb"
    assert encoded["a%b"] == "a%25b"
    assert encoded["ctl\x01"] == "ctl%01"
    assert encoded["é"] == "%C3%A9"


def test_list_objects_v2_max_keys_capped_at_1000(s3, bucket):
    r = s3.list_objects_v2(Bucket=bucket, MaxKeys=5000)
    assert r["MaxKeys"] in (1000, 5000) and r["KeyCount"] == 0


# ---------------------------------------------------------------------------------------
# Multipart upload
# ---------------------------------------------------------------------------------------
def upload_parts(s3, bucket, key, upload_id, parts: list[bytes], first: int = 1) -> list[dict]:
    out = []
    for number, body in enumerate(parts, start=first):
        r = s3.upload_part(Bucket=bucket, Key=key, UploadId=upload_id, PartNumber=number,
                           Body=body)
        assert s3kit.unquote_etag(r["ETag"]) == s3kit.md5_hex(body), "part ETag is its MD5"
        out.append({"PartNumber": number, "ETag": r["ETag"]})
    return out


def test_multipart_upload(s3, s3env, bucket):
    key = "mp/ü file+%.bin"
    parts = [s3kit.data(5 * MiB, "p1"), s3kit.data(5 * MiB, "p2"), s3kit.data(MiB + 1, "p3")]
    created = s3.create_multipart_upload(Bucket=bucket, Key=key, Metadata={"kind": "multi"},
                                         ContentType="application/x-multi")
    upload_id = created["UploadId"]
    assert upload_id and created["Key"] == key and created["Bucket"] == bucket

    s3.upload_part(Bucket=bucket, Key=key, UploadId=upload_id, PartNumber=2,
                   Body=s3kit.data(5 * MiB, "replaced later"))
    done = upload_parts(s3, bucket, key, upload_id, parts)  # part 2 uploaded again: last wins

    listed = s3.list_parts(Bucket=bucket, Key=key, UploadId=upload_id)
    assert [(p["PartNumber"], p["Size"], p["ETag"]) for p in listed["Parts"]] == \
        [(d["PartNumber"], len(b), d["ETag"]) for d, b in zip(done, parts)]
    uploads = s3.list_multipart_uploads(Bucket=bucket)
    assert [(u["Key"], u["UploadId"]) for u in uploads.get("Uploads", [])] == [(key, upload_id)]
    expect_error("NoSuchKey", s3.get_object, Bucket=bucket, Key=key)  # not visible yet

    r = s3.complete_multipart_upload(Bucket=bucket, Key=key, UploadId=upload_id,
                                     MultipartUpload={"Parts": done})
    expected_etag = s3kit.multipart_etag(s3kit.md5_hex(b) for b in parts)
    assert s3kit.unquote_etag(r["ETag"]) == expected_etag
    whole = b"".join(parts)
    got = s3.get_object(Bucket=bucket, Key=key)
    assert s3kit.sha256_hex(got["Body"].read()) == s3kit.sha256_hex(whole)
    assert s3kit.unquote_etag(got["ETag"]) == expected_etag
    assert got["Metadata"] == {"kind": "multi"}
    assert got["ContentType"] == "application/x-multi"
    assert got["ContentLength"] == len(whole)
    assert s3env.recorded_sha256(bucket, key) == s3kit.sha256_hex(whole)
    assert not s3.list_multipart_uploads(Bucket=bucket).get("Uploads")
    expect_error("NoSuchUpload", s3.list_parts, Bucket=bucket, Key=key, UploadId=upload_id,
                 status=404)
    # A retried Complete (its first answer lost) gets the first answer; another part list
    # is not that completion.
    again = s3.complete_multipart_upload(Bucket=bucket, Key=key, UploadId=upload_id,
                                         MultipartUpload={"Parts": done})
    assert s3kit.unquote_etag(again["ETag"]) == expected_etag
    expect_error("NoSuchUpload", s3.complete_multipart_upload, Bucket=bucket, Key=key,
                 UploadId=upload_id, MultipartUpload={"Parts": done[:1]}, status=404)


def test_multipart_single_small_part(s3, bucket):
    """The last (here: only) part may be smaller than 5 MiB."""
    up = s3.create_multipart_upload(Bucket=bucket, Key="one")["UploadId"]
    done = upload_parts(s3, bucket, "one", up, [b"tiny"])
    s3.complete_multipart_upload(Bucket=bucket, Key="one", UploadId=up,
                                 MultipartUpload={"Parts": done})
    assert get_bytes(s3, bucket, "one") == b"tiny"


def test_multipart_abort(s3, bucket):
    up = s3.create_multipart_upload(Bucket=bucket, Key="ab")["UploadId"]
    upload_parts(s3, bucket, "ab", up, [s3kit.data(MiB, "ab")])
    r = s3.abort_multipart_upload(Bucket=bucket, Key="ab", UploadId=up)
    assert r["ResponseMetadata"]["HTTPStatusCode"] == 204
    expect_error("NoSuchUpload", s3.list_parts, Bucket=bucket, Key="ab", UploadId=up)
    expect_error("NoSuchUpload", s3.upload_part, Bucket=bucket, Key="ab", UploadId=up,
                 PartNumber=2, Body=b"x")
    assert not s3.list_multipart_uploads(Bucket=bucket).get("Uploads")
    expect_error("NoSuchKey", s3.get_object, Bucket=bucket, Key="ab")
    expect_error("NoSuchUpload", s3.abort_multipart_upload, Bucket=bucket, Key="ab",
                 UploadId=up, status=404)


def test_multipart_complete_errors(s3, bucket):
    key = "bad"
    up = s3.create_multipart_upload(Bucket=bucket, Key=key)["UploadId"]
    done = upload_parts(s3, bucket, key, up, [s3kit.data(5 * MiB, "e1"),
                                              s3kit.data(5 * MiB, "e2")])
    wrong_etag = [done[0], {"PartNumber": 2, "ETag": '"00000000000000000000000000000000"'}]
    expect_error("InvalidPart", s3.complete_multipart_upload, Bucket=bucket, Key=key,
                 UploadId=up, MultipartUpload={"Parts": wrong_etag}, status=400)
    missing = done + [{"PartNumber": 7, "ETag": done[0]["ETag"]}]
    expect_error("InvalidPart", s3.complete_multipart_upload, Bucket=bucket, Key=key,
                 UploadId=up, MultipartUpload={"Parts": missing}, status=400)
    expect_error("InvalidPartOrder", s3.complete_multipart_upload, Bucket=bucket, Key=key,
                 UploadId=up, MultipartUpload={"Parts": list(reversed(done))}, status=400)
    expect_error("NoSuchUpload", s3.upload_part, Bucket=bucket, Key=key,
                 UploadId="no-such-upload-id", PartNumber=1, Body=b"x", status=404)
    expect_error("NoSuchKey", s3.get_object, Bucket=bucket, Key=key)
    # after all those failures the upload still completes
    s3.complete_multipart_upload(Bucket=bucket, Key=key, UploadId=up,
                                 MultipartUpload={"Parts": done})
    assert s3.head_object(Bucket=bucket, Key=key)["ContentLength"] == 10 * MiB


def test_multipart_part_too_small(s3, bucket):
    up = s3.create_multipart_upload(Bucket=bucket, Key="small")["UploadId"]
    done = upload_parts(s3, bucket, "small", up, [s3kit.data(MiB, "s1"), s3kit.data(MiB, "s2")])
    expect_error("EntityTooSmall", s3.complete_multipart_upload, Bucket=bucket, Key="small",
                 UploadId=up, MultipartUpload={"Parts": done}, status=400)
    s3.abort_multipart_upload(Bucket=bucket, Key="small", UploadId=up)


def test_list_multipart_uploads_with_prefix(s3, bucket):
    ids = {}
    for key in ("a/1", "a/2", "b/1"):
        ids[key] = s3.create_multipart_upload(Bucket=bucket, Key=key)["UploadId"]
    listed = s3.list_multipart_uploads(Bucket=bucket, Prefix="a/")
    assert sorted((u["Key"], u["UploadId"]) for u in listed["Uploads"]) == \
        sorted((k, v) for k, v in ids.items() if k.startswith("a/"))
    for key, up in ids.items():
        s3.abort_multipart_upload(Bucket=bucket, Key=key, UploadId=up)
    assert not s3.list_multipart_uploads(Bucket=bucket).get("Uploads")


def test_upload_part_copy_with_ranges(s3, s3env, bucket):
    source = s3kit.data(12 * MiB + 5, "upc-source")
    put(s3, bucket, "src", source)
    other = s3kit.unique_bucket("upc")
    s3.create_bucket(Bucket=other)
    put(s3, other, "small src", s3kit.data(6 * MiB, "upc-small"))
    up = s3.create_multipart_upload(Bucket=bucket, Key="assembled")["UploadId"]
    pieces, parts = [], []

    def copy(number, src_bucket, src_key, rng, expected: bytes):
        kwargs = {"CopySourceRange": rng} if rng else {}
        r = s3.upload_part_copy(Bucket=bucket, Key="assembled", UploadId=up,
                                PartNumber=number,
                                CopySource={"Bucket": src_bucket, "Key": src_key}, **kwargs)
        parts.append({"PartNumber": number, "ETag": r["CopyPartResult"]["ETag"]})
        pieces.append(expected)

    copy(1, bucket, "src", "bytes=0-5242879", source[:5 * MiB])
    fresh = s3kit.data(5 * MiB, "upc-fresh")
    parts += upload_parts(s3, bucket, "assembled", up, [fresh], first=2)
    pieces.append(fresh)
    copy(3, bucket, "src", f"bytes={7 * MiB}-{12 * MiB + 4}", source[7 * MiB:])
    copy(4, other, "small src", None, s3kit.data(6 * MiB, "upc-small"))  # whole object
    copy(5, bucket, "src", "bytes=100-199", source[100:200])  # last part may be small

    with pytest.raises(ClientError) as info:  # a range beyond the source
        s3.upload_part_copy(Bucket=bucket, Key="assembled", UploadId=up, PartNumber=6,
                            CopySource={"Bucket": bucket, "Key": "src"},
                            CopySourceRange=f"bytes={12 * MiB + 5}-{13 * MiB}")
    assert s3kit.error_code(info.value) in ("InvalidRange", "InvalidArgument"), \
        info.value.response

    r = s3.complete_multipart_upload(Bucket=bucket, Key="assembled", UploadId=up,
                                     MultipartUpload={"Parts": parts})
    whole = b"".join(pieces)
    assert s3kit.unquote_etag(r["ETag"]) == \
        s3kit.multipart_etag(s3kit.unquote_etag(p["ETag"]) for p in parts)
    got = s3.get_object(Bucket=bucket, Key="assembled")
    assert got["ContentLength"] == len(whole)
    assert s3kit.sha256_hex(got["Body"].read()) == s3kit.sha256_hex(whole)
    assert s3env.recorded_sha256(bucket, "assembled") == s3kit.sha256_hex(whole)


def test_upload_part_copy_etag_is_md5_of_range(s3, bucket):
    source = s3kit.data(6 * MiB, "upc-md5")
    put(s3, bucket, "src", source)
    up = s3.create_multipart_upload(Bucket=bucket, Key="x")["UploadId"]
    r = s3.upload_part_copy(Bucket=bucket, Key="x", UploadId=up, PartNumber=1,
                            CopySource={"Bucket": bucket, "Key": "src"},
                            CopySourceRange="bytes=1000-5243879")
    assert s3kit.unquote_etag(r["CopyPartResult"]["ETag"]) == \
        s3kit.md5_hex(source[1000:5243880])
    s3.abort_multipart_upload(Bucket=bucket, Key="x", UploadId=up)


# ---------------------------------------------------------------------------------------
# Tagging
# ---------------------------------------------------------------------------------------
def tags_of(s3, bucket, key) -> dict:
    return {t["Key"]: t["Value"] for t in s3.get_object_tagging(Bucket=bucket, Key=key)["TagSet"]}


def test_object_tagging(s3, bucket):
    put(s3, bucket, "t", b"tagged")
    assert tags_of(s3, bucket, "t") == {}
    tags = {"project": "cairn", "with space": "value with space", "empty": "", "ü": "ö+%"}
    s3.put_object_tagging(Bucket=bucket, Key="t", Tagging={
        "TagSet": [{"Key": k, "Value": v} for k, v in tags.items()]})
    assert tags_of(s3, bucket, "t") == tags
    s3.put_object_tagging(Bucket=bucket, Key="t", Tagging={
        "TagSet": [{"Key": "only", "Value": "one"}]})
    assert tags_of(s3, bucket, "t") == {"only": "one"}
    r = s3.delete_object_tagging(Bucket=bucket, Key="t")
    assert r["ResponseMetadata"]["HTTPStatusCode"] == 204
    assert tags_of(s3, bucket, "t") == {}
    assert get_bytes(s3, bucket, "t") == b"tagged"


def test_object_tagging_errors(s3, bucket):
    expect_error("NoSuchKey", s3.get_object_tagging, Bucket=bucket, Key="absent", status=404)
    expect_error("NoSuchKey", s3.put_object_tagging, Bucket=bucket, Key="absent",
                 Tagging={"TagSet": [{"Key": "a", "Value": "b"}]}, status=404)
    put(s3, bucket, "t", b"x")
    eleven = [{"Key": f"k{i}", "Value": "v"} for i in range(11)]
    expect_error("InvalidTag", s3.put_object_tagging, Bucket=bucket, Key="t",
                 Tagging={"TagSet": eleven}, status=400)
    duplicate = [{"Key": "k", "Value": "1"}, {"Key": "k", "Value": "2"}]
    expect_error("InvalidTag", s3.put_object_tagging, Bucket=bucket, Key="t",
                 Tagging={"TagSet": duplicate}, status=400)
    assert tags_of(s3, bucket, "t") == {}


# ---------------------------------------------------------------------------------------
# Presigned URLs
# ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("key", ["plain.bin", "dir/with space+plus%pct ü.bin"])
def test_presigned_get_and_put(s3, s3env, bucket, key):
    session = h.new_session()
    body = s3kit.data(300_000, "presign-" + key)
    put_url = s3.generate_presigned_url("put_object", Params={"Bucket": bucket, "Key": key},
                                        ExpiresIn=300)
    r = session.put(put_url, data=body, timeout=30)
    assert r.status_code == 200, h.describe(r, "presigned PUT")
    assert s3kit.unquote_etag(r.headers["ETag"]) == s3kit.md5_hex(body)
    assert s3env.recorded_sha256(bucket, key) == s3kit.sha256_hex(body)

    get_url = s3.generate_presigned_url("get_object", Params={"Bucket": bucket, "Key": key},
                                        ExpiresIn=300)
    r = session.get(get_url, timeout=30)
    assert r.status_code == 200, h.describe(r, "presigned GET")
    assert s3kit.sha256_hex(r.content) == s3kit.sha256_hex(body)

    # a presigned GET does not authorise a PUT, nor another key
    r = session.put(get_url, data=b"overwrite", timeout=30)
    assert r.status_code == 403 and s3kit.s3_error_code(r.content) == "SignatureDoesNotMatch", \
        h.describe(r, "PUT on a presigned GET URL")
    other = get_url.replace(s3kit.quote_key(key).split("/")[-1], "other-key", 1)
    assert other != get_url
    r = session.get(other, timeout=30)
    assert r.status_code == 403, h.describe(r, "presigned GET for another key")
    assert s3kit.sha256_hex(get_bytes(s3, bucket, key)) == s3kit.sha256_hex(body)


def test_presigned_head_and_range(s3, bucket):
    session = h.new_session()
    body = s3kit.data(5000, "presign-range")
    put(s3, bucket, "r", body)
    url = s3.generate_presigned_url("get_object", Params={"Bucket": bucket, "Key": "r"},
                                    ExpiresIn=60)
    r = session.get(url, headers={"Range": "bytes=10-19"}, timeout=30)
    assert r.status_code == 206 and r.content == body[10:20], h.describe(r)
    head_url = s3.generate_presigned_url("head_object", Params={"Bucket": bucket, "Key": "r"},
                                         ExpiresIn=60)
    r = session.head(head_url, timeout=30)
    assert r.status_code == 200 and int(r.headers["Content-Length"]) == 5000


# ---------------------------------------------------------------------------------------
# Virtual-hosted-style addressing (Host: <bucket>.localhost:<port>)
# ---------------------------------------------------------------------------------------
def test_virtual_hosted_style(s3, s3env, bucket):
    host = f"{bucket}.localhost:{s3env.port}"
    body = s3kit.data(4321, "vhost")
    key = "v dir/ü+.bin"
    path = "/" + s3kit.quote_key(key)
    r = s3kit.send_signed(s3kit.sign(s3env.main, "PUT", s3env.port, path, body=body, host=host),
                          s3env.port)
    assert r.status == 200, r.describe()
    assert s3kit.sha256_hex(get_bytes(s3, bucket, key)) == s3kit.sha256_hex(body)

    r = s3kit.send_signed(s3kit.sign(s3env.main, "GET", s3env.port, path, host=host),
                          s3env.port)
    assert r.status == 200 and r.body == body, r.describe()

    r = s3kit.send_signed(s3kit.sign(s3env.main, "GET", s3env.port,
                                     "/?list-type=2&prefix=v%20dir%2F", host=host), s3env.port)
    assert r.status == 200 and b"<ListBucketResult" in r.body, r.describe()
    assert b"<Name>" + bucket.encode() + b"</Name>" in r.body
    assert "ü".encode() in r.body or b"%C3%BC" in r.body

    r = s3kit.send_signed(s3kit.sign(s3env.main, "HEAD", s3env.port, "/", host=host),
                          s3env.port)
    assert r.status == 200, r.describe()  # HeadBucket
    missing = f"{s3kit.unique_bucket('none')}.localhost:{s3env.port}"
    r = s3kit.send_signed(s3kit.sign(s3env.main, "GET", s3env.port, path, host=missing),
                          s3env.port)
    assert r.status == 404 and r.code == "NoSuchBucket", r.describe()
