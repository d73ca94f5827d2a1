"""Hostile S3 clients get the answer S3 gives: an unknown storage class is 400
InvalidStorageClass, a CompleteMultipartUpload that loses to an abort is 404 NoSuchUpload
(never InvalidPart), overlong ranges are clamped, unknown methods are 405 MethodNotAllowed,
a revoked access key is reported as inactive to its holder only, bucket-name errors state
the rule that is broken, the internal multipart namespaces are never listed, and
abandoned multipart uploads expire (--multipart-expiry) and their parts' chunks are
reclaimed by GC."""
from __future__ import annotations

import random
import subprocess
import threading
import time

import pytest

pytest.importorskip("boto3", reason="python3-boto3 is not installed")
from botocore.exceptions import ClientError  # noqa: E402

import s3kit  # noqa: E402
from s3kit import MiB, h  # noqa: E402


def client_error(call, *args, **kwargs) -> ClientError:
    with pytest.raises(ClientError) as info:
        call(*args, **kwargs)
    return info.value


# ---------------------------------------------------------------------------------------
# 1. x-amz-storage-class
# ---------------------------------------------------------------------------------------
BAD_CLASSES = ["FOO", "standard", "COLD", "GLACIER_DEEP", "STANDARD_IA2"]
GOOD_CLASSES = {"STANDARD": "STANDARD", "REDUCED_REDUNDANCY": "STANDARD",
                "STANDARD_IA": "STANDARD_IA", "ONEZONE_IA": "STANDARD_IA",
                "INTELLIGENT_TIERING": "STANDARD_IA", "GLACIER": "STANDARD_IA",
                "GLACIER_IR": "STANDARD_IA", "DEEP_ARCHIVE": "STANDARD_IA"}


def assert_invalid_storage_class(e: ClientError):
    assert s3kit.http_status(e) == 400, e.response
    assert s3kit.error_code(e) == "InvalidStorageClass", e.response
    assert "The storage class you specified is not valid" in e.response["Error"]["Message"]


@pytest.mark.parametrize("name", BAD_CLASSES)
def test_unknown_storage_class_is_refused(s3, bucket, name):
    e = client_error(s3.put_object, Bucket=bucket, Key="k", Body=b"x", StorageClass=name)
    assert_invalid_storage_class(e)
    s3kit.assert_absent(s3, bucket, "k")
    e = client_error(s3.create_multipart_upload, Bucket=bucket, Key="m", StorageClass=name)
    assert_invalid_storage_class(e)
    assert s3.list_multipart_uploads(Bucket=bucket).get("Uploads", []) == []
    s3.put_object(Bucket=bucket, Key="src", Body=b"source")
    e = client_error(s3.copy_object, Bucket=bucket, Key="copy", StorageClass=name,
                     CopySource={"Bucket": bucket, "Key": "src"})
    assert_invalid_storage_class(e)
    s3kit.assert_absent(s3, bucket, "copy")


@pytest.mark.parametrize("name,shown", sorted(GOOD_CLASSES.items()))
def test_supported_storage_classes_still_work(s3, bucket, name, shown):
    s3.put_object(Bucket=bucket, Key="k", Body=b"data", StorageClass=name)
    head = s3.head_object(Bucket=bucket, Key="k")
    assert head.get("StorageClass", "STANDARD") == shown
    upload = s3.create_multipart_upload(Bucket=bucket, Key="m", StorageClass=name)
    part = s3.upload_part(Bucket=bucket, Key="m", UploadId=upload["UploadId"], PartNumber=1,
                          Body=b"part")
    s3.complete_multipart_upload(
        Bucket=bucket, Key="m", UploadId=upload["UploadId"],
        MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": part["ETag"]}]})
    assert s3.head_object(Bucket=bucket, Key="m").get("StorageClass", "STANDARD") == shown
    s3.copy_object(Bucket=bucket, Key="copy", StorageClass=name,
                   CopySource={"Bucket": bucket, "Key": "k"})
    assert s3.get_object(Bucket=bucket, Key="copy")["Body"].read() == b"data"


# ---------------------------------------------------------------------------------------
# 2. CompleteMultipartUpload against AbortMultipartUpload
# ---------------------------------------------------------------------------------------
def start_upload(s3, bucket, key, parts):
    upload_id = s3.create_multipart_upload(Bucket=bucket, Key=key)["UploadId"]
    done = []
    for number, body in enumerate(parts, start=1):
        etag = s3.upload_part(Bucket=bucket, Key=key, UploadId=upload_id, PartNumber=number,
                              Body=body)["ETag"]
        done.append({"PartNumber": number, "ETag": etag})
    return upload_id, done


def complete(s3, bucket, key, upload_id, parts):
    return s3.complete_multipart_upload(Bucket=bucket, Key=key, UploadId=upload_id,
                                        MultipartUpload={"Parts": parts})


def test_complete_after_abort_is_no_such_upload(s3, bucket):
    parts = [s3kit.data(5 * MiB, "p1"), s3kit.data(1000, "p2")]
    upload_id, done = start_upload(s3, bucket, "k", parts)
    s3.abort_multipart_upload(Bucket=bucket, Key="k", UploadId=upload_id)
    e = client_error(complete, s3, bucket, "k", upload_id, done)
    assert s3kit.http_status(e) == 404 and s3kit.error_code(e) == "NoSuchUpload", e.response
    s3kit.assert_absent(s3, bucket, "k")
    e = client_error(s3.abort_multipart_upload, Bucket=bucket, Key="k", UploadId=upload_id)
    assert s3kit.error_code(e) == "NoSuchUpload", e.response


@pytest.mark.time_limit(300)
def test_complete_racing_abort_loser_gets_no_such_upload(s3env, bucket):
    """Bounded race: each round completes and aborts one upload at about the same instant
    (one side held back by a random 0-6 ms, so every interleaving comes up: the abort
    removing parts while the complete looks them up included; in every fifth round the
    abort comes 20-300 ms late, so the complete wins some). The loser must get
    NoSuchUpload (never InvalidPart or anything else), and the object is either all there
    (complete won) or absent (abort won)."""
    s3 = s3env.boto()
    s3b = s3env.boto()
    rng = random.Random(20261202)
    outcomes = {"complete": 0, "abort": 0}
    first = s3kit.data(5 * MiB, "race-first")
    for round_number in range(80):
        key = f"race/{round_number}"
        last = s3kit.data(100 + round_number, f"race-last{round_number}")
        # Several parts, so an abort has several to remove while a complete reads them.
        parts = [first, first, first, last] if round_number % 4 == 0 else [first, last]
        delay_complete = rng.uniform(0, 0.006) if rng.random() < 0.5 else 0.0
        delay_abort = rng.uniform(0, 0.006) if delay_complete == 0.0 else 0.0
        if round_number % 5 == 4:  # a late abort: the complete usually wins these
            delay_complete, delay_abort = 0.0, rng.uniform(0.02, 0.3)
        upload_id, done = start_upload(s3, bucket, key, parts)
        barrier = threading.Barrier(2)
        results = {}

        def do_complete():
            barrier.wait()
            time.sleep(delay_complete)
            try:
                complete(s3, bucket, key, upload_id, done)
                results["complete"] = "ok"
            except ClientError as e:
                results["complete"] = (s3kit.http_status(e), s3kit.error_code(e))

        def do_abort():
            barrier.wait()
            time.sleep(delay_abort)
            try:
                s3b.abort_multipart_upload(Bucket=bucket, Key=key, UploadId=upload_id)
                results["abort"] = "ok"
            except ClientError as e:
                results["abort"] = (s3kit.http_status(e), s3kit.error_code(e))

        threads = [threading.Thread(target=do_complete), threading.Thread(target=do_abort)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        loser = (404, "NoSuchUpload")
        if results["complete"] == "ok":
            assert results["abort"] == loser, (round_number, results)
            body = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
            assert body == b"".join(parts), f"round {round_number}: partial object"
            outcomes["complete"] += 1
        else:
            assert results["complete"] == loser, (round_number, results)
            assert results["abort"] == "ok", (round_number, results)
            s3kit.assert_absent(s3, bucket, key)
            outcomes["abort"] += 1
        assert s3.list_multipart_uploads(Bucket=bucket).get("Uploads", []) == []
    print(f"race outcomes: {outcomes}")
    assert outcomes["complete"] and outcomes["abort"], f"one side always won: {outcomes}"


# ---------------------------------------------------------------------------------------
# 3. Range
# ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("header", ["bytes=0-18446744073709551615",
                                    "bytes=0-18446744073709551616", "bytes=0-" + "9" * 40])
def test_overlong_range_is_clamped(s3, bucket, header):
    body = s3kit.data(70000, "range")
    s3.put_object(Bucket=bucket, Key="r", Body=body)
    r = s3.get_object(Bucket=bucket, Key="r", Range=header)
    assert r["ResponseMetadata"]["HTTPStatusCode"] == 206, r["ResponseMetadata"]
    assert r["ContentRange"] == f"bytes 0-{len(body) - 1}/{len(body)}"
    assert r["Body"].read() == body


# ---------------------------------------------------------------------------------------
# 4. Methods
# ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("method", ["FOO", "PATCH", "TRACE", "PROPFIND"])
@pytest.mark.parametrize("path", ["/", "/somebucket", "/somebucket/key"])
def test_unknown_method_is_method_not_allowed(s3env, method, path):
    req = s3kit.sign(s3env.main, method, s3env.port, path)
    r = s3kit.send_signed(req, s3env.port)
    assert r.status == 405 and r.code == "MethodNotAllowed", r.describe()
    assert r.headers.get("content-type", "").startswith(("application/xml", "text/xml"))


# ---------------------------------------------------------------------------------------
# 5. Revoked access key
#   Decision: the holder of a revoked key (a request its secret signs) gets 403
#   InvalidAccessKeyId, as AWS answers for an inactive key, with a message that says the key
#   was revoked. Any other request naming that access key id gets exactly the answer of an
#   access key that never existed, so nobody learns that a key id exists (of this or any
#   other tenant) without holding its secret.
# ---------------------------------------------------------------------------------------
def test_revoked_access_key_is_reported_as_revoked(s3env, tmp_path):
    creds = s3kit.create_s3_key(s3env.data_dir, "revoked-tenant")
    s3 = s3env.boto(creds)
    s3.list_buckets()
    r = h.run_cli(s3env.data_dir, ["keys", "revoke"], [creds.access_key])
    assert r.returncode == 0, h.cli_summary(r)

    def refused():
        try:
            s3.list_buckets()
            return False
        except ClientError:
            return True

    assert h.wait_until(refused, timeout=5), "the revoked key was still accepted after 5 s"
    e = client_error(s3.list_buckets)
    assert s3kit.http_status(e) == 403 and s3kit.error_code(e) == "InvalidAccessKeyId"
    message = e.response["Error"]["Message"]
    assert "revoked" in message and creds.access_key in message, message
    assert creds.secret_key not in message

    unknown = s3kit.S3Creds("AKCAIRNUNKNOWN000000", creds.secret_key, "-")
    wrong = s3kit.S3Creds(creds.access_key, "x" * 40, "-")
    answers = []
    for who in (unknown, wrong):
        reply = s3kit.send_signed(s3kit.sign(who, "GET", s3env.port, "/"), s3env.port)
        assert reply.status == 403 and reply.code == "InvalidAccessKeyId", reply.describe()
        answers.append(reply.body.split(b"<RequestId>")[0])
    assert answers[0] == answers[1], "a revoked key id is told apart from an unknown one"


# ---------------------------------------------------------------------------------------
# 6. Internal namespaces are never listed
# ---------------------------------------------------------------------------------------
def test_internal_namespaces_are_not_listed(s3env, s3, bucket):
    upload_id, _ = start_upload(s3, bucket, "pending", [s3kit.data(3000, "pending")])
    try:
        names = [b["Name"] for b in s3.list_buckets()["Buckets"]]
        assert not any(n.startswith(".") for n in names), names
        usage = s3env.native.usage_json(s3env.main.tenant)
        rows = {row["namespace"] for row in usage["namespaces"]}
        assert not any(n.startswith(".") for n in rows), usage
        assert usage["incomplete_multipart"]["parts"] >= 1, usage
        assert usage["incomplete_multipart"]["logical_bytes"] >= 3000, usage
        for internal in (".uploads", ".parts"):
            r = s3env.native.list(namespace=internal, tenant=s3env.main.tenant)
            assert r.status_code == 400, h.describe(r)
            reply = s3kit.send_signed(s3kit.sign(s3env.main, "GET", s3env.port, f"/{internal}"),
                                      s3env.port)
            assert reply.status == 400 and reply.code == "InvalidBucketName", reply.describe()
    finally:
        s3.abort_multipart_upload(Bucket=bucket, Key="pending", UploadId=upload_id)


# ---------------------------------------------------------------------------------------
# 7. Bucket-name errors state the rule that is enforced
# ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("name,rule", [
    ("my_bucket", "may contain only lowercase letters a-z, digits 0-9, '.' and '-'"),
    ("MyBucket", "may contain only lowercase letters a-z, digits 0-9, '.' and '-'"),
    ("ab", "3 to 63 characters"),
    ("a" * 64, "3 to 63 characters"),
    ("-abc", "start and end with a lowercase letter or a digit"),
    ("abc.", "start and end with a lowercase letter or a digit"),
    ("a..b", "two adjacent '.'"),
    ("10.1.2.3", "IP address"),
    ("xn--abc", "reserved prefix 'xn--'"),
    ("abc-s3alias", "reserved suffix '-s3alias'"),
])
def test_bucket_name_error_states_the_broken_rule(s3env, name, rule):
    reply = s3kit.send_signed(s3kit.sign(s3env.main, "PUT", s3env.port, f"/{name}"), s3env.port)
    assert reply.status == 400 and reply.code == "InvalidBucketName", reply.describe()
    assert rule.encode() in reply.body, reply.describe()
    # The message never offers a character the rule then refuses.
    assert b"'_'" not in reply.body, reply.describe()


# ---------------------------------------------------------------------------------------
# 8. --multipart-expiry
# ---------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def expiring(tmp_path_factory):
    deployment = s3kit.start_deployment(
        tmp_path_factory.mktemp("s3expiry"), other_tenant="",
        extra_args=["--multipart-expiry", "3s", "--gc-interval", "1", "--gc-grace", "0"])
    yield deployment
    problems = h.finish_servers([deployment.server])
    if problems:
        pytest.fail("server problems:\n" + "\n".join(problems), pytrace=False)


def metric(deployment, name: str) -> float:
    text = deployment.native.request("GET", "/metrics").text
    total = 0.0
    for line in text.splitlines():
        if line.startswith(name + " ") or line.startswith(name + "{"):
            total += float(line.rsplit(" ", 1)[1])
    return total


@pytest.mark.time_limit(120)
def test_abandoned_upload_expires_and_its_chunks_are_reclaimed(expiring):
    s3 = expiring.boto()
    bucket = s3kit.unique_bucket("exp")
    s3.create_bucket(Bucket=bucket)
    before = s3kit.chunk_files(expiring.data_dir)
    body = s3kit.data(6 * MiB, "abandoned")
    upload_id = s3.create_multipart_upload(Bucket=bucket, Key="left")["UploadId"]
    etag = s3.upload_part(Bucket=bucket, Key="left", UploadId=upload_id, PartNumber=1,
                          Body=body)["ETag"]
    added = set(s3kit.chunk_files(expiring.data_dir)) - set(before)
    assert added, "the part wrote no chunk file"
    usage = expiring.native.usage_json(expiring.main.tenant)
    assert usage["incomplete_multipart"]["physical_bytes"] == len(body), usage

    def expired():
        return s3.list_multipart_uploads(Bucket=bucket).get("Uploads", []) == []

    assert h.wait_until(expired, timeout=30), "the upload did not expire within 30 s"
    e = client_error(s3.upload_part, Bucket=bucket, Key="left", UploadId=upload_id,
                     PartNumber=2, Body=b"late")
    assert s3kit.error_code(e) == "NoSuchUpload", e.response
    e = client_error(complete, s3, bucket, "left", upload_id, [{"PartNumber": 1, "ETag": etag}])
    assert s3kit.error_code(e) == "NoSuchUpload", e.response
    s3kit.assert_absent(s3, bucket, "left")
    assert metric(expiring, "cairn_multipart_expired_uploads_total") >= 1
    assert "multipart expiry: aborted 1 uploads" in expiring.server.all_logs()

    # GC (grace 0, every second) reclaims the part's chunks like an explicit abort.
    def reclaimed():
        return not (added & set(s3kit.chunk_files(expiring.data_dir)))

    assert h.wait_until(reclaimed, timeout=30), "the expired part's chunks are still on disk"
    usage = expiring.native.usage_json(expiring.main.tenant)
    assert usage["incomplete_multipart"] == {"parts": 0, "logical_bytes": 0,
                                             "physical_bytes": 0}, usage


@pytest.mark.time_limit(60)
def test_young_upload_survives_and_completes(expiring):
    s3 = expiring.boto()
    bucket = s3kit.unique_bucket("young")
    s3.create_bucket(Bucket=bucket)
    upload_id, done = start_upload(s3, bucket, "k", [b"fresh"])
    complete(s3, bucket, "k", upload_id, done)
    assert s3.get_object(Bucket=bucket, Key="k")["Body"].read() == b"fresh"
    time.sleep(4)  # past the expiry: a completed object is never touched
    assert s3.get_object(Bucket=bucket, Key="k")["Body"].read() == b"fresh"


def test_multipart_expiry_option_is_validated(tmp_path):
    for bad in ("soon", "-1s", "5x"):
        server = h.CairnServer(tmp_path / f"d{bad}", extra_args=["--multipart-expiry", bad])
        cmd, env = server.command_and_env(h.free_port())
        r = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=30)
        assert r.returncode == 2, (bad, r.returncode, r.stderr[-500:])
        assert "--multipart-expiry" in r.stderr, r.stderr[-500:]
        server.release_database()
