"""POST Object, the HTML form upload: forms built by botocore's generate_presigned_post
(Signature Version 4) and by hand (Version 2 and hostile forms), posted to a real server
with requests and http.client. Success codes, redirects, ${filename}, metadata, tags and
checksums; policy conditions, content-length-range, expired policies, bad signatures,
missing and misplaced fields, malformed bodies — every failure must store nothing; and a
50 MiB file streamed while the server's memory stays bounded."""
from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import http.client
import json
import socket
import threading
import time
import urllib.parse
import xml.etree.ElementTree as ET

import pytest

requests = pytest.importorskip("requests", reason="python3-requests is not installed")
pytest.importorskip("boto3", reason="python3-boto3 is not installed")

import s3kit  # noqa: E402
from s3kit import MiB  # noqa: E402

BOUNDARY = "----CairnFormBoundaryp0St0bJ"


# ---------------------------------------------------------------------------------------
# Building forms
# ---------------------------------------------------------------------------------------
def encode_form(fields, file=None, after=(), boundary=BOUNDARY) -> bytes:
    """multipart/form-data: `fields` (name, value) in order, then the file part
    (filename, bytes[, content type]) unless None, then the `after` fields."""
    out = []

    def part(name, value, filename=None, content_type=None):
        disposition = f'form-data; name="{name}"'
        if filename is not None:
            disposition += f'; filename="{filename}"'
        head = f"--{boundary}\r\nContent-Disposition: {disposition}\r\n"
        if content_type:
            head += f"Content-Type: {content_type}\r\n"
        out.append(head.encode() + b"\r\n")
        out.append(value if isinstance(value, bytes) else str(value).encode())
        out.append(b"\r\n")

    for name, value in fields:
        part(name, value)
    if file is not None:
        part("file", file[1], filename=file[0], content_type=file[2] if len(file) > 2 else None)
    for name, value in after:
        part(name, value)
    out.append(f"--{boundary}--\r\n".encode())
    return b"".join(out)


def policy_document(conditions, expires_in=dt.timedelta(hours=1)) -> str:
    expiration = (s3kit.utc_now() + expires_in).strftime("%Y-%m-%dT%H:%M:%S.000Z")
    document = {"expiration": expiration, "conditions": conditions}
    return base64.b64encode(json.dumps(document).encode()).decode()


def v2_fields(creds, policy: str, secret=None):
    signature = base64.b64encode(
        hmac.new((secret or creds.secret_key).encode(), policy.encode(), hashlib.sha1).digest())
    return [("AWSAccessKeyId", creds.access_key), ("policy", policy),
            ("signature", signature.decode())]


def v4_fields(creds, conditions, *, expires_in=dt.timedelta(hours=1), secret=None):
    """The V4 fields of a form, with the credential conditions added as AWS requires."""
    now = s3kit.utc_now()
    amz_date = now.strftime("%Y%m%dT%H%M%SZ")
    credential = f"{creds.access_key}/{amz_date[:8]}/{s3kit.REGION}/s3/aws4_request"
    conditions = list(conditions) + [{"x-amz-algorithm": "AWS4-HMAC-SHA256"},
                                     {"x-amz-credential": credential},
                                     {"x-amz-date": amz_date}]
    policy = policy_document(conditions, expires_in)
    key = s3kit.signing_key(secret or creds.secret_key, amz_date[:8])
    signature = hmac.new(key, policy.encode(), hashlib.sha256).hexdigest()
    return [("x-amz-algorithm", "AWS4-HMAC-SHA256"), ("x-amz-credential", credential),
            ("x-amz-date", amz_date), ("policy", policy), ("x-amz-signature", signature)]


def post(s3env, bucket, body: bytes, *, content_type=None, host=None, path=None,
         allow_redirects=False) -> requests.Response:
    headers = {"Content-Type": content_type or f"multipart/form-data; boundary={BOUNDARY}"}
    if host:
        headers["Host"] = host
    url = f"{s3env.endpoint}{path if path is not None else '/' + bucket}"
    return requests.post(url, data=body, headers=headers, allow_redirects=allow_redirects,
                         timeout=60)


def error_of(r: requests.Response) -> tuple[int, str, str]:
    try:
        root = ET.fromstring(r.content)
    except ET.ParseError:
        return r.status_code, "", r.text[:200]
    return r.status_code, root.findtext("Code") or "", root.findtext("Message") or ""


def assert_error(r: requests.Response, status: int, code: str, in_message: str = ""):
    got = error_of(r)
    assert got[0] == status and got[1] == code, f"expected {status} {code}, got {got}"
    assert in_message in got[2], got


def body_of(s3, bucket, key) -> bytes:
    return s3.get_object(Bucket=bucket, Key=key)["Body"].read()


# ---------------------------------------------------------------------------------------
# Signature Version 4, from botocore
# ---------------------------------------------------------------------------------------
def test_presigned_post_from_botocore(s3env, s3, bucket):
    form = s3.generate_presigned_post(
        Bucket=bucket, Key="docs/${filename}",
        Fields={"Content-Type": "text/plain", "x-amz-meta-color": "blue",
                "Cache-Control": "no-cache", "success_action_status": "201"},
        Conditions=[{"Content-Type": "text/plain"}, ["starts-with", "$x-amz-meta-color", ""],
                    {"Cache-Control": "no-cache"}, {"success_action_status": "201"},
                    ["content-length-range", 1, 1024]],
        ExpiresIn=600)
    assert form["url"].rstrip("/").endswith("/" + bucket)
    payload = b"hello, form\r\n--not a boundary\r\n"
    r = requests.post(form["url"], data=form["fields"],
                      files={"file": ("C:\\Users\\me\\notes.txt", payload, "application/x-junk")},
                      timeout=60)
    assert r.status_code == 201, error_of(r)
    document = ET.fromstring(r.content)
    assert document.tag == "PostResponse"
    assert document.findtext("Bucket") == bucket
    assert document.findtext("Key") == "docs/notes.txt"
    etag = hashlib.md5(payload).hexdigest()
    assert document.findtext("ETag") == f'"{etag}"'
    assert r.headers["ETag"] == f'"{etag}"'
    got = s3.get_object(Bucket=bucket, Key="docs/notes.txt")
    assert got["Body"].read() == payload
    assert got["ContentType"] == "text/plain"  # the field, not the file part's header
    assert got["Metadata"] == {"color": "blue"}
    assert got["CacheControl"] == "no-cache"
    assert s3env.native_sha256(bucket, "docs/notes.txt") == hashlib.sha256(payload).hexdigest()


def test_presigned_post_defaults(s3env, s3, bucket):
    form = s3.generate_presigned_post(Bucket=bucket, Key="plain.bin")
    r = requests.post(form["url"], data=form["fields"], files={"file": ("x", b"\x00\xff" * 10)},
                      timeout=60)
    assert r.status_code == 204, error_of(r)
    assert r.content == b""
    got = s3.get_object(Bucket=bucket, Key="plain.bin")
    assert got["Body"].read() == b"\x00\xff" * 10
    assert got["ContentType"] == "binary/octet-stream"


def test_success_codes_and_redirects(s3env, s3, bucket):
    def send(key, extra_fields, extra_conditions):
        fields = [("key", key)] + extra_fields
        conditions = [{"bucket": bucket}, {"key": key}] + extra_conditions
        body = encode_form(fields + v4_fields(s3env.main, conditions), ("f.txt", b"data"))
        return post(s3env, bucket, body)

    r = send("s200", [("success_action_status", "200")], [{"success_action_status": "200"}])
    assert r.status_code == 200 and r.content == b"", error_of(r)
    r = send("s404", [("success_action_status", "404")], [{"success_action_status": "404"}])
    assert r.status_code == 204 and r.content == b""  # an invalid status means 204
    r = send("sdefault", [], [])
    assert r.status_code == 204
    etag = hashlib.md5(b"data").hexdigest()
    target = "http://example.com/uploaded?from=form"
    r = send("a dir/redirected.txt", [("success_action_redirect", target)],
             [["starts-with", "$success_action_redirect", "http://example.com/"]])
    assert r.status_code == 303, error_of(r)
    assert r.headers["Location"] == (f"{target}&bucket={bucket}&key=a%20dir%2Fredirected.txt"
                                     f"&etag=%22{etag}%22")
    r = send("old-redirect", [("redirect", "https://example.com/")], [["eq", "$redirect",
                                                                       "https://example.com/"]])
    assert r.status_code == 303
    assert r.headers["Location"].startswith("https://example.com/?bucket=")
    # A URL S3 cannot interpret is ignored.
    r = send("bad-redirect", [("success_action_redirect", "not a url")],
             [["starts-with", "$success_action_redirect", ""]])
    assert r.status_code == 204
    for key in ("s200", "s404", "sdefault", "a dir/redirected.txt", "old-redirect"):
        assert body_of(s3, bucket, key) == b"data"


def test_form_acl_obeys_the_bucket(s3env, s3, bucket):
    """The form's acl field is refused where a PutObject's x-amz-acl would be: a bucket
    whose ownership is BucketOwnerEnforced (ACLs disabled) takes only private, and a public
    access block that blocks public ACLs refuses public-read; nothing is stored either way."""
    def send(key, acl):
        conditions = [{"bucket": bucket}, {"key": key}, {"acl": acl}]
        body = encode_form([("key", key), ("acl", acl)] + v4_fields(s3env.main, conditions),
                           ("f.txt", b"data"))
        return post(s3env, bucket, body)

    s3.put_bucket_ownership_controls(
        Bucket=bucket,
        OwnershipControls={"Rules": [{"ObjectOwnership": "BucketOwnerEnforced"}]})
    assert_error(send("enforced-public", "public-read"), 400, "AccessControlListNotSupported")
    r = send("enforced-private", "private")
    assert r.status_code == 204, error_of(r)
    s3.delete_bucket_ownership_controls(Bucket=bucket)
    s3.put_public_access_block(
        Bucket=bucket,
        PublicAccessBlockConfiguration={"BlockPublicAcls": True, "IgnorePublicAcls": False,
                                        "BlockPublicPolicy": False,
                                        "RestrictPublicBuckets": False})
    assert_error(send("blocked-public", "public-read"), 403, "AccessDenied")
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=bucket).get("Contents", [])]
    assert keys == ["enforced-private"]


# ---------------------------------------------------------------------------------------
# Signature Version 2 and the form's fields, by hand
# ---------------------------------------------------------------------------------------
def test_v2_form_with_metadata_tags_and_filename(s3env, s3, bucket):
    policy = policy_document([{"bucket": bucket}, ["starts-with", "$key", "user/"],
                              {"acl": "private"}, ["starts-with", "$Content-Type", "image/"],
                              ["starts-with", "$x-amz-meta-", ""],  # covers no field by itself
                              ["eq", "$x-amz-meta-uuid", "14365123651274"],
                              ["starts-with", "$Content-Disposition", ""],
                              ["starts-with", "$tagging", ""],
                              ["content-length-range", 0, 1024]])
    tagging = ("<Tagging><TagSet><Tag><Key>team</Key><Value>red</Value></Tag>"
               "<Tag><Key>k2</Key><Value>v2</Value></Tag></TagSet></Tagging>")
    fields = [("key", "user/${filename}"), ("acl", "private"), ("Content-Type", "image/png"),
              ("X-Amz-Meta-Uuid", "14365123651274"),
              ("Content-Disposition", 'attachment; filename="cat.png"'), ("tagging", tagging)]
    body = encode_form(fields + v2_fields(s3env.main, policy), ("/tmp/photos/cat.png", b"PNG"))
    r = post(s3env, bucket, body)
    assert r.status_code == 204, error_of(r)
    got = s3.get_object(Bucket=bucket, Key="user/cat.png")
    assert got["Body"].read() == b"PNG"
    assert got["ContentType"] == "image/png"
    assert got["Metadata"] == {"uuid": "14365123651274"}
    assert got["ContentDisposition"] == 'attachment; filename="cat.png"'
    tags = s3.get_object_tagging(Bucket=bucket, Key="user/cat.png")["TagSet"]
    assert sorted((t["Key"], t["Value"]) for t in tags) == [("k2", "v2"), ("team", "red")]


def test_field_names_are_case_insensitive(s3env, s3, bucket):
    policy = policy_document([{"bUcKeT": bucket}, ["StArTs-WiTh", "$KeY", "foo"],
                              {"AcL": "private"}])
    fields = [("kEy", "foo.txt"), ("aCl", "private"), ("pOLICy", policy),
              ("AWSACCESSKEYID", s3env.main.access_key),
              ("Signature", v2_fields(s3env.main, policy)[2][1])]
    r = post(s3env, bucket, encode_form(fields, ("f", b"bar")))
    assert r.status_code == 204, error_of(r)
    assert body_of(s3, bucket, "foo.txt") == b"bar"


def test_ignored_and_trailing_fields(s3env, s3, bucket):
    """x-ignore-* needs no condition; fields after the file are ignored, even unnamed ones."""
    policy = policy_document([{"bucket": bucket}, {"key": "k"}])
    fields = [("key", "k"), ("x-ignore-flash", "1")] + v2_fields(s3env.main, policy)
    body = encode_form(fields, ("f", b"content"), after=[("x-amz-meta-late", "no"),
                                                          ("key", "other")])
    r = post(s3env, bucket, body)
    assert r.status_code == 204, error_of(r)
    got = s3.get_object(Bucket=bucket, Key="k")
    assert got["Body"].read() == b"content"
    assert got["Metadata"] == {}
    s3kit.assert_absent(s3, bucket, "other")


def test_checksum_fields(s3env, s3, bucket):
    payload = b"x" * 3000
    good = base64.b64encode(hashlib.sha256(payload).digest()).decode()
    for key, value, status in (("good", good, 204), ("bad", base64.b64encode(b"0" * 32).decode(),
                                                      400)):
        policy = policy_document([{"bucket": bucket}, {"key": key}])
        fields = [("key", key), ("x-amz-checksum-sha256", value)] + v2_fields(s3env.main, policy)
        r = post(s3env, bucket, encode_form(fields, ("f", payload)))
        assert r.status_code == status, error_of(r)
    assert error_of(r)[1] == "BadDigest"
    s3kit.assert_absent(s3, bucket, "bad")
    got = s3.get_object(Bucket=bucket, Key="good", ChecksumMode="ENABLED")
    assert got["ChecksumSHA256"] == good
    # x-amz-checksum-algorithm alone: computed and kept.
    policy = policy_document([{"bucket": bucket}, {"key": "computed"},
                              {"x-amz-checksum-algorithm": "CRC32"}])
    fields = [("key", "computed"), ("x-amz-checksum-algorithm", "CRC32")]
    r = post(s3env, bucket, encode_form(fields + v2_fields(s3env.main, policy), ("f", payload)))
    assert r.status_code == 204, error_of(r)
    assert r.headers["x-amz-checksum-crc32"] == s3kit.crc32_b64(payload)


def test_virtual_hosted_and_chunked_post(s3env, s3, bucket):
    policy = policy_document([{"bucket": bucket}, ["starts-with", "$key", ""]])
    body = encode_form([("key", "vhost")] + v2_fields(s3env.main, policy), ("f", b"vh"))
    r = post(s3env, bucket, body, host=f"{bucket}.localhost:{s3env.port}", path="/")
    assert r.status_code == 204, error_of(r)
    assert body_of(s3, bucket, "vhost") == b"vh"
    # A chunked request body (no Content-Length) streams the same way.
    body = encode_form([("key", "chunked")] + v2_fields(s3env.main, policy), ("f", b"c" * 100000))
    pieces = (body[i:i + 7777] for i in range(0, len(body), 7777))
    r = requests.post(f"{s3env.endpoint}/{bucket}", data=pieces,
                      headers={"Content-Type": f"multipart/form-data; boundary={BOUNDARY}"},
                      timeout=60)
    assert r.status_code == 204, error_of(r)
    assert body_of(s3, bucket, "chunked") == b"c" * 100000


# ---------------------------------------------------------------------------------------
# Refusals: nothing is stored
# ---------------------------------------------------------------------------------------
def test_content_length_range(s3env, s3, bucket):
    def send(key, size):
        policy = policy_document([{"bucket": bucket}, {"key": key},
                                  ["content-length-range", 10, 100000]])
        fields = [("key", key)] + v2_fields(s3env.main, policy)
        return post(s3env, bucket, encode_form(fields, ("f", b"s" * size)))

    assert_error(send("small", 9), 400, "EntityTooSmall")
    assert_error(send("large", 100001), 400, "EntityTooLarge")
    # Far over the maximum: refused as it streams, without reading the rest.
    assert_error(send("huge", 8 * MiB), 400, "EntityTooLarge")
    for key in ("small", "large", "huge"):
        s3kit.assert_absent(s3, bucket, key)
    assert send("edge-low", 10).status_code == 204
    assert send("edge-high", 100000).status_code == 204


def test_expired_and_malformed_policies(s3env, s3, bucket):
    def send(policy, key="k"):
        fields = [("key", key)] + v2_fields(s3env.main, policy)
        return post(s3env, bucket, encode_form(fields, ("f", b"x")))

    expired = policy_document([{"bucket": bucket}, {"key": "k"}], dt.timedelta(seconds=-60))
    assert_error(send(expired), 403, "AccessDenied", "Policy expired")
    v4 = v4_fields(s3env.main, [{"bucket": bucket}, {"key": "k4"}],
                   expires_in=dt.timedelta(seconds=-1))
    r = post(s3env, bucket, encode_form([("key", "k4")] + v4, ("f", b"x")))
    assert_error(r, 403, "AccessDenied", "Policy expired")

    def raw(document) -> str:
        return base64.b64encode(json.dumps(document).encode()).decode()

    future = (s3kit.utc_now() + dt.timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    for document in ({"conditions": [{"key": "k"}]},
                     {"expiration": future},
                     {"EXPIRATION": future, "conditions": [{"key": "k"}]},
                     {"expiration": future, "CONDITIONS": [{"key": "k"}]},
                     {"expiration": "2030-01-01 00:00:00+00:00", "conditions": [{"key": "k"}]},
                     {"expiration": future, "conditions": [{}]},
                     {"expiration": future, "conditions": [{"key": "k"},
                                                           ["content-length-range", -1, 5]]},
                     {"expiration": future, "conditions": [{"key": "k"},
                                                           ["content-length-range", 5]]}):
        assert_error(send(raw(document)), 400, "InvalidPolicyDocument")
    assert_error(send(base64.b64encode(b"{not json").decode()), 400, "InvalidPolicyDocument")
    s3kit.assert_absent(s3, bucket, "k")
    s3kit.assert_absent(s3, bucket, "k4")


def test_policy_conditions_refuse(s3env, s3, bucket):
    def send(conditions, fields, url_bucket=bucket):
        policy = policy_document(conditions)
        return post(s3env, url_bucket,
                    encode_form(fields + v2_fields(s3env.main, policy), ("f", b"x")))

    base = [{"bucket": bucket}, ["starts-with", "$key", "ok/"]]
    assert_error(send(base, [("key", "bad/k")]), 403, "AccessDenied",
                 'Policy Condition failed: ["starts-with", "$key", "ok/"]')
    assert_error(send(base, [("key", "ok/k"), ("x-amz-meta-extra", "v")]), 403, "AccessDenied",
                 "Extra input fields: x-amz-meta-extra")
    assert_error(send(base + [["eq", "$x-amz-meta-foo", ""]],
                      [("key", "ok/k"), ("x-amz-meta-foo", "barclamp")]), 403, "AccessDenied")
    assert_error(send(base + [["starts-with", "$x-amz-meta-foo", "bar"]], [("key", "ok/k")]),
                 403, "AccessDenied")
    assert_error(send(base + [{"Content-Type": "text/plain"}],
                      [("key", "ok/k"), ("Content-Type", "TEXT/PLAIN")]), 403, "AccessDenied")
    # A policy for one bucket does not let the form into another.
    other = s3kit.unique_bucket()
    s3.create_bucket(Bucket=other)
    assert_error(send(base, [("key", "ok/k"), ("bucket", bucket)], url_bucket=other), 403,
                 "AccessDenied", '["eq", "$bucket", "' + bucket + '"]')
    s3kit.assert_absent(s3, bucket, "ok/k")
    s3kit.assert_absent(s3, other, "ok/k")


def test_bad_signatures_and_keys(s3env, s3, bucket):
    conditions = [{"bucket": bucket}, {"key": "k"}]
    policy = policy_document(conditions)
    wrong = v2_fields(s3env.main, policy, secret="not the secret")
    r = post(s3env, bucket, encode_form([("key", "k")] + wrong, ("f", b"x")))
    assert_error(r, 403, "SignatureDoesNotMatch")
    reversed_signature = v2_fields(s3env.main, policy)
    reversed_signature[2] = ("signature", reversed_signature[2][1][::-1])
    r = post(s3env, bucket, encode_form([("key", "k")] + reversed_signature, ("f", b"x")))
    assert_error(r, 403, "SignatureDoesNotMatch")
    unknown = s3kit.S3Creds("AKUNKNOWN00000000000", s3env.main.secret_key, "main")
    r = post(s3env, bucket, encode_form([("key", "k")] + v2_fields(unknown, policy), ("f", b"x")))
    assert_error(r, 403, "InvalidAccessKeyId")
    v4 = v4_fields(s3env.main, conditions, secret="not the secret")
    r = post(s3env, bucket, encode_form([("key", "k")] + v4, ("f", b"x")))
    assert_error(r, 403, "SignatureDoesNotMatch")
    # The policy is what is signed: changing it breaks the signature.
    good = v4_fields(s3env.main, conditions)
    tampered = [(n, policy_document(conditions + [["starts-with", "$x-amz-meta-a", ""]])
                 if n == "policy" else v) for n, v in good]
    r = post(s3env, bucket, encode_form([("key", "k")] + tampered, ("f", b"x")))
    assert_error(r, 403, "SignatureDoesNotMatch")
    # The other tenant's key cannot write into this tenant's private bucket.
    other = v2_fields(s3env.other, policy)
    r = post(s3env, bucket, encode_form([("key", "k")] + other, ("f", b"x")))
    assert_error(r, 403, "AccessDenied")
    s3kit.assert_absent(s3, bucket, "k")


def test_missing_and_misplaced_fields(s3env, s3, bucket):
    policy = policy_document([{"bucket": bucket}, {"key": "k"}])
    signed = v2_fields(s3env.main, policy)
    assert_error(post(s3env, bucket, encode_form(signed, ("f", b"x"))), 400, "InvalidArgument",
                 "must contain a field named 'key'")
    assert_error(post(s3env, bucket, encode_form([("key", "k")] + signed[:2], ("f", b"x"))),
                 400, "InvalidArgument", "Signature")
    assert_error(post(s3env, bucket, encode_form([("key", "k")] + signed[1:], ("f", b"x"))),
                 400, "InvalidArgument", "AWSAccessKeyId")
    assert_error(post(s3env, bucket, encode_form([("key", "k")] + signed)), 400,
                 "InvalidArgument", "exactly one file")
    # The file first: the key and the credentials after it are ignored.
    body = encode_form([], ("f", b"x"), after=[("key", "k")] + signed)
    assert_error(post(s3env, bucket, body), 400, "InvalidArgument", "named 'key'")
    # Credentials after the file: an anonymous form, refused.
    body = encode_form([("key", "k")], ("f", b"x"), after=signed)
    assert_error(post(s3env, bucket, body), 403, "AccessDenied")
    s3kit.assert_absent(s3, bucket, "k")


def test_anonymous_form_is_refused(s3env, s3, bucket):
    body = encode_form([("key", "anon"), ("acl", "public-read")], ("f", b"x"))
    assert_error(post(s3env, bucket, body), 403, "AccessDenied")
    s3kit.assert_absent(s3, bucket, "anon")


def test_malformed_requests(s3env, s3, bucket):
    policy = policy_document([{"bucket": bucket}, {"key": "k"}])
    body = encode_form([("key", "k")] + v2_fields(s3env.main, policy), ("f", b"x"))
    assert_error(post(s3env, bucket, body, content_type="application/x-www-form-urlencoded"),
                 412, "PreconditionFailed", "multipart/form-data")
    assert_error(post(s3env, bucket, body, content_type="multipart/form-data"), 400,
                 "MalformedPOSTRequest")
    assert_error(post(s3env, bucket, body,
                      content_type="multipart/form-data; boundary=" + "b" * 71), 400,
                 "MalformedPOSTRequest")
    assert_error(post(s3env, bucket, body.replace(b"\r\n", b"\n")), 400, "MalformedPOSTRequest")
    assert_error(post(s3env, bucket, body[:len(body) // 2]), 400, "MalformedPOSTRequest")
    huge = encode_form([("key", "k"), ("x-ignore-big", "v" * (21 * 1024))], ("f", b"x"))
    assert_error(post(s3env, bucket, huge), 400, "MaxPostPreDataLengthExceededError")
    many = encode_form([("key", "k")] + [(f"x-ignore-{i}", "v" * 1000) for i in range(300)],
                       ("f", b"x"))
    assert_error(post(s3env, bucket, many), 400, "MaxPostPreDataLengthExceededError")
    line = (f"--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"{'n' * 10000}\"\r\n\r\n"
            f"v\r\n--{BOUNDARY}--\r\n").encode()
    assert_error(post(s3env, bucket, line), 400, "MalformedPOSTRequest")
    # A header value with CR LF cannot become stored metadata.
    policy = policy_document([{"bucket": bucket}, {"key": "k"},
                              ["starts-with", "$x-amz-meta-a", ""]])
    body = encode_form([("key", "k"), ("x-amz-meta-a", "1\r\nSet-Cookie: x=y")]
                       + v2_fields(s3env.main, policy), ("f", b"x"))
    assert_error(post(s3env, bucket, body), 400, "InvalidArgument")
    # Metadata is bounded as a PutObject's headers bound it.
    policy = policy_document([{"bucket": bucket}, {"key": "k"},
                              ["starts-with", "$x-amz-meta-", ""]]
                             + [["starts-with", f"$x-amz-meta-m{i}", ""] for i in range(2)])
    body = encode_form([("key", "k"), ("x-amz-meta-m0", "v" * 10000),
                        ("x-amz-meta-m1", "v" * 10000)] + v2_fields(s3env.main, policy),
                       ("f", b"x"))
    assert_error(post(s3env, bucket, body), 400, "MetadataTooLarge")
    s3kit.assert_absent(s3, bucket, "k")
    # A missing bucket.
    body = encode_form([("key", "k")] + v2_fields(s3env.main, policy_document(
        [{"bucket": "no-such-bucket-here"}, {"key": "k"}])), ("f", b"x"))
    assert_error(post(s3env, "no-such-bucket-here", body), 404, "NoSuchBucket")


def test_truncated_body_stores_nothing(s3env, s3, bucket):
    policy = policy_document([{"bucket": bucket}, {"key": "cut"}])
    body = encode_form([("key", "cut")] + v2_fields(s3env.main, policy), ("f", b"z" * MiB))
    request = (f"POST /{bucket} HTTP/1.1\r\nHost: 127.0.0.1:{s3env.port}\r\n"
               f"Content-Type: multipart/form-data; boundary={BOUNDARY}\r\n"
               f"Content-Length: {len(body)}\r\n\r\n").encode()
    with socket.create_connection(("127.0.0.1", s3env.port), timeout=10) as sock:
        sock.sendall(request + body[:len(body) - 100])  # the file's end never arrives
        sock.shutdown(socket.SHUT_WR)
        try:
            while sock.recv(65536):
                pass
        except OSError:
            pass
    time.sleep(0.2)
    s3kit.assert_absent(s3, bucket, "cut")


# ---------------------------------------------------------------------------------------
# A large file streams through bounded memory
# ---------------------------------------------------------------------------------------
@pytest.mark.time_limit(240)
def test_large_file_streams(s3env, s3, bucket):
    size = 50 * MiB
    policy = policy_document([{"bucket": bucket}, {"key": "big"},
                              ["content-length-range", size, size]])
    head = encode_form([("key", "big")] + v2_fields(s3env.main, policy), None)
    head = head[:head.rindex(f"--{BOUNDARY}--".encode())]
    head += (f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="file"; filename="big"\r\n'
             "\r\n").encode()
    tail = f"\r\n--{BOUNDARY}--\r\n".encode()
    digest = hashlib.sha256()

    def pieces():
        yield head
        for block in s3kit.h.PseudoRandomStream.blocks(size, 42):
            digest.update(block)
            yield block
        yield tail

    samples = []
    stop = threading.Event()

    def sample_rss():
        while not stop.is_set():
            samples.append(s3env.server.read_vm_rss_bytes())
            time.sleep(0.05)

    baseline = s3env.server.read_vm_rss_bytes()
    sampler = threading.Thread(target=sample_rss, daemon=True)
    sampler.start()
    try:
        conn = http.client.HTTPConnection("127.0.0.1", s3env.port, timeout=120)
        conn.request("POST", f"/{bucket}", body=pieces(), headers={
            "Content-Type": f"multipart/form-data; boundary={BOUNDARY}",
            "Content-Length": str(len(head) + size + len(tail))})
        response = conn.getresponse()
        content = response.read()
        conn.close()
    finally:
        stop.set()
        sampler.join()
    assert response.status == 204, content[:500]
    assert s3env.native_sha256(bucket, "big") == digest.hexdigest()
    assert s3.head_object(Bucket=bucket, Key="big")["ContentLength"] == size
    growth = max(samples + [baseline]) - baseline
    # The upload pipeline holds about 2 pieces and 3 chunks; a server that buffered the
    # body would grow by the file's 50 MiB.
    assert growth < 40 * MiB, f"server RSS grew by {growth / MiB:.1f} MiB during the upload"
