"""Secrets at rest: S3 secrets are stored encrypted with a master key kept apart from the
metadata, so a copied meta.db or snapshot reveals none; files Cairn keeps are unreadable to
other users; plaintext secrets of older releases are encrypted on the first start; the
master key can be rotated; a server or a restore without the right key says which key it
needs instead of treating the credentials as invalid.

The other-user test needs root (it runs `setpriv` as nobody) and is skipped otherwise.
"""
from __future__ import annotations

import hashlib
import os
import secrets
import shutil
import sqlite3
import stat
import subprocess
from pathlib import Path

import pytest

import cairn_harness as h
from cairn_harness import MiB

REGION = "us-east-1"


def s3_client(server: h.CairnServer, access: str, secret: str):
    boto3 = pytest.importorskip("boto3", reason="boto3 is needed to sign S3 requests")
    import botocore.config

    config = botocore.config.Config(
        region_name=REGION, signature_version="s3v4", s3={"addressing_style": "path"},
        retries={"total_max_attempts": 1, "mode": "standard"}, connect_timeout=5,
        read_timeout=30)
    session = boto3.session.Session(aws_access_key_id=access, aws_secret_access_key=secret,
                                    region_name=REGION)
    return session.client("s3", endpoint_url=server.s3_url, config=config)


def create_s3_key(data_dir: Path, tenant: str, env_extra=None, args=()) -> tuple[str, str]:
    r = h.run_cli(data_dir, ["keys", "create"], ["--s3", "--tenant", tenant, *args],
                  allow_secret_in_stdout=True, env_extra=env_extra)
    assert r.returncode == 0, h.cli_summary(r)
    fields = dict(line.split(": ", 1) for line in r.stdout.splitlines() if ": " in line)
    access, secret = fields["access_key"].strip(), fields["secret_key"].strip()
    h.register_secret(secret, f"secret of S3 key {access}")
    return access, secret


def s3_round_trip(server: h.CairnServer, access: str, secret: str, bucket: str) -> None:
    s3 = s3_client(server, access, secret)
    s3.create_bucket(Bucket=bucket)
    s3.put_object(Bucket=bucket, Key="k", Body=b"sealed secrets still sign")
    assert s3.get_object(Bucket=bucket, Key="k")["Body"].read() == b"sealed secrets still sign"


def key_id(key_bytes: bytes) -> str:
    return hashlib.sha256(key_bytes).hexdigest()[:8]


def key_id_of_file(path: Path) -> str:
    return key_id(bytes.fromhex(path.read_text().strip()))


def dump(data_dir: Path, out: Path) -> str:
    r = h.run_cli(data_dir, ["meta", "dump"], ["--out", str(out)])
    assert r.returncode == 0, h.cli_summary(r)
    return out.read_text()


def files_under(root: Path):
    for dirpath, _, filenames in os.walk(root):
        for name in filenames:
            yield Path(dirpath) / name


def start_expecting_refusal(server_factory, data_dir: Path, **kwargs) -> str:
    """Starts a server that must exit at once with an error; returns its stderr."""
    srv = server_factory(data_dir=data_dir, gc_interval=0, start=False, **kwargs)
    srv.launch(h.free_port())
    code = srv.wait_exit(30)
    assert code not in (None, 0), "the server started with the wrong master key"
    srv._killed_on_purpose = True  # an expected failed start, not a crash
    return srv.log_text(srv.log_files[-1])


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to read files as another user")
def test_other_users_read_nothing_and_no_file_holds_a_secret(server_factory, tenant, tmp_path):
    if shutil.which("setpriv") is None:
        pytest.skip("setpriv is not installed")
    bootstrap_secret = secrets.token_urlsafe(30)
    h.register_secret(bootstrap_secret, "bootstrap S3 secret")
    previous = os.umask(0o022)
    try:
        srv = server_factory(
            gc_interval=0,
            extra_env={"CAIRN_S3_ACCESS_KEY": "AKBOOTSTRAP0000001",
                       "CAIRN_S3_SECRET_KEY": bootstrap_secret, "CAIRN_S3_TENANT": tenant})
        access, secret = create_s3_key(srv.data_dir, tenant)
        s3_round_trip(srv, access, secret, "bucket-one")
        c = h.Client(srv, srv.admin_key)
        c.put(h.pseudo_random_bytes(5 * MiB, "secrets-at-rest"), tenant=tenant, key="big")
        inside = srv.data_dir / "dump.jsonl"
        outside = tmp_path / "outside-dump.jsonl"
        snapshot_text = dump(srv.data_dir, inside)
        dump(srv.data_dir, outside)
    finally:
        os.umask(previous)

    # No file of the data dir (meta.db, its WAL, snapshots...) and no snapshot holds a
    # secret; the snapshot carries them sealed with the master key.
    master_id = key_id_of_file(srv.data_dir / "master.key")
    assert f"enc1:{master_id}:" in snapshot_text
    for path in [*files_under(srv.data_dir), outside]:
        data = path.read_bytes()
        for plain in (secret, bootstrap_secret):
            assert plain.encode() not in data, f"{path} holds an S3 secret in plaintext"

    # As nobody, every file is unreadable: first as the server leaves them (the data dir
    # is 0700), then with every directory opened to others, so the files' own modes count.
    wal = srv.data_dir / "meta.db-wal"
    targets = [srv.data_dir / "meta.db", srv.data_dir / "master.key", inside, outside]
    if h.meta_url_for(srv.data_dir) is None:
        assert wal.exists(), "the server runs in WAL mode: meta.db-wal should exist"
        targets.append(wal)
    chunk_files = [p for p in files_under(srv.data_dir / "hot" / "chunks")]
    assert chunk_files, "the 5 MiB object should have left chunk files"
    targets += chunk_files[:3]

    def read_as_nobody(path: Path) -> subprocess.CompletedProcess:
        return subprocess.run(["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups",
                               "cat", str(path)], capture_output=True, timeout=30)

    for opened in (False, True):
        if opened:
            for dirpath, _, _ in os.walk(srv.data_dir):
                os.chmod(dirpath, os.stat(dirpath).st_mode | 0o011)
        for path in targets:
            r = read_as_nobody(path)
            assert r.returncode != 0 and b"Permission denied" in r.stderr, \
                f"nobody could read {path} (directories opened: {opened}): {r.stderr!r}"
    for dirpath, _, _ in os.walk(srv.data_dir):
        os.chmod(dirpath, 0o700)


def stored_secret(srv: h.CairnServer, access: str) -> str:
    if srv.meta_url is not None:
        return h.psql(srv.meta_url,
                      f"SELECT secret FROM s3_keys WHERE access_key = '{access}'").strip()
    db = sqlite3.connect(srv.data_dir / "meta.db")
    row = db.execute("SELECT secret FROM s3_keys WHERE access_key = ?", (access,)).fetchone()
    db.close()
    return row[0]


def test_plaintext_secrets_of_an_older_release_are_encrypted_on_first_start(
        server_factory, tenant):
    srv = server_factory(gc_interval=0)
    srv.stop()
    # What an older release stored: the secret itself.
    access, secret = "AKOLDRELEASE000001", secrets.token_urlsafe(30)
    h.register_secret(secret, "plaintext S3 secret of an older release")
    values = (access, secret, f'["{tenant}"]')
    if srv.meta_url is not None:
        h.psql(srv.meta_url, "INSERT INTO s3_keys (access_key, secret, tenants, scope, "
               "created_at_ms, revoked, description) VALUES ('%s', '%s', '%s', 'write', 1, "
               "false, 'old')" % values)
    else:
        db = sqlite3.connect(srv.data_dir / "meta.db")
        with db:
            db.execute("INSERT INTO s3_keys (access_key, secret, tenants, scope, created_at_ms, "
                       "revoked, description) VALUES (?, ?, ?, 'write', 1, 0, 'old')", values)
        db.close()
    assert stored_secret(srv, access) == secret
    srv.start()
    assert "encrypted the secrets of 1 S3 keys at rest" in srv.all_logs()
    stored = stored_secret(srv, access)
    master_id = key_id_of_file(srv.data_dir / "master.key")
    assert stored.startswith(f"enc1:{master_id}:") and secret not in stored
    s3_round_trip(srv, access, secret, "old-bucket")
    # Logged once: the next start finds nothing to encrypt.
    srv.stop()
    srv.start()
    assert srv.all_logs().count("encrypted the secrets of") == 1


def test_rotating_the_default_key_file(server_factory, tenant):
    srv = server_factory(gc_interval=0)
    access, secret = create_s3_key(srv.data_dir, tenant)
    s3_round_trip(srv, access, secret, "before-rotation")
    old_id = key_id_of_file(srv.data_dir / "master.key")
    srv.stop()
    r = h.run_cli(srv.data_dir, ["keys", "rotate-master"])
    assert r.returncode == 0, h.cli_summary(r)
    new_id = key_id_of_file(srv.data_dir / "master.key")
    assert new_id != old_id and new_id in r.stdout and old_id in r.stdout, h.cli_summary(r)
    assert not (srv.data_dir / "master.key.next").exists()
    assert stat.S_IMODE(os.stat(srv.data_dir / "master.key").st_mode) == 0o600
    text = dump(srv.data_dir, srv.data_dir.parent / "rotated.jsonl")
    assert f"enc1:{new_id}:" in text and f"enc1:{old_id}:" not in text
    srv.start()
    s3_round_trip(srv, access, secret, "after-rotation")


def test_a_shared_key_is_rotated_with_the_old_one_still_readable(server_factory, tenant,
                                                                 tmp_path):
    old_key, new_key = secrets.token_hex(32), secrets.token_hex(32)
    old_id, new_id = key_id(bytes.fromhex(old_key)), key_id(bytes.fromhex(new_key))
    old_file = tmp_path / "old.key"
    old_file.write_text(old_key + "\n")
    os.chmod(old_file, 0o600)
    srv = server_factory(gc_interval=0, extra_env={"CAIRN_MASTER_KEY": old_key})
    assert not (srv.data_dir / "master.key").exists(), "CAIRN_MASTER_KEY is the key"
    access, secret = create_s3_key(srv.data_dir, tenant, env_extra={"CAIRN_MASTER_KEY": old_key})
    s3_round_trip(srv, access, secret, "shared-old")
    srv.stop()

    # A node given another key refuses to start and names the key it needs.
    log = start_expecting_refusal(server_factory, srv.data_dir,
                                  extra_env={"CAIRN_MASTER_KEY": new_key})
    assert old_id in log and new_id in log, log
    # So does a command that would seal a new secret with a key the servers lack.
    r = h.run_cli(srv.data_dir, ["keys", "create"], ["--s3", "--tenant", tenant],
                  env_extra={"CAIRN_MASTER_KEY": new_key})
    assert r.returncode == 1 and old_id in r.stderr, h.cli_summary(r)

    # Rollover: the new key seals, the old one still opens.
    rolling = server_factory(data_dir=srv.data_dir, gc_interval=0,
                             extra_env={"CAIRN_MASTER_KEY": new_key},
                             extra_args=["--old-master-key-file", str(old_file)])
    s3_round_trip(rolling, access, secret, "shared-rolling")
    r = h.run_cli(srv.data_dir, ["keys", "rotate-master"], ["--old-master-key-file", str(old_file)],
                  env_extra={"CAIRN_MASTER_KEY": new_key})
    assert r.returncode == 0 and new_id in r.stdout and "2 re-encrypted" in r.stdout, \
        h.cli_summary(r)
    rolling.stop()

    # The old key is no longer needed; a node still on it refuses, naming the new one.
    done = server_factory(data_dir=srv.data_dir, gc_interval=0,
                          extra_env={"CAIRN_MASTER_KEY": new_key})
    s3_round_trip(done, access, secret, "shared-new")
    done.stop()
    log = start_expecting_refusal(server_factory, srv.data_dir,
                                  extra_env={"CAIRN_MASTER_KEY": old_key})
    assert new_id in log, log


def test_a_snapshot_loads_only_where_its_master_key_is(server_factory, tenant, tmp_path):
    if h.using_postgres():
        pytest.skip("loads into fresh SQLite stores")
    srv = server_factory(gc_interval=0)
    access, secret = create_s3_key(srv.data_dir, tenant)
    snapshot = tmp_path / "snapshot.jsonl"
    dump(srv.data_dir, snapshot)
    master_id = key_id_of_file(srv.data_dir / "master.key")
    srv.stop()

    # A fresh data dir has a key of its own: the load says which key the snapshot needs.
    elsewhere = tmp_path / "elsewhere"
    r = h.run_cli(elsewhere, ["meta", "load"], ["--in", str(snapshot)])
    assert r.returncode == 1 and master_id in r.stderr, h.cli_summary(r)

    # With the key file copied along, the restore works and the key signs S3 requests.
    restored = tmp_path / "restored"
    restored.mkdir(mode=0o700)
    shutil.copy2(srv.data_dir / "master.key", restored / "master.key")
    r = h.run_cli(restored, ["meta", "load"], ["--in", str(snapshot)])
    assert r.returncode == 0, h.cli_summary(r)
    shutil.copytree(srv.data_dir / "hot", restored / "hot")
    again = server_factory(data_dir=restored, gc_interval=0)
    s3_client(again, access, secret).list_buckets()


def test_files_an_older_release_left_open_are_made_private(server_factory, tenant):
    srv = server_factory(gc_interval=0)
    c = h.Client(srv, srv.admin_key)
    c.put(h.pseudo_random_bytes(5 * MiB, "older-release-modes"), tenant=tenant, key="big")
    srv.stop()
    # What an older release under umask 022 left: everything readable by others, and no
    # record that the storage roots were ever made private.
    for root in (srv.data_dir / "hot", srv.data_dir / "cold"):
        (root / "private-modes").unlink()
    for dirpath, _, filenames in os.walk(srv.data_dir):
        os.chmod(dirpath, 0o755)
        for name in filenames:
            os.chmod(os.path.join(dirpath, name), 0o644)
    srv.start()
    open_to_others = []
    for dirpath, _, filenames in os.walk(srv.data_dir):
        for name in [dirpath] + [os.path.join(dirpath, f) for f in filenames]:
            mode = stat.S_IMODE(os.lstat(name).st_mode)
            if mode & 0o077:
                open_to_others.append(f"{oct(mode)} {os.path.relpath(name, srv.data_dir)}")
    assert not open_to_others, "\n".join(sorted(open_to_others))
    assert "private (an older release left them readable by others)" in srv.all_logs()
    assert (srv.data_dir / "hot" / "private-modes").exists()
