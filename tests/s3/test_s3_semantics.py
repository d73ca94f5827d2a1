"""S3 semantics a careful client relies on, through Debian's python3-boto3 (and raw SigV4
requests where botocore hides the wire):

1. Never pretend: server-side encryption, SSE-C, Object Lock, ACL grants to other accounts
   and a wrong x-amz-expected-bucket-owner are refused (501 / 400 / 403) and nothing is
   stored or created — a request for a protection Cairn lacks never silently succeeds.
2. Bucket settings Cairn does not implement answer like a bucket that never had them
   (404 with S3's per-setting code, or S3's default document); setting one is 501 and
   leaves it unconfigured; DELETE of one is 204 (but needs a write key).
3. Cleanup as on AWS: DeleteBucket removes incomplete multipart uploads, ListObjectVersions
   works on an unversioned bucket (VersionId 'null'), `aws s3 rb --force` works.
4. A retried CompleteMultipartUpload answers like the first one (or NoSuchUpload).
5. Content-Encoding, Cache-Control, Content-Disposition, Content-Language and Expires are
   stored and returned (PUT, CopyObject COPY/REPLACE, multipart, response-* overrides).
6. Listing with encoding-type=url and an empty delimiter, checked on the raw XML.
7. ListBuckets pagination (max-buckets, prefix, continuation-token).
8. CreateBucket of one's own bucket: 200, nothing changed.
9. GetObject/HeadObject ?partNumber=N.
10. A PUT without Content-Length or Transfer-Encoding: 411 MissingContentLength.

Every test removes the buckets it creates (objects and uploads included)."""
from __future__ import annotations

import base64
import datetime as dt
import hashlib
import gzip
import json
import urllib.parse
import zlib
import xml.etree.ElementTree as ET

import pytest

pytest.importorskip("boto3", reason="python3-boto3 is not installed")

import s3kit  # noqa: E402
from s3kit import MiB, assert_absent, assert_no_bucket, expect_error, h, ok, xml_of  # noqa: E402

AWS = "/usr/bin/aws"
MAX_PAGES = 50  # bound for every pagination loop


# ---------------------------------------------------------------------------------------
# Helpers
# ---------------------------------------------------------------------------------------
@pytest.fixture
def buckets(s3):
    """Names registered here are removed after the test (whether or not they exist)."""
    names: list[str] = []
    yield names
    for name in names:
        s3kit.drop_bucket(s3, name, max_pages=MAX_PAGES)


@pytest.fixture
def bucket(s3, buckets):
    """A fresh, empty bucket of tenant `main`, removed with its contents afterwards."""
    name = s3kit.unique_bucket("sem")
    buckets.append(name)
    s3.create_bucket(Bucket=name)
    return name


def raw(s3env, method: str, path: str, *, headers: dict = None, body: bytes = b"",
        payload_hash: str = None) -> s3kit.RawResponse:
    """One SigV4-signed request of tenant `main`, sent byte for byte."""
    req = s3kit.sign(s3env.main, method, s3env.port, path, headers=headers, body=body,
                     payload_hash=payload_hash)
    return s3kit.send_signed(req, s3env.port)


def multipart(s3, bucket: str, key: str, sizes: list, seed: str, **create_kwargs):
    """Uploads parts of these sizes; returns (upload id, part list, whole body)."""
    upload = s3.create_multipart_upload(Bucket=bucket, Key=key, **create_kwargs)["UploadId"]
    parts, blobs = [], []
    for number, size in enumerate(sizes, 1):
        blob = s3kit.data(size, f"{seed}-{number}")
        etag = s3.upload_part(Bucket=bucket, Key=key, UploadId=upload, PartNumber=number,
                              Body=blob)["ETag"]
        parts.append({"PartNumber": number, "ETag": etag})
        blobs.append(blob)
    return upload, parts, b"".join(blobs)


def complete(s3, bucket, key, upload, parts) -> dict:
    return s3.complete_multipart_upload(Bucket=bucket, Key=key, UploadId=upload,
                                        MultipartUpload={"Parts": parts})


def body_of(s3, bucket, key, **kwargs) -> bytes:
    return s3.get_object(Bucket=bucket, Key=key, **kwargs)["Body"].read()


@pytest.fixture(scope="module")
def reader(s3env):
    """A read-scope S3 key of tenant `main` (`cairn keys create --s3 --scope read`)."""
    return s3kit.create_s3_key(s3env.data_dir, s3env.main.tenant, scope="read")


# ---------------------------------------------------------------------------------------
# 1. Never pretend
# ---------------------------------------------------------------------------------------
SSE_C = {"SSECustomerAlgorithm": "AES256", "SSECustomerKey": "k" * 32}
SSE_REQUESTS = {
    "sse-s3": {"ServerSideEncryption": "AES256"},
    "sse-kms": {"ServerSideEncryption": "aws:kms"},
    "sse-kms-key": {"ServerSideEncryption": "aws:kms", "SSEKMSKeyId": "alias/some-key"},
    "sse-c": SSE_C,
}


@pytest.mark.parametrize("sse", SSE_REQUESTS.values(), ids=SSE_REQUESTS.keys())
def test_encrypted_writes_are_refused_not_stored_in_the_clear(s3, bucket, sse):
    expect_error(501, "NotImplemented", s3.put_object, Bucket=bucket, Key="secret",
                 Body=b"sensitive", **sse)
    assert_absent(s3, bucket, "secret")

    expect_error(501, "NotImplemented", s3.create_multipart_upload, Bucket=bucket, Key="mp",
                 **sse)
    assert s3.list_multipart_uploads(Bucket=bucket).get("Uploads", []) == []

    s3.put_object(Bucket=bucket, Key="plain", Body=b"plain")
    expect_error(501, "NotImplemented", s3.copy_object, Bucket=bucket, Key="copy",
                 CopySource={"Bucket": bucket, "Key": "plain"}, **sse)
    assert_absent(s3, bucket, "copy")


def test_sse_c_reads_of_a_plain_object_are_invalid(s3, bucket):
    s3.put_object(Bucket=bucket, Key="plain", Body=b"plain")
    expect_error(400, "InvalidRequest", s3.get_object, Bucket=bucket, Key="plain", **SSE_C)
    expect_error(400, None, s3.head_object, Bucket=bucket, Key="plain", **SSE_C)
    assert body_of(s3, bucket, "plain") == b"plain"


LOCKS = {
    "retention": {"ObjectLockMode": "GOVERNANCE",
                  "ObjectLockRetainUntilDate": dt.datetime(2099, 1, 1, tzinfo=dt.timezone.utc)},
    "compliance": {"ObjectLockMode": "COMPLIANCE",
                   "ObjectLockRetainUntilDate": dt.datetime(2099, 1, 1, tzinfo=dt.timezone.utc)},
    "legal-hold": {"ObjectLockLegalHoldStatus": "ON"},
}


@pytest.mark.parametrize("lock", LOCKS.values(), ids=LOCKS.keys())
def test_object_lock_writes_are_refused(s3, bucket, lock):
    expect_error(400, "InvalidRequest", s3.put_object, Bucket=bucket, Key="locked",
                 Body=b"keep me", **lock)
    assert_absent(s3, bucket, "locked")


def test_object_lock_operations_are_invalid(s3, bucket):
    s3.put_object(Bucket=bucket, Key="k", Body=b"v")
    until = dt.datetime(2099, 1, 1, tzinfo=dt.timezone.utc)
    expect_error(400, "InvalidRequest", s3.put_object_retention, Bucket=bucket, Key="k",
                 Retention={"Mode": "GOVERNANCE", "RetainUntilDate": until})
    expect_error(400, "InvalidRequest", s3.put_object_legal_hold, Bucket=bucket, Key="k",
                 LegalHold={"Status": "ON"})
    expect_error(400, "InvalidRequest", s3.get_object_retention, Bucket=bucket, Key="k")
    s3.delete_object(Bucket=bucket, Key="k")  # nothing holds it
    assert_absent(s3, bucket, "k")


ALL_USERS = "uri=http://acs.amazonaws.com/groups/global/AllUsers"


OTHER_ACCOUNT = "id=someone-else"


@pytest.mark.parametrize("kwargs", [{"ObjectLockEnabledForBucket": True},
                                    {"GrantRead": OTHER_ACCOUNT},
                                    {"ObjectOwnership": "ObjectWriter"}],
                         ids=["object-lock", "grant-to-another-account", "object-writer"])
def test_create_bucket_with_unsupported_protection_is_refused(s3, buckets, kwargs):
    name = s3kit.unique_bucket("sem")
    buckets.append(name)
    expect_error(501, "NotImplemented", s3.create_bucket, Bucket=name, **kwargs)
    assert_no_bucket(s3, name)
    assert name not in [b["Name"] for b in s3.list_buckets()["Buckets"]]


@pytest.mark.parametrize("kwargs", [{"GrantRead": OTHER_ACCOUNT},
                                    {"GrantFullControl": OTHER_ACCOUNT},
                                    {"ACL": "aws-exec-read"}],
                         ids=["grant-read", "grant-full", "aws-exec-read"])
def test_put_object_with_unsupported_acl_is_refused(s3, bucket, kwargs):
    expect_error(501, "NotImplemented", s3.put_object, Bucket=bucket, Key="public",
                 Body=b"x", **kwargs)
    assert_absent(s3, bucket, "public")


def test_put_object_with_unknown_canned_acl_is_refused(s3, bucket):
    expect_error(400, "InvalidArgument", s3.put_object, Bucket=bucket, Key="k", Body=b"x",
                 ACL="everyone-please")
    assert_absent(s3, bucket, "k")


@pytest.mark.parametrize("acl", ["private", "bucket-owner-full-control", "public-read",
                                 "public-read-write", "authenticated-read"])
def test_canned_acls_are_accepted(s3, buckets, acl):
    name = s3kit.unique_bucket("sem")
    buckets.append(name)
    ok(s3.create_bucket(Bucket=name, ACL="private"))
    ok(s3.put_object(Bucket=name, Key="k", Body=b"v", ACL=acl))
    assert body_of(s3, name, "k") == b"v"


def test_expected_bucket_owner(s3, s3env, bucket):
    owner = s3.list_buckets()["Owner"]["ID"]
    assert owner == s3env.main.tenant
    s3.put_object(Bucket=bucket, Key="k", Body=b"v")
    wrong = {"Bucket": bucket, "ExpectedBucketOwner": "someone-else"}
    expect_error(403, "AccessDenied", s3.put_object, Key="new", Body=b"n", **wrong)
    assert_absent(s3, bucket, "new")
    expect_error(403, "AccessDenied", s3.get_object, Key="k", **wrong)
    expect_error(403, None, s3.head_object, Key="k", **wrong)
    expect_error(403, "AccessDenied", s3.list_objects_v2, **wrong)
    expect_error(403, "AccessDenied", s3.delete_object, Key="k", **wrong)
    assert body_of(s3, bucket, "k") == b"v"

    right = {"Bucket": bucket, "ExpectedBucketOwner": owner}
    ok(s3.put_object(Key="new", Body=b"n", **right))
    assert s3.get_object(Key="new", **right)["Body"].read() == b"n"
    ok(s3.head_object(Key="k", **right))
    assert [o["Key"] for o in s3.list_objects_v2(**right)["Contents"]] == ["k", "new"]
    ok(s3.head_bucket(**right))


# ---------------------------------------------------------------------------------------
# 2. Unconfigured bucket settings
# ---------------------------------------------------------------------------------------
NOT_CONFIGURED = {
    "get_bucket_tagging": "NoSuchTagSet",
    "get_bucket_lifecycle_configuration": "NoSuchLifecycleConfiguration",
    "get_bucket_encryption": "ServerSideEncryptionConfigurationNotFoundError",
    "get_object_lock_configuration": "ObjectLockConfigurationNotFoundError",
    "get_bucket_policy": "NoSuchBucketPolicy",
    "get_bucket_cors": "NoSuchCORSConfiguration",
    "get_bucket_replication": "ReplicationConfigurationNotFoundError",
    "get_bucket_website": "NoSuchWebsiteConfiguration",
}
DEFAULT_DOCUMENTS = {  # settings S3 answers with a default document: getter -> check
    "get_bucket_logging": lambda r: "LoggingEnabled" not in r,
    "get_bucket_versioning": lambda r: "Status" not in r and "MFADelete" not in r,
    "get_bucket_request_payment": lambda r: r.get("Payer") == "BucketOwner",
}


def assert_unconfigured(s3, bucket: str, getter: str) -> None:
    fn = getattr(s3, getter)
    if getter in NOT_CONFIGURED:
        expect_error(404, NOT_CONFIGURED[getter], fn, Bucket=bucket)
    else:
        r = ok(fn(Bucket=bucket))
        assert DEFAULT_DOCUMENTS[getter](r), f"{getter} of an unconfigured bucket: {r}"


@pytest.mark.parametrize("getter", [*NOT_CONFIGURED, *DEFAULT_DOCUMENTS])
def test_unconfigured_setting_reads_as_never_set(s3, bucket, getter):
    assert_unconfigured(s3, bucket, getter)


@pytest.mark.parametrize("getter", [*NOT_CONFIGURED, *DEFAULT_DOCUMENTS])
def test_setting_of_a_missing_bucket_is_no_such_bucket(s3, getter):
    expect_error(404, "NoSuchBucket", getattr(s3, getter), Bucket=s3kit.unique_bucket("none"))


@pytest.mark.parametrize("deleter", ["delete_bucket_cors", "delete_bucket_policy",
                                     "delete_bucket_lifecycle", "delete_bucket_tagging",
                                     "delete_bucket_website", "delete_bucket_encryption"])
def test_deleting_an_unconfigured_setting_succeeds(s3, bucket, deleter):
    ok(getattr(s3, deleter)(Bucket=bucket), 204)
    s3.head_bucket(Bucket=bucket)


RULE = {"ID": "r", "Status": "Enabled", "Filter": {"Prefix": "tmp/"},
        "Expiration": {"Days": 1}}
SETTERS = {  # setter -> (arguments, the getter that must still say "not configured")
    "put_bucket_lifecycle_configuration": ({"LifecycleConfiguration": {"Rules": [RULE]}},
                                           "get_bucket_lifecycle_configuration"),
    "put_bucket_versioning": ({"VersioningConfiguration": {"Status": "Enabled"}},
                              "get_bucket_versioning"),
    "put_bucket_encryption": ({"ServerSideEncryptionConfiguration": {"Rules": [
        {"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}]}},
        "get_bucket_encryption"),
    "put_bucket_website": ({"WebsiteConfiguration": {"IndexDocument": {"Suffix": "i.html"}}},
                           "get_bucket_website"),
    "put_object_lock_configuration": ({"ObjectLockConfiguration": {
        "ObjectLockEnabled": "Enabled"}}, "get_object_lock_configuration"),
    "put_bucket_replication": ({"ReplicationConfiguration": {
        "Role": "arn:aws:iam::1:role/r", "Rules": [{
            "Status": "Enabled", "Prefix": "", "Destination": {
                "Bucket": "arn:aws:s3:::elsewhere"}}]}}, "get_bucket_replication"),
    "put_bucket_logging": ({"BucketLoggingStatus": {"LoggingEnabled": {
        "TargetBucket": "elsewhere", "TargetPrefix": "log/"}}}, "get_bucket_logging"),
    "put_bucket_request_payment": ({"RequestPaymentConfiguration": {"Payer": "Requester"}},
                                   "get_bucket_request_payment"),
}


@pytest.mark.parametrize("setter", SETTERS)
def test_setting_an_unimplemented_setting_is_refused(s3, bucket, setter):
    kwargs, getter = SETTERS[setter]
    expect_error(501, "NotImplemented", getattr(s3, setter), Bucket=bucket, **kwargs)
    assert_unconfigured(s3, bucket, getter)


def test_read_only_key_may_not_delete_a_setting(s3env, bucket, reader):
    ro = s3env.boto(reader)
    expect_error(404, "NoSuchCORSConfiguration", ro.get_bucket_cors, Bucket=bucket)
    expect_error(403, "AccessDenied", ro.delete_bucket_cors, Bucket=bucket)
    req = s3kit.sign(reader, "DELETE", s3env.port, f"/{bucket}?cors")
    r = s3kit.send_signed(req, s3env.port)
    assert (r.status, r.code) == (403, "AccessDenied"), r.describe()


# ---------------------------------------------------------------------------------------
# 3. Cleanup like AWS
# ---------------------------------------------------------------------------------------
def test_delete_bucket_with_only_uploads_removes_them(s3, bucket):
    for key in ("a", "b/c"):
        s3.create_multipart_upload(Bucket=bucket, Key=key)
    upload, _, _ = multipart(s3, bucket, "with-part", [1024], "cleanup")
    assert len(s3.list_multipart_uploads(Bucket=bucket)["Uploads"]) == 3
    ok(s3.delete_bucket(Bucket=bucket), 204)
    assert_no_bucket(s3, bucket)

    s3.create_bucket(Bucket=bucket)  # same name again: nothing of the old uploads survives
    assert s3.list_multipart_uploads(Bucket=bucket).get("Uploads", []) == []
    expect_error(404, "NoSuchUpload", s3.list_parts, Bucket=bucket, Key="with-part",
                 UploadId=upload)


def test_delete_bucket_with_an_object_and_an_upload_is_refused(s3, bucket):
    s3.put_object(Bucket=bucket, Key="obj", Body=b"x")
    upload = s3.create_multipart_upload(Bucket=bucket, Key="mp")["UploadId"]
    expect_error(409, "BucketNotEmpty", s3.delete_bucket, Bucket=bucket)
    assert [u["UploadId"] for u in s3.list_multipart_uploads(Bucket=bucket)["Uploads"]] \
        == [upload]
    assert body_of(s3, bucket, "obj") == b"x"


VERSION_KEYS = ["a", "b", "d1/x", "d1/y", "d2/z", "e", "f"]


@pytest.fixture
def seven(s3, bucket):
    """The bucket with VERSION_KEYS (distinct sizes); returns {key: (size, etag)}."""
    out = {}
    for i, key in enumerate(VERSION_KEYS):
        body = key.encode() * (i + 1)
        out[key] = (len(body), s3.put_object(Bucket=bucket, Key=key, Body=body)["ETag"])
    return out


def check_versions(versions: list, expected: dict) -> None:
    assert [v["Key"] for v in versions] == sorted(expected)
    for v in versions:
        assert (v["VersionId"], v["IsLatest"], v["Size"], v["ETag"]) == \
            ("null", True, *expected[v["Key"]]), v


def test_list_object_versions_of_an_unversioned_bucket(s3, bucket, seven):
    r = ok(s3.list_object_versions(Bucket=bucket))
    check_versions(r["Versions"], seven)
    assert not r.get("DeleteMarkers") and not r["IsTruncated"]

    r = s3.list_object_versions(Bucket=bucket, Prefix="d1/")
    check_versions(r["Versions"], {k: v for k, v in seven.items() if k.startswith("d1/")})
    r = s3.list_object_versions(Bucket=bucket, Delimiter="/")
    check_versions(r["Versions"], {k: v for k, v in seven.items() if "/" not in k})
    assert [p["Prefix"] for p in r["CommonPrefixes"]] == ["d1/", "d2/"]

    assert body_of(s3, bucket, "e", VersionId="null") == b"e" * 6
    assert s3.head_object(Bucket=bucket, Key="e", VersionId="null")["ContentLength"] == 6


def test_list_object_versions_paginates(s3, bucket, seven):
    seen, kwargs = [], {}
    for _ in range(MAX_PAGES):
        r = s3.list_object_versions(Bucket=bucket, MaxKeys=2, **kwargs)
        assert len(r["Versions"]) <= 2
        seen += r["Versions"]
        if not r["IsTruncated"]:
            break
        assert r["NextVersionIdMarker"] == "null", r
        kwargs = {"KeyMarker": r["NextKeyMarker"], "VersionIdMarker": r["NextVersionIdMarker"]}
    else:
        pytest.fail(f"no last page after {MAX_PAGES} pages")
    check_versions(seen, seven)
    expect_error(400, "InvalidArgument", s3.list_object_versions, Bucket=bucket,
                 KeyMarker="b", VersionIdMarker="3HL4kqtJlcpXroDTDmJ-rmSpXd3dIbrHY")


def test_aws_cli_rb_force_removes_a_bucket_with_objects(s3env, s3, buckets):
    exe = s3kit.require_tool(AWS, "the Debian package awscli (AWS CLI v2)")
    name = s3kit.unique_bucket("rb")
    buckets.append(name)
    s3.create_bucket(Bucket=name)
    for key in ("one", "dir/two", "dir/sub/three"):
        s3.put_object(Bucket=name, Key=key, Body=key.encode())
    s3.create_multipart_upload(Bucket=name, Key="pending")
    s3kit.check_tool([exe, "s3", "rb", "--force", f"s3://{name}", "--endpoint-url",
                      s3env.endpoint, "--no-cli-pager", "--cli-read-timeout", "30"],
                     s3env.env(), timeout=120)
    assert_no_bucket(s3, name)


# ---------------------------------------------------------------------------------------
# 4. A retried CompleteMultipartUpload
# ---------------------------------------------------------------------------------------
def test_retried_complete_multipart_upload(s3, bucket):
    upload, parts, whole = multipart(s3, bucket, "mp", [5 * MiB, 1 * MiB], "retry")
    first = ok(complete(s3, bucket, "mp", upload, parts))
    again = ok(complete(s3, bucket, "mp", upload, parts))
    assert again["ETag"] == first["ETag"] == f'"{s3kit.etag_of_parts(whole, 5 * MiB)}"'
    head = s3.head_object(Bucket=bucket, Key="mp")
    assert (head["ETag"], head["ContentLength"]) == (first["ETag"], len(whole))
    assert s3kit.sha256_hex(body_of(s3, bucket, "mp")) == s3kit.sha256_hex(whole)

    expect_error(404, "NoSuchUpload", complete, s3=s3, bucket=bucket, key="mp",
                 upload=upload, parts=parts[:1])
    assert s3.head_object(Bucket=bucket, Key="mp")["ETag"] == first["ETag"]

    s3.put_object(Bucket=bucket, Key="mp", Body=b"overwritten")
    expect_error(404, "NoSuchUpload", complete, s3=s3, bucket=bucket, key="mp",
                 upload=upload, parts=parts)
    assert body_of(s3, bucket, "mp") == b"overwritten"


# ---------------------------------------------------------------------------------------
# 5. Stored object headers
# ---------------------------------------------------------------------------------------
EXPIRES = dt.datetime(2030, 1, 2, 3, 4, 5, tzinfo=dt.timezone.utc)
HEADERS = {"ContentEncoding": "gzip", "CacheControl": "max-age=60, public",
           "ContentDisposition": 'attachment; filename="report.txt"',
           "ContentLanguage": "de-DE", "Expires": EXPIRES, "ContentType": "text/plain"}
GZ = gzip.compress(b"compressed report\n" * 100, mtime=0)


def stored_headers(r: dict) -> dict:
    return {name: r.get(name) for name in HEADERS}


def check_object_headers(s3, bucket, key, expected: dict, *, metadata=None) -> None:
    """HEAD and GET both return exactly these of HEADERS (the rest absent), and the user
    metadata is `metadata` only."""
    want = {name: expected.get(name) for name in HEADERS}
    if want["ContentType"] is None:
        want.pop("ContentType")  # a default content type is fine
    for r in (s3.head_object(Bucket=bucket, Key=key), s3.get_object(Bucket=bucket, Key=key)):
        got = stored_headers(r)
        assert {k: got[k] for k in want} == want, f"{key}: {r['ResponseMetadata']['HTTPHeaders']}"
        assert r["Metadata"] == (metadata or {}), r["Metadata"]


def test_object_headers_are_kept(s3, bucket):
    s3.put_object(Bucket=bucket, Key="k", Body=GZ, Metadata={"m": "1"}, **HEADERS)
    check_object_headers(s3, bucket, "k", HEADERS, metadata={"m": "1"})
    assert body_of(s3, bucket, "k") == GZ  # stored as sent, not decoded


@pytest.mark.parametrize("sent,kept", [("gzip, aws-chunked", "gzip"), ("aws-chunked", None),
                                       ("br", "br")])
def test_aws_chunked_is_not_a_stored_content_encoding(s3, bucket, sent, kept):
    s3.put_object(Bucket=bucket, Key="k", Body=b"body", ContentEncoding=sent)
    for r in (s3.head_object(Bucket=bucket, Key="k"), s3.get_object(Bucket=bucket, Key="k")):
        assert r.get("ContentEncoding") == kept, r["ResponseMetadata"]["HTTPHeaders"]
    assert body_of(s3, bucket, "k") == b"body"


def test_copy_keeps_or_replaces_object_headers(s3, bucket):
    s3.put_object(Bucket=bucket, Key="src", Body=GZ, Tagging="a=1", Metadata={"m": "1"},
                  **HEADERS)
    source = {"Bucket": bucket, "Key": "src"}
    s3.copy_object(Bucket=bucket, Key="copied", CopySource=source)
    check_object_headers(s3, bucket, "copied", HEADERS, metadata={"m": "1"})

    s3.copy_object(Bucket=bucket, Key="replaced", CopySource=source,
                   MetadataDirective="REPLACE", CacheControl="no-store",
                   ContentType="application/gzip", Metadata={"n": "2"})
    check_object_headers(s3, bucket, "replaced",
                         {"CacheControl": "no-store", "ContentType": "application/gzip"},
                         metadata={"n": "2"})
    for key in ("src", "copied", "replaced"):
        assert s3.get_object(Bucket=bucket, Key=key).get("TagCount") == 1, key
        assert s3.get_object_tagging(Bucket=bucket, Key=key)["TagSet"] == \
            [{"Key": "a", "Value": "1"}], key
        assert body_of(s3, bucket, key) == GZ


def test_multipart_upload_keeps_object_headers(s3, bucket):
    upload, parts, whole = multipart(s3, bucket, "mp", [5 * MiB, 1024], "hdr",
                                     Metadata={"m": "1"}, **HEADERS)
    complete(s3, bucket, "mp", upload, parts)
    check_object_headers(s3, bucket, "mp", HEADERS, metadata={"m": "1"})
    assert s3kit.sha256_hex(body_of(s3, bucket, "mp")) == s3kit.sha256_hex(whole)


def test_response_overrides_win_over_stored_headers(s3, bucket):
    s3.put_object(Bucket=bucket, Key="k", Body=GZ, **HEADERS)
    later = dt.datetime(2031, 5, 6, 7, 8, 9, tzinfo=dt.timezone.utc)
    r = s3.get_object(Bucket=bucket, Key="k", ResponseCacheControl="no-cache",
                      ResponseContentDisposition="inline",
                      ResponseContentEncoding="identity", ResponseContentLanguage="fr",
                      ResponseContentType="application/octet-stream", ResponseExpires=later)
    assert stored_headers(r) == {
        "ContentEncoding": "identity", "CacheControl": "no-cache",
        "ContentDisposition": "inline", "ContentLanguage": "fr", "Expires": later,
        "ContentType": "application/octet-stream"}, r["ResponseMetadata"]["HTTPHeaders"]
    assert r["Body"].read() == GZ
    check_object_headers(s3, bucket, "k", HEADERS)  # the stored ones are unchanged


# ---------------------------------------------------------------------------------------
# 6. Listing: encoding-type=url and an empty delimiter (raw XML)
# ---------------------------------------------------------------------------------------
def texts(root: ET.Element, path: str) -> list:
    return [node.text or "" for node in root.findall(path)]


def test_encoding_type_url_on_the_wire(s3, s3env, bucket):
    for key in ("a b+c", "dir a/x y"):
        s3.put_object(Bucket=bucket, Key=key, Body=b"v")
    for query in ("encoding-type=url", "list-type=2&encoding-type=url"):
        root = xml_of(raw(s3env, "GET", f"/{bucket}?{query}"))
        keys = texts(root, "Contents/Key")
        assert keys[0] == "a%20b%2Bc", (query, keys)
        assert [urllib.parse.unquote(k) for k in keys] == ["a b+c", "dir a/x y"], (query, keys)

    prefix = urllib.parse.quote("dir a/", safe="")
    v1 = xml_of(raw(s3env, "GET", f"/{bucket}?encoding-type=url&prefix={prefix}"))
    assert texts(v1, "Prefix") == ["dir a/"], v1  # V1 echoes the prefix as given
    assert [urllib.parse.unquote(k) for k in texts(v1, "Contents/Key")] == ["dir a/x y"]
    v2 = xml_of(raw(s3env, "GET", f"/{bucket}?list-type=2&encoding-type=url&prefix={prefix}"))
    [encoded] = texts(v2, "Prefix")  # V2 encodes it
    assert "%20" in encoded and " " not in encoded and urllib.parse.unquote(encoded) == "dir a/"


def test_empty_delimiter_is_not_echoed(s3, s3env, bucket):
    s3.put_object(Bucket=bucket, Key="d/k", Body=b"v")
    for query in ("delimiter=", "list-type=2&delimiter="):
        r = raw(s3env, "GET", f"/{bucket}?{query}")
        root = xml_of(r)
        assert root.find("Delimiter") is None, r.body
        assert texts(root, "Contents/Key") == ["d/k"] and root.find("CommonPrefixes") is None
    for listing in (s3.list_objects, s3.list_objects_v2):
        r = listing(Bucket=bucket, Delimiter="")
        assert "Delimiter" not in r and [o["Key"] for o in r["Contents"]] == ["d/k"], r


# ---------------------------------------------------------------------------------------
# 7. ListBuckets pagination (this botocore has no MaxBuckets/Prefix: raw requests)
# ---------------------------------------------------------------------------------------
def test_list_buckets_paginates(s3, s3env, buckets):
    prefix = s3kit.unique_bucket("lb")
    names = [f"{prefix}-{i}" for i in (2, 0, 1)]
    buckets.extend(names)
    for name in names:
        s3.create_bucket(Bucket=name)
    seen, token = [], None
    for _ in range(MAX_PAGES):
        query = f"max-buckets=1&prefix={prefix}"
        if token is not None:
            query += "&continuation-token=" + urllib.parse.quote(token, safe="")
        root = xml_of(raw(s3env, "GET", f"/?{query}"))
        page = texts(root, "Buckets/Bucket/Name")
        assert len(page) == 1, root
        seen += page
        token = (texts(root, "ContinuationToken") or [None])[0]
        if token is None:
            break
    else:
        pytest.fail(f"no last page after {MAX_PAGES} pages")
    assert seen == sorted(names)

    for bad in ("0", "10001"):
        r = raw(s3env, "GET", f"/?max-buckets={bad}")
        assert (r.status, r.code) == (400, "InvalidArgument"), r.describe()


# ---------------------------------------------------------------------------------------
# 8. CreateBucket of one's own bucket
# ---------------------------------------------------------------------------------------
def test_create_own_bucket_again_changes_nothing(s3, bucket):
    s3.put_object(Bucket=bucket, Key="k", Body=b"still here")
    ok(s3.create_bucket(Bucket=bucket))
    assert body_of(s3, bucket, "k") == b"still here"
    assert [o["Key"] for o in s3.list_objects_v2(Bucket=bucket)["Contents"]] == ["k"]


# ---------------------------------------------------------------------------------------
# 9. ?partNumber=N
# ---------------------------------------------------------------------------------------
def test_get_and_head_by_part_number(s3, bucket):
    upload, parts, whole = multipart(s3, bucket, "mp", [5 * MiB, 5 * MiB, 1 * MiB], "pn")
    complete(s3, bucket, "mp", upload, parts)
    total = len(whole)

    head = s3.head_object(Bucket=bucket, Key="mp", PartNumber=2)
    assert (head["PartsCount"], head["ContentLength"]) == (3, 5 * MiB), head
    r = s3.get_object(Bucket=bucket, Key="mp", PartNumber=2)
    assert r["ResponseMetadata"]["HTTPStatusCode"] == 206
    assert r["PartsCount"] == 3
    assert r["ContentRange"] == f"bytes {5 * MiB}-{10 * MiB - 1}/{total}"
    assert r["Body"].read() == whole[5 * MiB:10 * MiB]
    last = s3.get_object(Bucket=bucket, Key="mp", PartNumber=3)
    assert last["ContentRange"] == f"bytes {10 * MiB}-{total - 1}/{total}"
    assert last["Body"].read() == whole[10 * MiB:]

    expect_error(400, "InvalidPart", s3.get_object, Bucket=bucket, Key="mp", PartNumber=4)
    expect_error(400, None, s3.head_object, Bucket=bucket, Key="mp", PartNumber=4)
    expect_error(400, "InvalidRequest", s3.get_object, Bucket=bucket, Key="mp", PartNumber=1,
                 Range="bytes=0-9")
    expect_error(400, None, s3.head_object, Bucket=bucket, Key="mp", PartNumber=1,
                 Range="bytes=0-9")

    s3.put_object(Bucket=bucket, Key="plain", Body=b"plain body")
    assert body_of(s3, bucket, "plain", PartNumber=1) == b"plain body"
    expect_error(400, "InvalidPart", s3.get_object, Bucket=bucket, Key="plain", PartNumber=2)


# ---------------------------------------------------------------------------------------
# 10. PUT without Content-Length
# ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("payload_hash", ["UNSIGNED-PAYLOAD", s3kit.EMPTY_SHA256],
                         ids=["unsigned", "empty-hash"])
def test_put_without_content_length_is_411(s3, s3env, bucket, payload_hash):
    req = s3kit.sign(s3env.main, "PUT", s3env.port, f"/{bucket}/nolen",
                     payload_hash=payload_hash)
    head = f"PUT {req.path} HTTP/1.1\r\n" + "".join(
        f"{k}: {v}\r\n" for k, v in req.headers.items()) + "Connection: close\r\n\r\n"
    assert "content-length" not in head.lower() and "transfer-encoding" not in head.lower()
    reply = h.raw_exchange(s3env.port, head.encode(), timeout=10, half_close=False)
    assert h.parse_status(reply) == 411 and b"<Code>MissingContentLength</Code>" in reply, \
        reply[:600]
    assert_absent(s3, bucket, "nolen")


# ---------------------------------------------------------------------------------------
# 11. Checksums are kept and returned
# ---------------------------------------------------------------------------------------
def b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode()


def test_put_checksum_is_kept_and_returned_when_asked(s3, s3env, bucket):
    body = s3kit.data(3000, "checksum put")
    digest = b64(hashlib.sha256(body).digest())
    r = s3.put_object(Bucket=bucket, Key="k", Body=body, ChecksumSHA256=digest)
    assert r["ChecksumSHA256"] == digest
    assert "ChecksumSHA256" not in s3.head_object(Bucket=bucket, Key="k")
    head = s3.head_object(Bucket=bucket, Key="k", ChecksumMode="ENABLED")
    assert head["ChecksumSHA256"] == digest
    got = s3.get_object(Bucket=bucket, Key="k", ChecksumMode="ENABLED")
    assert got["ChecksumSHA256"] == digest and got["Body"].read() == body
    # a range is not the whole object: no whole-object checksum with it
    assert "ChecksumSHA256" not in s3.get_object(Bucket=bucket, Key="k", Range="bytes=0-9",
                                                 ChecksumMode="ENABLED")
    attributes = s3.get_object_attributes(Bucket=bucket, Key="k",
                                          ObjectAttributes=["Checksum", "ObjectSize", "ETag"])
    assert attributes["Checksum"]["ChecksumSHA256"] == digest
    assert attributes["ObjectSize"] == len(body)
    assert attributes["ETag"] == s3kit.md5_hex(body)
    # a single PUT's checksum covers the whole object (botocore 1.29 drops ChecksumType)
    doc = xml_of(raw(s3env, "GET", f"/{bucket}/k?attributes",
                     headers={"x-amz-object-attributes": "Checksum"}))
    assert doc.findtext("Checksum/ChecksumType") == "FULL_OBJECT"
    expect_error(400, "BadDigest", s3.put_object, Bucket=bucket, Key="k2", Body=body,
                 ChecksumSHA256=b64(hashlib.sha256(b"other").digest()))
    assert_absent(s3, bucket, "k2")


@pytest.mark.parametrize("algorithm", ["CRC32", "SHA256"])
def test_multipart_composite_checksum(s3, bucket, algorithm):
    sizes = [5 * MiB, 1234]
    upload, parts, whole = multipart(s3, bucket, "mp", sizes, "composite",
                                     ChecksumAlgorithm=algorithm)
    listed = s3.list_parts(Bucket=bucket, Key="mp", UploadId=upload)
    assert listed["ChecksumAlgorithm"] == algorithm
    element = f"Checksum{algorithm}"
    part_values = [p[element] for p in listed["Parts"]]
    assert len(part_values) == 2 and all(part_values)
    # the server computed each part's checksum; the composite is over their raw bytes
    if algorithm == "SHA256":
        assert part_values[0] == b64(hashlib.sha256(whole[:5 * MiB]).digest())
        composite = hashlib.sha256(b"".join(base64.b64decode(v) for v in part_values))
        expected = f"{b64(composite.digest())}-2"
    else:
        assert part_values[1] == b64(zlib.crc32(whole[5 * MiB:]).to_bytes(4, "big"))
        raw = b"".join(base64.b64decode(v) for v in part_values)
        expected = f"{b64(zlib.crc32(raw).to_bytes(4, 'big'))}-2"
    with_checksums = [dict(p, **{element: v}) for p, v in zip(parts, part_values)]
    wrong = [dict(with_checksums[0], **{element: part_values[1]}), with_checksums[1]]
    expect_error(400, "InvalidPart", complete, s3=s3, bucket=bucket, key="mp", upload=upload,
                 parts=wrong)
    done = complete(s3, bucket, "mp", upload, with_checksums)
    assert done[element] == expected
    head = s3.head_object(Bucket=bucket, Key="mp", ChecksumMode="ENABLED")
    assert head[element] == expected
    assert head["ResponseMetadata"]["HTTPHeaders"]["x-amz-checksum-type"] == "COMPOSITE"
    assert body_of(s3, bucket, "mp") == whole


def test_multipart_full_object_crc64(s3, bucket):
    upload, parts, whole = multipart(s3, bucket, "full", [5 * MiB, 777], "full object",
                                     ChecksumAlgorithm="CRC64NVME")
    done = complete(s3, bucket, "full", upload, parts)
    head = s3.head_object(Bucket=bucket, Key="full", ChecksumMode="ENABLED")
    assert head["ResponseMetadata"]["HTTPHeaders"]["x-amz-checksum-type"] == "FULL_OBJECT"
    value = head["ResponseMetadata"]["HTTPHeaders"]["x-amz-checksum-crc64nvme"]
    assert "-" not in value and len(base64.b64decode(value)) == 8
    # the same bytes in one PUT carry the same full-object CRC
    r = s3.put_object(Bucket=bucket, Key="single", Body=whole, ChecksumAlgorithm="CRC64NVME") \
        if "CRC64NVME" in s3.meta.service_model.shape_for("ChecksumAlgorithm").enum else None
    if r is not None:
        assert r["ChecksumCRC64NVME"] == value
    del done


def test_part_with_another_checksum_algorithm_is_refused(s3, s3env, bucket):
    upload = s3.create_multipart_upload(Bucket=bucket, Key="x", ChecksumAlgorithm="SHA256")
    body = b"x" * 100
    expect_error(400, "InvalidRequest", s3.upload_part, Bucket=bucket, Key="x",
                 UploadId=upload["UploadId"], PartNumber=1, Body=body,
                 ChecksumCRC32=b64(zlib.crc32(body).to_bytes(4, "big")))
    # a SHA checksum cannot be FULL_OBJECT, a CRC64NVME one only is (raw: the Debian
    # botocore has no ChecksumType parameter)
    for algorithm, kind in (("SHA256", "FULL_OBJECT"), ("CRC64NVME", "COMPOSITE"),
                            ("MD5", "COMPOSITE")):
        r = raw(s3env, "POST", f"/{bucket}/y?uploads",
                headers={"x-amz-checksum-algorithm": algorithm, "x-amz-checksum-type": kind})
        assert r.status == 400 and s3kit.s3_error_code(r.body) == "InvalidRequest", r.body
    assert not s3.list_multipart_uploads(Bucket=bucket, Prefix="y").get("Uploads")


# ---------------------------------------------------------------------------------------
# 12. Bucket tagging
# ---------------------------------------------------------------------------------------
def test_bucket_tagging_round_trip(s3, buckets, bucket):
    tags = [{"Key": f"k{i}", "Value": f"v {i} é"} for i in range(50)]
    assert ok(s3.put_bucket_tagging(Bucket=bucket, Tagging={"TagSet": tags}), 204)
    got = s3.get_bucket_tagging(Bucket=bucket)["TagSet"]
    assert sorted((t["Key"], t["Value"]) for t in got) == \
        sorted((t["Key"], t["Value"]) for t in tags)
    # replaced as a whole
    s3.put_bucket_tagging(Bucket=bucket, Tagging={"TagSet": [{"Key": "only", "Value": "1"}]})
    assert s3.get_bucket_tagging(Bucket=bucket)["TagSet"] == [{"Key": "only", "Value": "1"}]
    too_many = [{"Key": f"k{i}", "Value": "v"} for i in range(51)]
    expect_error(400, "InvalidTag", s3.put_bucket_tagging, Bucket=bucket,
                 Tagging={"TagSet": too_many})
    assert s3.get_bucket_tagging(Bucket=bucket)["TagSet"] == [{"Key": "only", "Value": "1"}]
    assert ok(s3.delete_bucket_tagging(Bucket=bucket), 204)
    expect_error(404, "NoSuchTagSet", s3.get_bucket_tagging, Bucket=bucket)
    # a deleted bucket's tags do not come back with a new bucket of that name
    s3.put_bucket_tagging(Bucket=bucket, Tagging={"TagSet": [{"Key": "gone", "Value": "1"}]})
    s3.delete_bucket(Bucket=bucket)
    s3.create_bucket(Bucket=bucket)
    expect_error(404, "NoSuchTagSet", s3.get_bucket_tagging, Bucket=bucket)


def test_bucket_tags_of_a_bucket_known_only_by_its_objects(s3, s3env, buckets):
    name = s3kit.unique_bucket("implicit")
    buckets.append(name)
    s3env.native.put(b"x", tenant=s3env.main.tenant, namespace=name, key="k")
    s3.put_bucket_tagging(Bucket=name, Tagging={"TagSet": [{"Key": "a", "Value": "b"}]})
    assert s3.get_bucket_tagging(Bucket=name)["TagSet"] == [{"Key": "a", "Value": "b"}]
