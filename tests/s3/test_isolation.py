"""Tenant isolation through S3: tenant `main`'s keys (bootstrap) and tenant `other`'s keys
(`cairn keys create --s3 --tenant other`) cannot see or touch each other's buckets.

Decision documented here: bucket names are per tenant (a bucket is a namespace of the key's
tenant), so another tenant's bucket simply does not exist for you. Cairn answers 404 —
never 403 AccessDenied, which would confirm the name is taken — for every operation on a
bucket name that only another tenant has: NoSuchBucket for bucket operations; object
operations may answer NoSuchKey (or, for DeleteObject, a no-op 204), which isolates just
as well (the exact S3 codes for a missing bucket are checked in test_boto3). Both tenants
may own a bucket of the same name, each seeing only its own objects. Presigned URLs carry
the signer's tenant and reach only its buckets."""
from __future__ import annotations

import pytest

pytest.importorskip("boto3", reason="python3-boto3 is not installed")
from botocore.exceptions import ClientError  # noqa: E402

import s3kit  # noqa: E402
from s3kit import h  # noqa: E402


def no_such_bucket(fn, *, also=(), **kwargs):
    """`fn` fails with 404 NoSuchBucket (HEAD: a bare 404). `also`: further acceptable
    404 codes (a copy source may be reported as NoSuchKey: isolation holds either way;
    test_boto3 checks the exact code)."""
    with pytest.raises(ClientError) as info:
        fn(**kwargs)
    status, code = s3kit.http_status(info.value), s3kit.error_code(info.value)
    assert status == 404 and code in ("NoSuchBucket", "404", *also), \
        f"{fn.__name__}: expected 404 NoSuchBucket, got {status} {code}: {info.value.response}"


OBJECT_404 = ("NoSuchKey",)


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
    no_such_bucket(b.head_bucket, Bucket=a_bucket)
    no_such_bucket(b.get_bucket_location, Bucket=a_bucket)
    no_such_bucket(b.list_objects_v2, Bucket=a_bucket)
    no_such_bucket(b.list_objects, Bucket=a_bucket)
    no_such_bucket(b.get_object, also=OBJECT_404, Bucket=a_bucket, Key="secret.txt")
    no_such_bucket(b.head_object, also=OBJECT_404, Bucket=a_bucket, Key="secret.txt")
    no_such_bucket(b.put_object, also=OBJECT_404, Bucket=a_bucket, Key="secret.txt",
                   Body=b"overwritten")
    no_such_bucket(b.put_object, also=OBJECT_404, Bucket=a_bucket, Key="planted",
                   Body=b"planted")
    try:  # S3 says NoSuchBucket (test_boto3 checks that); here only the effect matters
        b.delete_object(Bucket=a_bucket, Key="secret.txt")
    except ClientError as e:
        assert s3kit.http_status(e) == 404, e.response
    no_such_bucket(b.delete_objects, Bucket=a_bucket,
                   Delete={"Objects": [{"Key": "secret.txt"}]})
    no_such_bucket(b.get_object_tagging, also=OBJECT_404, Bucket=a_bucket, Key="secret.txt")
    no_such_bucket(b.put_object_tagging, also=OBJECT_404, Bucket=a_bucket, Key="secret.txt",
                   Tagging={"TagSet": [{"Key": "a", "Value": "b"}]})
    no_such_bucket(b.create_multipart_upload, Bucket=a_bucket, Key="mp")
    no_such_bucket(b.list_multipart_uploads, Bucket=a_bucket)
    no_such_bucket(b.delete_bucket, Bucket=a_bucket)

    # copying out of it into a bucket of their own
    own = s3kit.unique_bucket("iso")
    b.create_bucket(Bucket=own)
    no_such_bucket(b.copy_object, Bucket=own, Key="stolen", also=("NoSuchKey",),
                   CopySource={"Bucket": a_bucket, "Key": "secret.txt"})
    up = b.create_multipart_upload(Bucket=own, Key="stolen-mp")["UploadId"]
    no_such_bucket(b.upload_part_copy, Bucket=own, Key="stolen-mp", UploadId=up, PartNumber=1,
                   also=("NoSuchKey",), CopySource={"Bucket": a_bucket, "Key": "secret.txt"})
    b.abort_multipart_upload(Bucket=own, Key="stolen-mp", UploadId=up)
    assert b.list_objects_v2(Bucket=own)["KeyCount"] == 0

    # nothing changed for the owner
    assert s3.get_object(Bucket=a_bucket, Key="secret.txt")["Body"].read() == b"main's data"
    assert [o["Key"] for o in s3.list_objects_v2(Bucket=a_bucket)["Contents"]] == ["secret.txt"]
    s3.head_bucket(Bucket=a_bucket)
    assert s3env.native_get(a_bucket, "planted").status_code == 404
    assert s3env.native_get(a_bucket, "planted", tenant=s3env.other.tenant).status_code == 404


def test_same_bucket_name_in_two_tenants(s3, s3_other, s3env, a_bucket):
    s3_other.create_bucket(Bucket=a_bucket)  # a different bucket that happens to share the name
    assert s3_other.list_objects_v2(Bucket=a_bucket)["KeyCount"] == 0
    s3_other.put_object(Bucket=a_bucket, Key="secret.txt", Body=b"other's data")
    assert s3.get_object(Bucket=a_bucket, Key="secret.txt")["Body"].read() == b"main's data"
    assert s3_other.get_object(Bucket=a_bucket, Key="secret.txt")["Body"].read() == \
        b"other's data"
    assert s3env.native_get(a_bucket, "secret.txt").content == b"main's data"
    assert s3env.native_get(a_bucket, "secret.txt", tenant=s3env.other.tenant).content == \
        b"other's data"
    s3_other.delete_object(Bucket=a_bucket, Key="secret.txt")
    s3_other.delete_bucket(Bucket=a_bucket)
    assert s3.get_object(Bucket=a_bucket, Key="secret.txt")["Body"].read() == b"main's data"
    s3.head_bucket(Bucket=a_bucket)


def test_multipart_upload_ids_do_not_cross_tenants(s3, s3_other, a_bucket):
    up = s3.create_multipart_upload(Bucket=a_bucket, Key="mp")["UploadId"]
    s3.upload_part(Bucket=a_bucket, Key="mp", UploadId=up, PartNumber=1, Body=b"part")
    s3_other.create_bucket(Bucket=a_bucket)  # same name, the other tenant's own bucket
    for call, kwargs in (
            (s3_other.upload_part, dict(PartNumber=2, Body=b"evil")),
            (s3_other.list_parts, {}),
            (s3_other.abort_multipart_upload, {}),
            (s3_other.complete_multipart_upload,
             dict(MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": '"x"'}]}))):
        with pytest.raises(ClientError) as info:
            call(Bucket=a_bucket, Key="mp", UploadId=up, **kwargs)
        assert s3kit.error_code(info.value) == "NoSuchUpload", info.value.response
    assert not s3_other.list_multipart_uploads(Bucket=a_bucket).get("Uploads")
    parts = s3.list_parts(Bucket=a_bucket, Key="mp", UploadId=up)["Parts"]
    assert [p["PartNumber"] for p in parts] == [1]
    s3.abort_multipart_upload(Bucket=a_bucket, Key="mp", UploadId=up)


def test_presigned_urls_reach_only_the_signers_tenant(s3, s3_other, a_bucket):
    session = h.new_session()
    own = s3.generate_presigned_url("get_object",
                                    Params={"Bucket": a_bucket, "Key": "secret.txt"},
                                    ExpiresIn=300)
    r = session.get(own, timeout=30)
    assert r.status_code == 200 and r.content == b"main's data", h.describe(r)

    # other's presigned URL for main's bucket name: other has no such bucket
    url = s3_other.generate_presigned_url("get_object",
                                          Params={"Bucket": a_bucket, "Key": "secret.txt"},
                                          ExpiresIn=300)
    r = session.get(url, timeout=30)
    assert r.status_code == 404 and s3kit.s3_error_code(r.content) == "NoSuchBucket", \
        h.describe(r)
    put_url = s3_other.generate_presigned_url("put_object",
                                              Params={"Bucket": a_bucket, "Key": "secret.txt"},
                                              ExpiresIn=300)
    r = session.put(put_url, data=b"overwritten", timeout=30)
    assert r.status_code == 404 and s3kit.s3_error_code(r.content) == "NoSuchBucket", \
        h.describe(r)

    # once other owns a bucket of that name, its URL reaches its own object, never main's
    s3_other.create_bucket(Bucket=a_bucket)
    s3_other.put_object(Bucket=a_bucket, Key="secret.txt", Body=b"other's data")
    r = session.get(url, timeout=30)
    assert r.status_code == 200 and r.content == b"other's data", h.describe(r)
    assert s3.get_object(Bucket=a_bucket, Key="secret.txt")["Body"].read() == b"main's data"


def test_native_credentials_of_other_tenant_see_nothing(s3, s3env, a_bucket):
    """Control through the native API: main's S3 object exists only under tenant main."""
    listed = s3env.native.list_all(namespace=a_bucket, tenant=s3env.other.tenant)
    assert listed == []
    listed = s3env.native.list_all(namespace=a_bucket, tenant=s3env.main.tenant)
    assert [o["key"] for o in listed] == ["secret.txt"]
