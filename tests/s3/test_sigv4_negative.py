"""SigV4 authentication, negative and positive, with raw requests signed by botocore's
S3SigV4Auth / S3SigV4QueryAuth and sent byte for byte with http.client: wrong secret,
unknown key, tampered header/query/path/body, expired and tampered presigned URLs, clock
skew, and aws-chunked bodies (signed chunks, signed and unsigned trailers) built by the
small encoders in s3kit.py — each failure must store nothing. The encoders are first
checked against the worked example of the AWS S3 API reference (no server needed)."""
from __future__ import annotations

import datetime as dt
import urllib.parse

import pytest

pytest.importorskip("botocore", reason="python3-botocore (python3-boto3) is not installed")
pytest.importorskip("boto3", reason="python3-boto3 is not installed")
from botocore.exceptions import ClientError  # noqa: E402

import s3kit  # noqa: E402
from s3kit import KiB, S3Creds  # noqa: E402

SIGNED = "STREAMING-AWS4-HMAC-SHA256-PAYLOAD"
SIGNED_TRAILER = "STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER"
UNSIGNED_TRAILER = "STREAMING-UNSIGNED-PAYLOAD-TRAILER"
MINUTE = dt.timedelta(minutes=1)


def object_path(bucket: str, key: str) -> str:
    return f"/{bucket}/{s3kit.quote_key(key)}"


def assert_absent(s3, s3env, bucket, key):
    with pytest.raises(ClientError) as info:
        s3.head_object(Bucket=bucket, Key=key)
    assert s3kit.http_status(info.value) == 404, info.value.response
    assert s3env.native_head(bucket, key) is None


def assert_error(r: s3kit.RawResponse, status: int, code: str):
    assert r.status == status and r.code == code, f"expected {status} {code}: {r.describe()}"
    assert r.headers.get("content-type", "").startswith(("application/xml", "text/xml")), \
        r.describe()


# ---------------------------------------------------------------------------------------
# The encoders against the AWS documentation example (no server)
# ---------------------------------------------------------------------------------------
AWS_EXAMPLE = S3Creds("AKIAIOSFODNN7EXAMPLE", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", "-")


def test_signed_chunk_encoder_matches_the_aws_example():
    """"Signature Calculations for the Authorization Header: Transferring Payload in
    Multiple Chunks" (AWS S3 API reference): PUT /examplebucket/chunkObject.txt, 64 KiB +
    1 KiB of 'a', 2013-05-24T00:00:00Z."""
    when = dt.datetime(2013, 5, 24, tzinfo=dt.timezone.utc)
    req = s3kit.sign(AWS_EXAMPLE, "PUT", 1, "/examplebucket/chunkObject.txt",
                     host="s3.amazonaws.com", payload_hash=SIGNED, when=when,
                     headers={"Content-Encoding": "aws-chunked", "Content-Length": "66824",
                              "x-amz-decoded-content-length": "66560",
                              "x-amz-storage-class": "REDUCED_REDUNDANCY"})
    assert req.signature == "4f232c4386841ef735655705268965c44a0e4690baa4adea153f7db9fa80a0a9"
    body = s3kit.encode_signed_chunks(
        b"a" * 66560, key=s3kit.signing_key(AWS_EXAMPLE.secret_key, "20130524"),
        amz_date=req.amz_date, scope=req.scope, seed=req.signature, chunk_size=65536)
    assert len(body) == 66824
    assert body.startswith(b"10000;chunk-signature=ad80c730a21e5b8d04586a2213dd63b9a0e99e0e"
                           b"2307b0ade35a65485a288648\r\n")
    assert b"\r\n400;chunk-signature=0055627c9e194cb4542bae2aa5492e3c1575bbb81b612b7d234b86" \
           b"a503ef5497\r\n" in body
    assert body.endswith(b"\r\n0;chunk-signature=b6c6ea8a5354eaf15b3cb7646744f4275b71ea724fed"
                         b"81ceb9323e279d449df9\r\n\r\n")


def test_unsigned_trailer_encoder_shape():
    body = s3kit.encode_unsigned_trailer(b"x" * 70000, ("x-amz-checksum-crc32", "AAAAAA=="))
    assert body == (b"10000\r\n" + b"x" * 65536 + b"\r\n" + b"1170\r\n" + b"x" * 4464 +
                    b"\r\n0\r\nx-amz-checksum-crc32:AAAAAA==\r\n\r\n")
    assert s3kit.crc32_b64(b"abc") == "NSRBwg=="  # as botocore computes it


# ---------------------------------------------------------------------------------------
# Header authentication
# ---------------------------------------------------------------------------------------
def test_wrong_secret_is_signature_does_not_match(s3, s3env, bucket):
    wrong = s3env.boto(S3Creds(s3env.main.access_key, "W" * 40, s3env.main.tenant))
    for call, kwargs in ((wrong.list_buckets, {}),
                         (wrong.put_object, dict(Bucket=bucket, Key="k", Body=b"x")),
                         (wrong.get_object, dict(Bucket=bucket, Key="k"))):
        with pytest.raises(ClientError) as info:
            call(**kwargs)
        assert s3kit.error_code(info.value) == "SignatureDoesNotMatch", info.value.response
        assert s3kit.http_status(info.value) == 403
    assert_absent(s3, s3env, bucket, "k")


def test_unknown_access_key_is_invalid_access_key_id(s3, s3env, bucket):
    unknown = s3env.boto(S3Creds("AKUNKNOWN0000000000X", "S" * 40, "nobody"))
    for call, kwargs in ((unknown.list_buckets, {}),
                         (unknown.put_object, dict(Bucket=bucket, Key="k", Body=b"x"))):
        with pytest.raises(ClientError) as info:
            call(**kwargs)
        assert s3kit.error_code(info.value) == "InvalidAccessKeyId", info.value.response
        assert s3kit.http_status(info.value) == 403
    assert_absent(s3, s3env, bucket, "k")


def test_anonymous_request_is_access_denied(s3env, bucket):
    r = s3kit.send(s3env.port, "GET", f"/{bucket}?list-type=2",
                   {"Host": f"127.0.0.1:{s3env.port}"})
    assert_error(r, 403, "AccessDenied")
    r = s3kit.send(s3env.port, "PUT", object_path(bucket, "anon"),
                   {"Host": f"127.0.0.1:{s3env.port}"}, b"x")
    assert_error(r, 403, "AccessDenied")


def test_valid_raw_requests_succeed(s3, s3env, bucket):
    """Controls for the negative cases: the same raw requests, untouched, work."""
    port = s3env.port
    body = s3kit.data(10_000, "raw-ok")
    r = s3kit.send_signed(s3kit.sign(s3env.main, "PUT", port, object_path(bucket, "raw ok"),
                                     body=body, headers={"x-amz-meta-note": "a"}), port)
    assert r.status == 200, r.describe()
    assert s3kit.unquote_etag(r.headers["etag"]) == s3kit.md5_hex(body)
    r = s3kit.send_signed(s3kit.sign(s3env.main, "GET", port, object_path(bucket, "raw ok")),
                          port)
    assert r.status == 200 and r.body == body, r.describe()
    assert r.headers.get("x-amz-meta-note") == "a"
    # UNSIGNED-PAYLOAD
    r = s3kit.send_signed(s3kit.sign(s3env.main, "PUT", port, object_path(bucket, "unsigned"),
                                     body=body, payload_hash="UNSIGNED-PAYLOAD"), port)
    assert r.status == 200, r.describe()
    assert s3kit.sha256_hex(s3.get_object(Bucket=bucket, Key="unsigned")["Body"].read()) == \
        s3kit.sha256_hex(body)
    # a clock 5 minutes off is within the 15 minutes S3 allows
    for offset in (-5 * MINUTE, 5 * MINUTE):
        r = s3kit.send_signed(s3kit.sign(s3env.main, "GET", port, f"/{bucket}?list-type=2",
                                         when=s3kit.utc_now() + offset), port)
        assert r.status == 200, r.describe()


def test_tampered_header_query_path_body(s3, s3env, bucket):
    port = s3env.port
    s3.put_object(Bucket=bucket, Key="k1", Body=b"one")
    s3.put_object(Bucket=bucket, Key="k2", Body=b"two")

    req = s3kit.sign(s3env.main, "PUT", port, object_path(bucket, "tampered"), body=b"x",
                     headers={"x-amz-meta-note": "a"})
    req.headers["x-amz-meta-note"] = "b"
    assert_error(s3kit.send_signed(req, port), 403, "SignatureDoesNotMatch")

    req = s3kit.sign(s3env.main, "GET", port, f"/{bucket}?list-type=2&prefix=k1")
    req.path = f"/{bucket}?list-type=2&prefix=k2"
    assert_error(s3kit.send_signed(req, port), 403, "SignatureDoesNotMatch")

    req = s3kit.sign(s3env.main, "GET", port, f"/{bucket}?list-type=2&prefix=k1")
    req.path += "&max-keys=1"  # an added, unsigned query parameter
    assert_error(s3kit.send_signed(req, port), 403, "SignatureDoesNotMatch")

    req = s3kit.sign(s3env.main, "GET", port, object_path(bucket, "k1"))
    req.path = object_path(bucket, "k2")
    assert_error(s3kit.send_signed(req, port), 403, "SignatureDoesNotMatch")

    req = s3kit.sign(s3env.main, "GET", port, object_path(bucket, "k1"))
    req.headers["X-Amz-Date"] = (s3kit.utc_now() + dt.timedelta(seconds=2)).strftime(
        s3kit.SIGV4_TIMESTAMP)
    assert_error(s3kit.send_signed(req, port), 403, "SignatureDoesNotMatch")

    # a signed payload hash that does not match the body that arrives
    req = s3kit.sign(s3env.main, "PUT", port, object_path(bucket, "k1"), body=b"signed body")
    req.body = b"other body!"
    assert_error(s3kit.send_signed(req, port), 400, "XAmzContentSHA256Mismatch")
    assert s3.get_object(Bucket=bucket, Key="k1")["Body"].read() == b"one"
    assert_absent(s3, s3env, bucket, "tampered")


@pytest.mark.parametrize("minutes", [-20, 20])
def test_clock_skew_over_15_minutes(s3, s3env, bucket, minutes):
    when = s3kit.utc_now() + dt.timedelta(minutes=minutes)
    req = s3kit.sign(s3env.main, "PUT", s3env.port, object_path(bucket, "skewed"), body=b"x",
                     when=when)
    assert_error(s3kit.send_signed(req, s3env.port), 403, "RequestTimeTooSkewed")
    assert_absent(s3, s3env, bucket, "skewed")


# ---------------------------------------------------------------------------------------
# Presigned URLs
# ---------------------------------------------------------------------------------------
def presign(s3, method: str, bucket: str, key: str, expires: int,
            when: dt.datetime = None) -> str:
    with s3kit.botocore_clock(when):
        return s3.generate_presigned_url(method, Params={"Bucket": bucket, "Key": key},
                                         ExpiresIn=expires)


def raw_get(url: str, method: str = "GET", body: bytes = b"") -> s3kit.RawResponse:
    parts = urllib.parse.urlsplit(url)
    return s3kit.send(parts.port, method, parts.path + "?" + parts.query,
                      {"Host": parts.netloc}, body)


def test_expired_presigned_url_is_access_denied(s3, s3env, bucket):
    s3.put_object(Bucket=bucket, Key="p", Body=b"presigned")
    url = presign(s3, "get_object", bucket, "p", 60, when=s3kit.utc_now() - 10 * MINUTE)
    assert_error(raw_get(url), 403, "AccessDenied")
    url = presign(s3, "put_object", bucket, "new", 60, when=s3kit.utc_now() - 10 * MINUTE)
    assert_error(raw_get(url, "PUT", b"data"), 403, "AccessDenied")
    assert_absent(s3, s3env, bucket, "new")


def test_presigned_url_signed_earlier_is_valid_until_it_expires(s3, bucket):
    """The 15-minute skew rule is for header auth; a presigned URL is good for its
    X-Amz-Expires from X-Amz-Date."""
    s3.put_object(Bucket=bucket, Key="p", Body=b"presigned")
    url = presign(s3, "get_object", bucket, "p", 3600, when=s3kit.utc_now() - 20 * MINUTE)
    r = raw_get(url)
    assert r.status == 200 and r.body == b"presigned", r.describe()


def test_tampered_presigned_url(s3, s3env, bucket):
    s3.put_object(Bucket=bucket, Key="p", Body=b"presigned")
    s3.put_object(Bucket=bucket, Key="q", Body=b"other")
    url = presign(s3, "get_object", bucket, "p", 300)
    assert raw_get(url).status == 200
    assert_error(raw_get(url.replace(f"/{bucket}/p?", f"/{bucket}/q?")), 403,
                 "SignatureDoesNotMatch")
    assert_error(raw_get(url.replace("X-Amz-Expires=300", "X-Amz-Expires=301")), 403,
                 "SignatureDoesNotMatch")
    signature = urllib.parse.parse_qs(urllib.parse.urlsplit(url).query)["X-Amz-Signature"][0]
    flipped = signature[:-1] + ("0" if signature[-1] != "0" else "1")
    assert_error(raw_get(url.replace(signature, flipped)), 403, "SignatureDoesNotMatch")
    other_key = url.replace(urllib.parse.quote(s3env.main.access_key),
                            urllib.parse.quote(s3env.other.access_key))
    assert_error(raw_get(other_key), 403, "SignatureDoesNotMatch")


def test_presigned_url_expiring_beyond_a_week_is_rejected(s3, bucket):
    s3.put_object(Bucket=bucket, Key="p", Body=b"presigned")
    url = presign(s3, "get_object", bucket, "p", 604801)
    r = raw_get(url)
    assert r.status == 400 and r.code == "AuthorizationQueryParametersError", r.describe()


# ---------------------------------------------------------------------------------------
# aws-chunked bodies
# ---------------------------------------------------------------------------------------
def chunked_put(s3env, bucket: str, key: str, payload: bytes, *, mode: str,
                trailer_name: str = None, trailer_value: str = None,
                chunk_size: int = 64 * KiB, mutate=None, decoded_length: int = None):
    """PUT with an aws-chunked body in `mode`; `mutate(body) -> body` corrupts it after
    encoding (keeping its length, so Content-Length stays right)."""
    port = s3env.port
    headers = {"Content-Encoding": "aws-chunked",
               "x-amz-decoded-content-length": str(len(payload) if decoded_length is None
                                                   else decoded_length)}
    trailer = (trailer_name, trailer_value) if trailer_name else None
    if trailer_name:
        headers["x-amz-trailer"] = trailer_name
    placeholder = dict(key=b"k", amz_date="20000101T000000Z", scope="s", seed="0" * 64,
                       chunk_size=chunk_size, trailer=trailer)
    if mode == UNSIGNED_TRAILER:
        encoded_length = len(s3kit.encode_unsigned_trailer(payload, trailer,
                                                           chunk_size=chunk_size))
    else:
        encoded_length = len(s3kit.encode_signed_chunks(payload, **placeholder))
    headers["Content-Length"] = str(encoded_length)
    req = s3kit.sign(s3env.main, "PUT", port, object_path(bucket, key), headers=headers,
                     payload_hash=mode)
    if mode == UNSIGNED_TRAILER:
        body = s3kit.encode_unsigned_trailer(payload, trailer, chunk_size=chunk_size)
    else:
        body = s3kit.encode_signed_chunks(
            payload, key=s3kit.signing_key(s3env.main.secret_key, req.scope_date),
            amz_date=req.amz_date, scope=req.scope, seed=req.signature,
            chunk_size=chunk_size, trailer=trailer)
    assert len(body) == encoded_length
    if mutate:
        body = mutate(body)
        assert len(body) == encoded_length
    req.body = body
    return s3kit.send_signed(req, port)


def flip_byte_of(needle: bytes):
    def mutate(body: bytes) -> bytes:
        at = body.index(needle)
        return body[:at] + bytes([body[at] ^ 0x01]) + body[at + 1:]
    return mutate


def assert_stored(s3, s3env, bucket, key, payload):
    got = s3.get_object(Bucket=bucket, Key=key)
    assert s3kit.sha256_hex(got["Body"].read()) == s3kit.sha256_hex(payload)
    assert got["ContentLength"] == len(payload)
    assert "aws-chunked" not in (got.get("ContentEncoding") or ""), \
        "the aws-chunked content coding must not be stored with the object"
    assert s3env.recorded_sha256(bucket, key) == s3kit.sha256_hex(payload)


PAYLOAD = s3kit.data(200 * KiB + 17, "aws-chunked")


def test_signed_chunks_accepted(s3, s3env, bucket):
    r = chunked_put(s3env, bucket, "signed", PAYLOAD, mode=SIGNED)
    assert r.status == 200, r.describe()
    assert s3kit.unquote_etag(r.headers["etag"]) == s3kit.md5_hex(PAYLOAD)
    assert_stored(s3, s3env, bucket, "signed", PAYLOAD)
    r = chunked_put(s3env, bucket, "signed-small-chunks", PAYLOAD[:20000], mode=SIGNED,
                    chunk_size=8 * KiB)  # below the 8 KiB AWS minimum is not tested
    assert r.status == 200, r.describe()
    assert_stored(s3, s3env, bucket, "signed-small-chunks", PAYLOAD[:20000])


def test_signed_chunks_with_signed_trailer_accepted(s3, s3env, bucket):
    r = chunked_put(s3env, bucket, "signed-trailer", PAYLOAD, mode=SIGNED_TRAILER,
                    trailer_name="x-amz-checksum-crc32",
                    trailer_value=s3kit.crc32_b64(PAYLOAD))
    assert r.status == 200, r.describe()
    assert_stored(s3, s3env, bucket, "signed-trailer", PAYLOAD)


def test_signed_chunks_corrupted_data_byte_stores_nothing(s3, s3env, bucket):
    s3.put_object(Bucket=bucket, Key="existing", Body=b"keep me")
    for key in ("corrupt", "existing"):
        r = chunked_put(s3env, bucket, key, PAYLOAD, mode=SIGNED,
                        mutate=flip_byte_of(PAYLOAD[70000:70032]))
        if r.status:  # the server may also drop the connection after answering early
            assert_error(r, 403, "SignatureDoesNotMatch")
    assert_absent(s3, s3env, bucket, "corrupt")
    assert s3.get_object(Bucket=bucket, Key="existing")["Body"].read() == b"keep me"


def test_signed_chunks_corrupted_chunk_signature_stores_nothing(s3, s3env, bucket):
    def mutate(body: bytes) -> bytes:
        at = body.index(b";chunk-signature=", 10) + len(b";chunk-signature=")
        at = body.index(b";chunk-signature=", at) + len(b";chunk-signature=") + 5
        return body[:at] + (b"0" if body[at:at + 1] != b"0" else b"1") + body[at + 1:]
    r = chunked_put(s3env, bucket, "badsig", PAYLOAD, mode=SIGNED, mutate=mutate)
    if r.status:
        assert_error(r, 403, "SignatureDoesNotMatch")
    assert_absent(s3, s3env, bucket, "badsig")


def test_signed_chunks_wrong_decoded_length_stores_nothing(s3, s3env, bucket):
    r = chunked_put(s3env, bucket, "short", PAYLOAD, mode=SIGNED,
                    decoded_length=len(PAYLOAD) + 1)
    if r.status:
        assert r.status == 400 and r.code, r.describe()
    assert_absent(s3, s3env, bucket, "short")


def test_unsigned_trailer_accepted(s3, s3env, bucket):
    for name, value in (("x-amz-checksum-crc32", s3kit.crc32_b64(PAYLOAD)),
                        ("x-amz-checksum-sha256", s3kit.sha256_b64(PAYLOAD))):
        r = chunked_put(s3env, bucket, f"trailer-{name}", PAYLOAD, mode=UNSIGNED_TRAILER,
                        trailer_name=name, trailer_value=value)
        assert r.status == 200, r.describe()
        assert_stored(s3, s3env, bucket, f"trailer-{name}", PAYLOAD)


@pytest.mark.parametrize("name,wrong", [
    ("x-amz-checksum-crc32", s3kit.crc32_b64(b"something else")),
    ("x-amz-checksum-sha256", s3kit.sha256_b64(b"something else")),
])
def test_unsigned_trailer_bad_checksum_is_bad_digest(s3, s3env, bucket, name, wrong):
    s3.put_object(Bucket=bucket, Key="existing", Body=b"keep me")
    for key in ("bad-trailer", "existing"):
        r = chunked_put(s3env, bucket, key, PAYLOAD, mode=UNSIGNED_TRAILER,
                        trailer_name=name, trailer_value=wrong)
        assert_error(r, 400, "BadDigest")
    assert_absent(s3, s3env, bucket, "bad-trailer")
    assert s3.get_object(Bucket=bucket, Key="existing")["Body"].read() == b"keep me"


def test_signed_trailer_bad_checksum_is_bad_digest(s3, s3env, bucket):
    r = chunked_put(s3env, bucket, "bad-signed-trailer", PAYLOAD, mode=SIGNED_TRAILER,
                    trailer_name="x-amz-checksum-crc32",
                    trailer_value=s3kit.crc32_b64(b"something else"))
    assert_error(r, 400, "BadDigest")
    assert_absent(s3, s3env, bucket, "bad-signed-trailer")
