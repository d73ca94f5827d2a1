"""Tenant isolation through S3: tenant `main`'s keys (bootstrap) and tenant `other`'s keys
(`cairn keys create --s3 --tenant other`) cannot see or touch each other's private buckets.

Bucket names are global, as in S3: a name one tenant created cannot be created by another
(409 BucketAlreadyExists), and every operation of another tenant on a private bucket answers
403 AccessDenied (S3's answer; it confirms only that the name is taken, which CreateBucket
tells anyone anyway). Nothing of the owner's changes. Buckets shared on purpose (canned
ACLs, bucket policies) are tested in test_s3_access.py."""
from __future__ import annotations

import json

import pytest

pytest.importorskip("boto3", reason="python3-boto3 is not installed")
from botocore.exceptions import ClientError  # noqa: E402

import s3kit  # noqa: E402
from s3kit import h  # noqa: E402


def denied(fn, **kwargs):
    """`fn` fails with 403 AccessDenied (HEAD: a bare 403)."""
    with pytest.raises(ClientError) as info:
        fn(**kwargs)
    status, code = s3kit.http_status(info.value), s3kit.error_code(info.value)
    assert status == 403 and code in ("AccessDenied", "403"), \
        f"{fn.__name__}: expected 403 AccessDenied, got {status} {code}: {info.value.response}"


@pytest.fixture
def a_bucket(s3):
    """A bucket of tenant `main` with one object."""
    name = s3kit.unique_bucket("iso")
    s3.create_bucket(Bucket=name)
    s3.put_object(Bucket=name, Key="secret.txt", Body=b"main's data")
    return name


def test_list_buckets_shows_only_own(s3, s3_other, a_bucket):
    b_bucket = s3kit.unique_bucket("iso")
    s3_other.create_bucket(Bucket=b_bucket)
    mine = [b["Name"] for b in s3.list_buckets()["Buckets"]]
    theirs = [b["Name"] for b in s3_other.list_buckets()["Buckets"]]
    assert a_bucket in mine and b_bucket not in mine
    assert b_bucket in theirs and a_bucket not in theirs


def test_other_tenant_cannot_touch_bucket(s3, s3_other, s3env, a_bucket):
    b = s3_other
    denied(b.head_bucket, Bucket=a_bucket)
    denied(b.get_bucket_location, Bucket=a_bucket)
    denied(b.list_objects_v2, Bucket=a_bucket)
    denied(b.list_objects, Bucket=a_bucket)
    denied(b.get_object, Bucket=a_bucket, Key="secret.txt")
    denied(b.get_object, Bucket=a_bucket, Key="no-such-key")  # 403: may not list either
    denied(b.head_object, Bucket=a_bucket, Key="secret.txt")
    denied(b.put_object, Bucket=a_bucket, Key="secret.txt", Body=b"overwritten")
    denied(b.put_object, Bucket=a_bucket, Key="planted", Body=b"planted")
    denied(b.delete_object, Bucket=a_bucket, Key="secret.txt")
    denied(b.delete_objects, Bucket=a_bucket, Delete={"Objects": [{"Key": "secret.txt"}]})
    denied(b.get_object_tagging, Bucket=a_bucket, Key="secret.txt")
    denied(b.put_object_tagging, Bucket=a_bucket, Key="secret.txt",
           Tagging={"TagSet": [{"Key": "a", "Value": "b"}]})
    denied(b.get_object_acl, Bucket=a_bucket, Key="secret.txt")
    denied(b.put_object_acl, Bucket=a_bucket, Key="secret.txt", ACL="public-read")
    denied(b.get_bucket_acl, Bucket=a_bucket)
    denied(b.put_bucket_acl, Bucket=a_bucket, ACL="public-read-write")
    denied(b.get_bucket_policy, Bucket=a_bucket)
    denied(b.put_bucket_policy, Bucket=a_bucket, Policy=json.dumps({
        "Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": "*",
                                                "Action": "s3:*",
                                                "Resource": f"arn:aws:s3:::{a_bucket}/*"}]}))
    denied(b.create_multipart_upload, Bucket=a_bucket, Key="mp")
    denied(b.list_multipart_uploads, Bucket=a_bucket)
    denied(b.delete_bucket, Bucket=a_bucket)

    # copying out of it into a bucket of their own
    own = s3kit.unique_bucket("iso")
    b.create_bucket(Bucket=own)
    denied(b.copy_object, Bucket=own, Key="stolen",
           CopySource={"Bucket": a_bucket, "Key": "secret.txt"})
    up = b.create_multipart_upload(Bucket=own, Key="stolen-mp")["UploadId"]
    denied(b.upload_part_copy, Bucket=own, Key="stolen-mp", UploadId=up, PartNumber=1,
           CopySource={"Bucket": a_bucket, "Key": "secret.txt"})
    b.abort_multipart_upload(Bucket=own, Key="stolen-mp", UploadId=up)
    assert b.list_objects_v2(Bucket=own)["KeyCount"] == 0

    # nothing changed for the owner
    assert s3.get_object(Bucket=a_bucket, Key="secret.txt")["Body"].read() == b"main's data"
    assert [o["Key"] for o in s3.list_objects_v2(Bucket=a_bucket)["Contents"]] == ["secret.txt"]
    assert s3.get_object_tagging(Bucket=a_bucket, Key="secret.txt")["TagSet"] == []
    grants = s3.get_bucket_acl(Bucket=a_bucket)["Grants"]
    assert [g["Permission"] for g in grants] == ["FULL_CONTROL"], grants
    with pytest.raises(ClientError):
        s3.get_bucket_policy(Bucket=a_bucket)
    s3.head_bucket(Bucket=a_bucket)
    assert s3env.native_get(a_bucket, "planted").status_code == 404
    assert s3env.native_get(a_bucket, "planted", tenant=s3env.other.tenant).status_code == 404


def test_bucket_names_are_global(s3, s3_other, a_bucket):
    with pytest.raises(ClientError) as info:
        s3_other.create_bucket(Bucket=a_bucket)
    assert (s3kit.http_status(info.value), s3kit.error_code(info.value)) == \
        (409, "BucketAlreadyExists"), info.value.response
    assert a_bucket not in [b["Name"] for b in s3_other.list_buckets()["Buckets"]]
    # once the owner deletes it, the name is free for anyone
    s3.delete_object(Bucket=a_bucket, Key="secret.txt")
    s3.delete_bucket(Bucket=a_bucket)
    s3_other.create_bucket(Bucket=a_bucket)
    s3_other.put_object(Bucket=a_bucket, Key="k", Body=b"other's data")
    denied(s3.get_object, Bucket=a_bucket, Key="k")
    s3_other.delete_object(Bucket=a_bucket, Key="k")
    s3_other.delete_bucket(Bucket=a_bucket)


def test_multipart_upload_ids_do_not_cross_tenants(s3, s3_other, a_bucket):
    up = s3.create_multipart_upload(Bucket=a_bucket, Key="mp")["UploadId"]
    s3.upload_part(Bucket=a_bucket, Key="mp", UploadId=up, PartNumber=1, Body=b"part")
    own = s3kit.unique_bucket("iso")
    s3_other.create_bucket(Bucket=own)
    for bucket, expected in ((a_bucket, "AccessDenied"), (own, "NoSuchUpload")):
        for call, kwargs in (
                (s3_other.upload_part, dict(PartNumber=2, Body=b"evil")),
                (s3_other.list_parts, {}),
                (s3_other.abort_multipart_upload, {}),
                (s3_other.complete_multipart_upload,
                 dict(MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": '"x"'}]}))):
            with pytest.raises(ClientError) as info:
                call(Bucket=bucket, Key="mp", UploadId=up, **kwargs)
            assert s3kit.error_code(info.value) == expected, info.value.response
    assert not s3_other.list_multipart_uploads(Bucket=own).get("Uploads")
    parts = s3.list_parts(Bucket=a_bucket, Key="mp", UploadId=up)["Parts"]
    assert [p["PartNumber"] for p in parts] == [1]
    s3.abort_multipart_upload(Bucket=a_bucket, Key="mp", UploadId=up)
    s3_other.delete_bucket(Bucket=own)


def test_presigned_urls_reach_only_the_signers_tenant(s3, s3_other, a_bucket):
    session = h.new_session()
    own = s3.generate_presigned_url("get_object",
                                    Params={"Bucket": a_bucket, "Key": "secret.txt"},
                                    ExpiresIn=300)
    r = session.get(own, timeout=30)
    assert r.status_code == 200 and r.content == b"main's data", h.describe(r)

    # other's presigned URL for main's bucket: signed by a key that may not read it
    url = s3_other.generate_presigned_url("get_object",
                                          Params={"Bucket": a_bucket, "Key": "secret.txt"},
                                          ExpiresIn=300)
    r = session.get(url, timeout=30)
    assert r.status_code == 403 and s3kit.s3_error_code(r.content) == "AccessDenied", \
        h.describe(r)
    put_url = s3_other.generate_presigned_url("put_object",
                                              Params={"Bucket": a_bucket, "Key": "secret.txt"},
                                              ExpiresIn=300)
    r = session.put(put_url, data=b"overwritten", timeout=30)
    assert r.status_code == 403 and s3kit.s3_error_code(r.content) == "AccessDenied", \
        h.describe(r)
    assert s3.get_object(Bucket=a_bucket, Key="secret.txt")["Body"].read() == b"main's data"


def test_native_credentials_of_other_tenant_see_nothing(s3, s3env, a_bucket):
    """Control through the native API: main's S3 object exists only under tenant main."""
    listed = s3env.native.list_all(namespace=a_bucket, tenant=s3env.other.tenant)
    assert listed == []
    listed = s3env.native.list_all(namespace=a_bucket, tenant=s3env.main.tenant)
    assert [o["key"] for o in listed] == ["secret.txt"]
