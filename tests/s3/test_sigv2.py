"""AWS Signature Version 2 against Cairn's S3 endpoint.

Clients that sign with V2: boto3 with Config(signature_version='s3') (botocore's
HmacV1Auth: the Authorization header "AWS AKID:signature" and, for presigned URLs,
HmacV1QueryAuth's AWSAccessKeyId/Expires/Signature) and s3cmd with signature_v2 = True.
Raw requests signed by botocore's V2 signers and sent byte for byte cover the errors:
malformed Authorization, wrong signature, unknown and revoked keys, missing, unparseable
and skewed dates, expired/tampered/too-long presigned URLs, Content-MD5 checks and
aws-chunked bodies (which need V4). A failed write must store nothing."""
from __future__ import annotations

import datetime as dt
import email.utils
import time
import urllib.parse

import pytest

pytest.importorskip("botocore", reason="python3-botocore (python3-boto3) is not installed")
pytest.importorskip("boto3", reason="python3-boto3 is not installed")
from botocore.exceptions import ClientError  # noqa: E402

import s3kit  # noqa: E402
from s3kit import MiB, h  # noqa: E402


def sign_sub_resources_once(request, **_):
    """botocore 1.29 (Debian 12) signs the sub-resource of an operation whose request URI
    holds one twice: "/bucket?location?location", "/bucket/key?uploads?uploads". AWS
    refuses such signatures as well (boto/botocore#3537), and so does Cairn
    (test_botocore_doubled_sub_resource_is_refused); this signs the path alone, as the AWS
    documentation says, before botocore appends the sub-resources."""
    if request.auth_path and "?" in request.auth_path:
        request.auth_path = request.auth_path.split("?", 1)[0]


def v2_client(s3env, creds=None, *, fix_botocore: bool = True):
    """Like s3kit.boto_client (path style, no retries) but signing with V2."""
    import boto3
    import botocore.config

    creds = creds or s3env.main
    config = botocore.config.Config(
        region_name=s3kit.REGION, signature_version="s3", s3={"addressing_style": "path"},
        retries={"total_max_attempts": 1, "mode": "standard"}, connect_timeout=5,
        read_timeout=120)
    session = boto3.session.Session(aws_access_key_id=creds.access_key,
                                    aws_secret_access_key=creds.secret_key,
                                    region_name=s3kit.REGION)
    client = session.client("s3", endpoint_url=s3env.endpoint, config=config)
    if fix_botocore:
        client.meta.events.register("before-sign.s3", sign_sub_resources_once)
    return client


@pytest.fixture(scope="module")
def s3v2(s3env):
    return v2_client(s3env)


def http_date(when: dt.datetime) -> str:
    return email.utils.format_datetime(when.astimezone(dt.timezone.utc), usegmt=True)


def sign_v2(creds, method: str, port: int, path: str, *, headers=None, body: bytes = b"",
            host=None, auth_path=None, date=None) -> dict:
    """Headers (Authorization included) of a request signed by botocore's HmacV1Auth.
    `path` is the raw path and query as sent; `auth_path` the path botocore signs for a
    virtual-hosted request; `date` replaces the Date botocore would send."""
    from botocore.auth import HmacV1Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials

    class Signer(HmacV1Auth):
        def _get_date(self):
            return date if date is not None else super()._get_date()

    all_headers = dict(headers or {})
    all_headers["Host"] = host or f"127.0.0.1:{port}"
    request = AWSRequest(method=method, url=f"http://127.0.0.1:{port}{path}",
                         headers=all_headers, data=body)
    if auth_path is not None:
        request.auth_path = auth_path
    Signer(Credentials(creds.access_key, creds.secret_key)).add_auth(request)
    return dict(request.headers.items())


def presign_v2(creds, method: str, port: int, path: str, expires_in: int) -> str:
    """A V2 presigned path + query (botocore's HmacV1QueryAuth), valid for expires_in s
    (negative: already expired)."""
    from botocore.auth import HmacV1QueryAuth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials

    request = AWSRequest(method=method, url=f"http://127.0.0.1:{port}{path}")
    HmacV1QueryAuth(Credentials(creds.access_key, creds.secret_key),
                    expires=expires_in).add_auth(request)
    split = urllib.parse.urlsplit(request.url)
    return split.path + "?" + split.query


def url_path(url: str) -> str:
    split = urllib.parse.urlsplit(url)
    return split.path + ("?" + split.query if split.query else "")


def send(s3env, method, path, headers, body=b""):
    return s3kit.send(s3env.port, method, path, headers, body)


def assert_error(r: s3kit.RawResponse, status: int, code: str):
    assert r.status == status and r.code == code, f"expected {status} {code}: {r.describe()}"


def assert_absent(s3env, bucket, key):
    assert s3env.native_head(bucket, key) is None, f"{key} was stored"


def replace_param(path: str, name: str, value: str) -> str:
    base, query = path.split("?", 1)
    pairs = urllib.parse.parse_qsl(query, keep_blank_values=True)
    pairs = [(k, value if k == name else v) for k, v in pairs]
    return base + "?" + urllib.parse.urlencode(pairs, quote_via=urllib.parse.quote)


# ---------------------------------------------------------------------------------------
# boto3 with signature_version='s3'
# ---------------------------------------------------------------------------------------
def test_boto3_v2_bucket_and_object_round_trip(s3v2, s3env):
    bucket = s3kit.unique_bucket("v2")
    s3v2.create_bucket(Bucket=bucket)
    assert bucket in [b["Name"] for b in s3v2.list_buckets()["Buckets"]]
    s3v2.head_bucket(Bucket=bucket)
    assert "LocationConstraint" in s3v2.get_bucket_location(Bucket=bucket)  # ?location

    keys = {"plain.txt": b"hello", "dir/sp ace+plus.bin": s3kit.data(70_000, "v2-a"),
            "ünï/çødé~*'()!.dat": s3kit.data(1234, "v2-b"), "empty": b""}
    for key, body in keys.items():
        put = s3v2.put_object(Bucket=bucket, Key=key, Body=body, ContentType="text/x-v2",
                              Metadata={"color": "blue", "shape": "round"})
        assert s3kit.unquote_etag(put["ETag"]) == s3kit.md5_hex(body)
        assert s3env.recorded_sha256(bucket, key) == s3kit.sha256_hex(body), key
    for key, body in keys.items():
        got = s3v2.get_object(Bucket=bucket, Key=key)
        assert got["Body"].read() == body, key
        assert got["ContentType"] == "text/x-v2"
        assert got["Metadata"] == {"color": "blue", "shape": "round"}
        head = s3v2.head_object(Bucket=bucket, Key=key)
        assert head["ContentLength"] == len(body)
    # response-* overrides are signed sub-resources.
    got = s3v2.get_object(Bucket=bucket, Key="plain.txt", ResponseContentType="text/plain",
                          ResponseContentDisposition='attachment; filename="x y.txt"')
    assert got["ContentType"] == "text/plain"
    assert got["ContentDisposition"] == 'attachment; filename="x y.txt"'
    ranged = s3v2.get_object(Bucket=bucket, Key="dir/sp ace+plus.bin", Range="bytes=10-19")
    assert ranged["Body"].read() == keys["dir/sp ace+plus.bin"][10:20]

    listed = s3v2.list_objects_v2(Bucket=bucket, Prefix="dir/")
    assert [o["Key"] for o in listed["Contents"]] == ["dir/sp ace+plus.bin"]
    listed = s3v2.list_objects(Bucket=bucket, Delimiter="/", MaxKeys=10)
    assert {p["Prefix"] for p in listed["CommonPrefixes"]} == {"dir/", "ünï/"}

    s3v2.copy_object(Bucket=bucket, Key="copy.txt", CopySource={"Bucket": bucket,
                                                                "Key": "plain.txt"})
    assert s3v2.get_object(Bucket=bucket, Key="copy.txt")["Body"].read() == b"hello"

    s3v2.put_object_tagging(Bucket=bucket, Key="plain.txt",  # ?tagging
                            Tagging={"TagSet": [{"Key": "k", "Value": "v"}]})
    assert s3v2.get_object_tagging(Bucket=bucket, Key="plain.txt")["TagSet"] == [
        {"Key": "k", "Value": "v"}]

    s3v2.delete_object(Bucket=bucket, Key="copy.txt")
    deleted = s3v2.delete_objects(Bucket=bucket, Delete={  # POST ?delete
        "Objects": [{"Key": k} for k in keys]})
    assert len(deleted["Deleted"]) == len(keys)
    assert s3v2.list_objects_v2(Bucket=bucket)["KeyCount"] == 0
    s3v2.delete_bucket(Bucket=bucket)


def test_boto3_v2_multipart(s3v2, s3env):
    bucket = s3kit.unique_bucket("v2mp")
    s3v2.create_bucket(Bucket=bucket)
    key = "multi part.bin"
    parts_data = [s3kit.data(5 * MiB, "v2-p1"), s3kit.data(1 * MiB + 17, "v2-p2")]
    upload = s3v2.create_multipart_upload(Bucket=bucket, Key=key)  # ?uploads
    upload_id = upload["UploadId"]
    assert any(u["UploadId"] == upload_id
               for u in s3v2.list_multipart_uploads(Bucket=bucket)["Uploads"])
    parts = []
    for number, body in enumerate(parts_data, start=1):  # ?partNumber=N&uploadId=U
        etag = s3v2.upload_part(Bucket=bucket, Key=key, UploadId=upload_id,
                                PartNumber=number, Body=body)["ETag"]
        parts.append({"PartNumber": number, "ETag": etag})
    assert [p["PartNumber"] for p in
            s3v2.list_parts(Bucket=bucket, Key=key, UploadId=upload_id)["Parts"]] == [1, 2]
    s3v2.complete_multipart_upload(Bucket=bucket, Key=key, UploadId=upload_id,
                                   MultipartUpload={"Parts": parts})
    whole = b"".join(parts_data)
    assert s3env.recorded_sha256(bucket, key) == s3kit.sha256_hex(whole)

    aborted = s3v2.create_multipart_upload(Bucket=bucket, Key="gone")["UploadId"]
    s3v2.abort_multipart_upload(Bucket=bucket, Key="gone", UploadId=aborted)
    assert "Uploads" not in s3v2.list_multipart_uploads(Bucket=bucket)


def test_botocore_doubled_sub_resource_is_refused(s3env, s3v2):
    bucket = s3kit.unique_bucket("v2dbl")
    s3v2.create_bucket(Bucket=bucket)
    unfixed = v2_client(s3env, fix_botocore=False)
    unfixed.head_bucket(Bucket=bucket)  # no sub-resource: fine
    with pytest.raises(ClientError) as info:
        unfixed.get_bucket_location(Bucket=bucket)
    assert s3kit.error_code(info.value) == "SignatureDoesNotMatch"


def test_boto3_v2_wrong_secret_and_unknown_key(s3env, s3v2):
    bucket = s3kit.unique_bucket("v2neg")
    s3v2.create_bucket(Bucket=bucket)
    wrong = v2_client(s3env, s3kit.S3Creds(s3env.main.access_key, "x" * 40, "-"))
    with pytest.raises(ClientError) as info:
        wrong.put_object(Bucket=bucket, Key="k", Body=b"x")
    assert s3kit.http_status(info.value) == 403
    assert s3kit.error_code(info.value) == "SignatureDoesNotMatch"
    assert_absent(s3env, bucket, "k")
    unknown = v2_client(s3env, s3kit.S3Creds("AKCAIRNUNKNOWN000000", "x" * 40, "-"))
    with pytest.raises(ClientError) as info:
        unknown.list_buckets()
    assert s3kit.http_status(info.value) == 403
    assert s3kit.error_code(info.value) == "InvalidAccessKeyId"


def test_boto3_v2_with_x_amz_date(s3env, s3v2):
    """botocore signs an added x-amz-date among the x-amz-* lines and keeps its own Date
    on the Date line; the request time is x-amz-date's."""
    bucket = s3kit.unique_bucket("v2date")
    s3v2.create_bucket(Bucket=bucket)
    client = v2_client(s3env)

    def add_amz_date(request, **_):
        request.headers["x-amz-date"] = http_date(s3kit.utc_now())

    client.meta.events.register("before-sign.s3", add_amz_date)
    client.put_object(Bucket=bucket, Key="dated", Body=b"dated")
    assert client.get_object(Bucket=bucket, Key="dated")["Body"].read() == b"dated"


def test_boto3_v2_revoked_key(s3env):
    creds = s3kit.create_s3_key(s3env.data_dir, "v2-revoked")
    client = v2_client(s3env, creds)
    client.list_buckets()
    r = h.run_cli(s3env.data_dir, ["keys", "revoke"], [creds.access_key])
    assert r.returncode == 0, h.cli_summary(r)

    def refused():
        try:
            client.list_buckets()
            return False
        except ClientError:
            return True

    assert h.wait_until(refused, timeout=5), "the revoked key was still accepted after 5 s"
    with pytest.raises(ClientError) as info:
        client.list_buckets()
    assert s3kit.http_status(info.value) == 403
    assert s3kit.error_code(info.value) == "InvalidAccessKeyId"
    assert "revoked" in info.value.response["Error"]["Message"]
    # Someone without the secret learns only what an unknown key id gets.
    headers = sign_v2(s3kit.S3Creds(creds.access_key, "y" * 40, "-"), "GET", s3env.port, "/")
    r = send(s3env, "GET", "/", headers)
    assert_error(r, 403, "InvalidAccessKeyId")
    assert b"revoked" not in r.body


# ---------------------------------------------------------------------------------------
# Presigned V2 URLs
# ---------------------------------------------------------------------------------------
def test_presigned_v2_get_and_put(s3v2, s3env):
    bucket = s3kit.unique_bucket("v2pre")
    s3v2.create_bucket(Bucket=bucket)
    body = s3kit.data(3000, "v2-presigned")
    put_url = s3v2.generate_presigned_url("put_object", Params={"Bucket": bucket, "Key": "p k"},
                                          ExpiresIn=300)
    assert "AWSAccessKeyId=" in put_url and "Signature=" in put_url and "Expires=" in put_url
    r = send(s3env, "PUT", url_path(put_url), {"Host": f"127.0.0.1:{s3env.port}"}, body)
    assert r.status == 200, r.describe()
    assert s3env.recorded_sha256(bucket, "p k") == s3kit.sha256_hex(body)

    get_url = s3v2.generate_presigned_url(
        "get_object", ExpiresIn=300,
        Params={"Bucket": bucket, "Key": "p k", "ResponseContentType": "text/x-presigned"})
    r = send(s3env, "GET", url_path(get_url), {"Host": f"127.0.0.1:{s3env.port}"})
    assert r.status == 200 and r.body == body, r.describe()
    assert r.headers["content-type"] == "text/x-presigned"
    # The same URL with another (unsigned-for) override is refused.
    tampered = url_path(get_url).replace("text%2Fx-presigned", "text%2Fhtml")
    assert tampered != url_path(get_url)
    r = send(s3env, "GET", tampered, {"Host": f"127.0.0.1:{s3env.port}"})
    assert_error(r, 403, "SignatureDoesNotMatch")


def test_presigned_v2_errors(s3v2, s3env):
    bucket = s3kit.unique_bucket("v2prex")
    s3v2.create_bucket(Bucket=bucket)
    s3v2.put_object(Bucket=bucket, Key="k", Body=b"secret bytes")
    host = {"Host": f"127.0.0.1:{s3env.port}"}
    path = f"/{bucket}/k"

    r = send(s3env, "GET", presign_v2(s3env.main, "GET", s3env.port, path, 60), host)
    assert r.status == 200 and r.body == b"secret bytes", r.describe()
    r = send(s3env, "GET", presign_v2(s3env.main, "GET", s3env.port, path, -60), host)
    assert_error(r, 403, "AccessDenied")
    assert b"expired" in r.body
    # Lifetime: at most 7 days.
    r = send(s3env, "GET", presign_v2(s3env.main, "GET", s3env.port, path, 604800), host)
    assert r.status == 200, r.describe()
    r = send(s3env, "GET", presign_v2(s3env.main, "GET", s3env.port, path, 8 * 86400), host)
    assert_error(r, 403, "AccessDenied")

    good = presign_v2(s3env.main, "GET", s3env.port, path, 60)
    for expires in ("soon", "", "-5", "1.5e9"):
        r = send(s3env, "GET", replace_param(good, "Expires", expires), host)
        assert_error(r, 403, "AccessDenied")
    r = send(s3env, "GET", replace_param(good, "Expires", str(int(time.time()) + 120)), host)
    assert_error(r, 403, "SignatureDoesNotMatch")
    r = send(s3env, "GET", replace_param(good, "Signature", "AAAAAAAAAAAAAAAAAAAAAAAAAAA="),
             host)
    assert_error(r, 403, "SignatureDoesNotMatch")
    r = send(s3env, "GET", replace_param(good, "AWSAccessKeyId", "AKCAIRNUNKNOWN000000"), host)
    assert_error(r, 403, "InvalidAccessKeyId")
    r = send(s3env, "GET", good.replace(f"/{bucket}/k", f"/{bucket}/other"), host)
    assert_error(r, 403, "SignatureDoesNotMatch")
    no_expires = "&".join(p for p in good.split("&") if not p.startswith("Expires="))
    r = send(s3env, "GET", no_expires, host)
    assert_error(r, 403, "AccessDenied")
    # Not together with an Authorization header.
    headers = dict(host, Authorization=f"AWS {s3env.main.access_key}:AAAA")
    r = send(s3env, "GET", good, headers)
    assert_error(r, 400, "InvalidArgument")

    # A presigned PUT that fails stores nothing.
    put = presign_v2(s3env.main, "PUT", s3env.port, f"/{bucket}/new", -60)
    r = send(s3env, "PUT", put, host, b"data")
    assert_error(r, 403, "AccessDenied")
    assert_absent(s3env, bucket, "new")


# ---------------------------------------------------------------------------------------
# Raw header-signed requests: errors as AWS gives them
# ---------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def v2bucket(s3v2):
    name = s3kit.unique_bucket("v2raw")
    s3v2.create_bucket(Bucket=name)
    return name


def test_raw_v2_put_and_get(s3env, v2bucket):
    path = f"/{v2bucket}/" + s3kit.quote_key("raw key ü")
    headers = sign_v2(s3env.main, "PUT", s3env.port, path, body=b"raw body",
                      headers={"Content-Type": "text/plain", "x-amz-meta-a": "  b  c  "})
    r = send(s3env, "PUT", path, headers, b"raw body")
    assert r.status == 200, r.describe()
    r = send(s3env, "GET", path, sign_v2(s3env.main, "GET", s3env.port, path))
    assert r.status == 200 and r.body == b"raw body", r.describe()
    assert r.headers["x-amz-meta-a"] == "b  c"


@pytest.mark.parametrize("authorization", [
    "AWS HAHAHA", "AWS :c2WLPFtWHVgbEmeEG93a4cG37dM=", "AWS AKCAIRNUNKNOWN000000:",
    "AWS two words:sig"])
def test_malformed_authorization_is_invalid_argument(s3env, v2bucket, authorization):
    headers = sign_v2(s3env.main, "PUT", s3env.port, f"/{v2bucket}/bad", body=b"x")
    headers["Authorization"] = authorization
    r = send(s3env, "PUT", f"/{v2bucket}/bad", headers, b"x")
    assert_error(r, 400, "InvalidArgument")
    assert_absent(s3env, v2bucket, "bad")


def test_wrong_signature_and_tampering(s3env, v2bucket):
    path = f"/{v2bucket}/tampered"
    headers = sign_v2(s3env.main, "PUT", s3env.port, path, body=b"x",
                      headers={"x-amz-meta-who": "me"})
    signature = headers["Authorization"].split(":", 1)[1]
    flipped = ("B" if signature[0] == "A" else "A") + signature[1:]
    cases = [
        dict(headers, Authorization=f"AWS {s3env.main.access_key}:{flipped}"),
        dict(headers, **{"x-amz-meta-who": "you"}),
        dict(headers, **{"Content-Type": "text/html"}),
        dict(headers, **{"x-amz-acl": "public-read"}),
    ]
    for case in cases:
        r = send(s3env, "PUT", path, case, b"x")
        assert_error(r, 403, "SignatureDoesNotMatch")
    r = send(s3env, "PUT", path + "?tagging", headers, b"x")  # an unsigned sub-resource
    assert_error(r, 403, "SignatureDoesNotMatch")
    assert_absent(s3env, v2bucket, "tampered")
    r = send(s3env, "PUT", path, headers, b"x")
    assert r.status == 200, r.describe()


def test_unknown_key_is_invalid_access_key_id(s3env, v2bucket):
    creds = s3kit.S3Creds("AKCAIRNUNKNOWN000000", "x" * 40, "-")
    headers = sign_v2(creds, "PUT", s3env.port, f"/{v2bucket}/unknown", body=b"x")
    r = send(s3env, "PUT", f"/{v2bucket}/unknown", headers, b"x")
    assert_error(r, 403, "InvalidAccessKeyId")
    assert_absent(s3env, v2bucket, "unknown")


def test_dates(s3env, v2bucket):
    path = f"/{v2bucket}/dated"
    now = s3kit.utc_now()

    def put(headers):
        return send(s3env, "PUT", path, headers, b"x")

    # No Date and no x-amz-date.
    headers = sign_v2(s3env.main, "PUT", s3env.port, path, body=b"x")
    del headers["Date"]
    assert_error(put(headers), 403, "AccessDenied")
    # Unparseable or empty x-amz-date (it wins over a good Date), unparseable Date.
    for bad in ("Bad Date", "", "Tue, 07 Jul 1950 21:53:04 GMT"):
        assert_error(put(sign_v2(s3env.main, "PUT", s3env.port, path, body=b"x",
                                 headers={"x-amz-date": bad})), 403, "AccessDenied")
        assert_error(put(sign_v2(s3env.main, "PUT", s3env.port, path, body=b"x", date=bad)),
                     403, "AccessDenied")
    # More than 15 minutes off, either way, in either header.
    for off in (dt.timedelta(minutes=-16), dt.timedelta(minutes=16),
                dt.timedelta(days=365 * 20)):
        assert_error(put(sign_v2(s3env.main, "PUT", s3env.port, path, body=b"x",
                                 date=http_date(now + off))), 403, "RequestTimeTooSkewed")
        assert_error(put(sign_v2(s3env.main, "PUT", s3env.port, path, body=b"x",
                                 headers={"x-amz-date": http_date(now + off)})),
                     403, "RequestTimeTooSkewed")
    assert_absent(s3env, v2bucket, "dated")
    # Within 15 minutes is fine; a good x-amz-date makes a skewed Date harmless.
    assert put(sign_v2(s3env.main, "PUT", s3env.port, path, body=b"x",
                       date=http_date(now - dt.timedelta(minutes=10)))).status == 200
    assert put(sign_v2(s3env.main, "PUT", s3env.port, path, body=b"x",
                       date=http_date(now - dt.timedelta(days=1)),
                       headers={"x-amz-date": http_date(now)})).status == 200


def test_x_amz_date_with_an_empty_date_line(s3env, v2bucket):
    """The AWS text's form (and s3cmd's): with x-amz-date the Date line is empty."""
    import base64
    import hashlib
    import hmac

    path = f"/{v2bucket}/empty-date-line"
    amz_date = http_date(s3kit.utc_now())
    string_to_sign = f"PUT\n\ntext/plain\n\nx-amz-date:{amz_date}\n{path}"
    signature = base64.b64encode(hmac.new(s3env.main.secret_key.encode(),
                                          string_to_sign.encode(), hashlib.sha1).digest())
    headers = {"Host": f"127.0.0.1:{s3env.port}", "Content-Type": "text/plain",
               "x-amz-date": amz_date,
               "Authorization": f"AWS {s3env.main.access_key}:{signature.decode()}"}
    r = send(s3env, "PUT", path, headers, b"body")
    assert r.status == 200, r.describe()


def test_content_md5_is_checked(s3env, v2bucket):
    path = f"/{v2bucket}/md5"
    for md5, status, code in (("AWS HAHAHA", 400, "InvalidDigest"),
                              ("1B2M2Y8AsgTpgAmY7PhCfg==", 400, "BadDigest")):  # MD5 of ""
        headers = sign_v2(s3env.main, "PUT", s3env.port, path, body=b"body",
                          headers={"Content-MD5": md5})
        assert_error(send(s3env, "PUT", path, headers, b"body"), status, code)
    assert_absent(s3env, v2bucket, "md5")
    import base64
    import hashlib
    good = base64.b64encode(hashlib.md5(b"body").digest()).decode()
    headers = sign_v2(s3env.main, "PUT", s3env.port, path, body=b"body",
                      headers={"Content-MD5": good})
    assert send(s3env, "PUT", path, headers, b"body").status == 200


def test_aws_chunked_needs_v4(s3env, v2bucket):
    path = f"/{v2bucket}/chunked"
    body = s3kit.encode_unsigned_trailer(b"x" * 100, ("x-amz-checksum-crc32",
                                                      s3kit.crc32_b64(b"x" * 100)))
    headers = sign_v2(s3env.main, "PUT", s3env.port, path, body=body, headers={
        "Content-Encoding": "aws-chunked", "x-amz-decoded-content-length": "100",
        "x-amz-content-sha256": "STREAMING-UNSIGNED-PAYLOAD-TRAILER",
        "x-amz-trailer": "x-amz-checksum-crc32"})
    r = send(s3env, "PUT", path, headers, body)
    assert_error(r, 400, "InvalidRequest")
    assert b"Signature Version 4" in r.body
    assert_absent(s3env, v2bucket, "chunked")


def test_virtual_hosted_v2(s3env, v2bucket):
    """The bucket named by the Host is signed as part of the resource."""
    host = f"{v2bucket}.localhost:{s3env.port}"
    path = "/" + s3kit.quote_key("v host/ü.bin")
    headers = sign_v2(s3env.main, "PUT", s3env.port, path, body=b"vhost", host=host,
                      auth_path=f"/{v2bucket}{path}")
    r = send(s3env, "PUT", path, headers, b"vhost")
    assert r.status == 200, r.describe()
    headers = sign_v2(s3env.main, "GET", s3env.port, "/?prefix=v%20host", host=host,
                      auth_path=f"/{v2bucket}/")
    r = send(s3env, "GET", "/?prefix=v%20host", headers)
    assert r.status == 200 and b"<Key>v host/" in r.body, r.describe()
    # Signed without the bucket (as if path style): refused.
    headers = sign_v2(s3env.main, "GET", s3env.port, path, host=host)
    assert_error(send(s3env, "GET", path, headers), 403, "SignatureDoesNotMatch")


# ---------------------------------------------------------------------------------------
# s3cmd with signature_v2 = True
# ---------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def s3cmd_v2(s3env, tmp_path_factory):
    exe = s3kit.require_tool("s3cmd", "the Debian package s3cmd")
    config = s3kit.write_s3cmd_config(tmp_path_factory.mktemp("s3cmd-v2") / "s3cfg", s3env,
                                      signature_v2=True)
    env = s3env.env()

    def run(*args, check: bool = True, debug: bool = False, timeout: float = 180.0):
        r = s3kit.run_tool([exe, "-c", str(config), "--no-progress",
                            *(["--debug"] if debug else []), *args], env, timeout=timeout)
        if check:
            assert r.returncode == 0, s3kit.summary(r)
        return r

    return run


def test_s3cmd_v2(s3cmd_v2, s3env, tmp_path):
    bucket = s3kit.unique_bucket("s3cmdv2")
    made = s3cmd_v2("mb", f"s3://{bucket}", debug=True)
    # It really signs with V2 (s3cmd logs the V2 string to sign as "SignHeaders").
    assert "SignHeaders:" in made.stderr, "s3cmd did not sign with V2"
    small = s3kit.write_random_file(tmp_path / "small name.bin", 100_000, "s3cmd-v2-small")
    big = s3kit.write_random_file(tmp_path / "big.bin", 12 * MiB, "s3cmd-v2-big",
                                  part_size=5 * MiB)
    s3cmd_v2("put", str(tmp_path / "small name.bin"), f"s3://{bucket}/dir/small name.bin")
    s3cmd_v2("put", "--multipart-chunk-size-mb=5", str(tmp_path / "big.bin"),
             f"s3://{bucket}/big.bin")
    assert s3env.recorded_sha256(bucket, "dir/small name.bin") == small["sha256"]
    assert s3env.recorded_sha256(bucket, "big.bin") == big["sha256"]
    listing = s3cmd_v2("ls", "--recursive", f"s3://{bucket}").stdout
    assert f"s3://{bucket}/dir/small name.bin" in listing and f"s3://{bucket}/big.bin" in listing
    s3cmd_v2("get", "--force", f"s3://{bucket}/big.bin", str(tmp_path / "big.out"))
    assert s3kit.sha256_file(tmp_path / "big.out") == big["sha256"]
    s3cmd_v2("info", f"s3://{bucket}/big.bin")
    s3cmd_v2("del", "--recursive", "--force", f"s3://{bucket}")
    s3cmd_v2("rb", f"s3://{bucket}")
    assert f"s3://{bucket}" not in s3cmd_v2("ls").stdout
