"""Hostile S3 clients: response-header injection through the response-* overrides of a GET
(signed and presigned), object and part size limits (EntityTooLarge), a Content-Length of
2^64-1, and a trickling body (RequestTimeout) — each refused with the S3 error and nothing
stored."""
from __future__ import annotations

import socket
import time
import urllib.parse

import pytest

pytest.importorskip("boto3", reason="python3-boto3 is not installed")
from botocore.exceptions import ClientError  # noqa: E402

import s3kit  # noqa: E402
from s3kit import MiB, h  # noqa: E402

INJECTIONS = ["text/plain\r\nSet-Cookie: stolen=1", "a\nX-Injected: 1", "inline\x00", "x\ry"]


@pytest.fixture(scope="module")
def limited(tmp_path_factory):
    """A server with a 12 MiB object limit and a fast minimum body rate."""
    deployment = s3kit.start_deployment(tmp_path_factory.mktemp("s3limits"),
                                        extra_args=["--max-object-size", "12MiB",
                                                    "--min-body-rate", "64KiB"])
    yield deployment
    problems = h.finish_servers([deployment.server])
    if problems:
        pytest.fail("server problems:\n" + "\n".join(problems), pytrace=False)


@pytest.fixture(scope="module")
def ls3(limited):
    return limited.boto()


@pytest.mark.parametrize("value", INJECTIONS)
def test_presigned_response_overrides_with_control_characters_are_refused(ls3, limited, value):
    bucket = s3kit.unique_bucket("inj")
    ls3.create_bucket(Bucket=bucket)
    ls3.put_object(Bucket=bucket, Key="k", Body=b"payload")
    for param in ("ResponseContentType", "ResponseContentDisposition", "ResponseCacheControl"):
        url = ls3.generate_presigned_url(
            "get_object", Params={"Bucket": bucket, "Key": "k", param: value}, ExpiresIn=300)
        parts = urllib.parse.urlsplit(url)
        raw = h.raw_exchange(parts.port, f"GET {parts.path}?{parts.query} HTTP/1.1\r\n"
                             f"Host: {parts.netloc}\r\nConnection: close\r\n\r\n".encode())
        head = raw.split(b"\r\n\r\n", 1)[0]
        assert h.parse_status(raw) == 400, raw[:400]
        assert b"<Code>InvalidArgument</Code>" in raw
        assert b"Set-Cookie" not in head and b"X-Injected" not in head
    # A clean override is still honoured.
    url = ls3.generate_presigned_url(
        "get_object", Params={"Bucket": bucket, "Key": "k",
                              "ResponseContentDisposition": 'attachment; filename="k.txt"'},
        ExpiresIn=300)
    parts = urllib.parse.urlsplit(url)
    r = s3kit.send(parts.port, "GET", parts.path + "?" + parts.query, {"Host": parts.netloc})
    assert r.status == 200 and r.body == b"payload"
    assert r.headers["content-disposition"] == 'attachment; filename="k.txt"'


def test_signed_get_with_injected_override_is_refused(ls3):
    bucket = s3kit.unique_bucket("inj")
    ls3.create_bucket(Bucket=bucket)
    ls3.put_object(Bucket=bucket, Key="k", Body=b"payload")
    with pytest.raises(ClientError) as info:
        ls3.get_object(Bucket=bucket, Key="k", ResponseContentType=INJECTIONS[0])
    assert s3kit.http_status(info.value) == 400
    assert s3kit.error_code(info.value) == "InvalidArgument"


def test_objects_and_parts_over_the_limit_are_entity_too_large(ls3):
    bucket = s3kit.unique_bucket("big")
    ls3.create_bucket(Bucket=bucket)
    with pytest.raises(ClientError) as info:
        ls3.put_object(Bucket=bucket, Key="over", Body=b"o" * (12 * MiB + 1))
    assert s3kit.error_code(info.value) == "EntityTooLarge"
    s3kit.assert_absent(ls3, bucket, "over")
    ls3.put_object(Bucket=bucket, Key="exact", Body=b"e" * (12 * MiB))
    # Each part fits, the whole does not: refused at completion, nothing created.
    upload = ls3.create_multipart_upload(Bucket=bucket, Key="parts")["UploadId"]
    parts = []
    for number in (1, 2, 3):
        etag = ls3.upload_part(Bucket=bucket, Key="parts", UploadId=upload, PartNumber=number,
                               Body=bytes([number]) * (5 * MiB))["ETag"]
        parts.append({"PartNumber": number, "ETag": etag})
    with pytest.raises(ClientError) as info:
        ls3.complete_multipart_upload(Bucket=bucket, Key="parts", UploadId=upload,
                                      MultipartUpload={"Parts": parts})
    assert s3kit.error_code(info.value) == "EntityTooLarge"
    s3kit.assert_absent(ls3, bucket, "parts")
    # A part over the limit is refused on upload.
    with pytest.raises(ClientError) as info:
        ls3.upload_part(Bucket=bucket, Key="parts", UploadId=upload, PartNumber=4,
                        Body=b"4" * (12 * MiB + 1))
    assert s3kit.error_code(info.value) == "EntityTooLarge"
    ls3.abort_multipart_upload(Bucket=bucket, Key="parts", UploadId=upload)


def test_content_length_of_u64_max_is_refused_at_once(ls3, limited):
    bucket = s3kit.unique_bucket("huge")
    ls3.create_bucket(Bucket=bucket)
    req = s3kit.sign(limited.main, "PUT", limited.port, f"/{bucket}/huge",
                     headers={"Content-Length": str(2**64 - 1)},
                     payload_hash="UNSIGNED-PAYLOAD")
    head = f"PUT {req.path} HTTP/1.1\r\n" + "".join(
        f"{k}: {v}\r\n" for k, v in req.headers.items()) + "\r\n"
    started = time.monotonic()
    raw = h.raw_exchange(limited.port, head.encode() + b"x" * 1000, timeout=10,
                         half_close=False)
    assert h.parse_status(raw) == 400 and b"<Code>EntityTooLarge</Code>" in raw, raw[:400]
    assert time.monotonic() - started < 5
    s3kit.assert_absent(ls3, bucket, "huge")


@pytest.mark.time_limit(120)
def test_trickling_put_gets_request_timeout(ls3, limited):
    bucket = s3kit.unique_bucket("slow")
    ls3.create_bucket(Bucket=bucket)
    size = 4 * MiB
    req = s3kit.sign(limited.main, "PUT", limited.port, f"/{bucket}/slow",
                     headers={"Content-Length": str(size)}, payload_hash="UNSIGNED-PAYLOAD")
    head = f"PUT {req.path} HTTP/1.1\r\n" + "".join(
        f"{k}: {v}\r\n" for k, v in req.headers.items()) + "\r\n"
    started = time.monotonic()
    reply = b""
    with socket.create_connection(("127.0.0.1", limited.port), timeout=5) as sock:
        sock.sendall(head.encode())
        for _ in range(60):
            try:
                sock.sendall(b"s" * 1024)
            except OSError:
                break
            sock.settimeout(1.0)
            try:
                reply = sock.recv(65536)
            except socket.timeout:
                continue
            except OSError:
                break
            break
    elapsed = time.monotonic() - started
    assert h.parse_status(reply) == 400 and b"<Code>RequestTimeout</Code>" in reply, reply[:400]
    assert 9 <= elapsed <= 20, elapsed
    s3kit.assert_absent(ls3, bucket, "slow")
