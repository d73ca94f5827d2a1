"""Three `cairn serve` nodes on one PostgreSQL database and one data directory behave like
one server: they start together, see each other's writes and deletes at once (native and
S3), store identical content once, run GC and fsck at the same time without losing a
referenced chunk, and survive one of them being killed mid-upload."""
from __future__ import annotations

import hashlib
import json
import os
import random
import re
import threading
import time

import pytest
import requests

import cairn_harness as h
import multinode as m
from cairn_harness import KiB, MiB, assert_error, describe

TENANT = "acme"
NS = "shared"


def test_nodes_started_at_once_share_one_schema_and_one_bootstrap(cluster_factory):
    """No admin key given: the nodes race to bootstrap on one data dir and one database;
    exactly one key is generated, saved and printed, and it works on every node."""
    cluster = cluster_factory(admin_key=None)
    cluster.start_all_at_once()
    # Every migration applied exactly once although three nodes ran them together.
    versions = cluster.sql("SELECT version FROM schema_version ORDER BY version").split()
    assert versions == [str(v) for v in range(1, len(versions) + 1)] and versions, versions
    printed = [k for node in cluster.nodes
               for k in h.GENERATED_ADMIN_KEY_LINE.findall(node.all_logs())]
    assert len(printed) == 1, f"{len(printed)} admin keys were printed by 3 nodes"
    key = printed[0]
    h.register_secret(h.KEY_PATTERN.match(key).group(2), "generated admin key")
    assert (cluster.data_dir / "admin.key").read_text().strip() == key
    assert cluster.sql("SELECT count(*) FROM api_keys") == "1"
    s3_files = (cluster.data_dir / "s3.key")
    assert not s3_files.exists(), "a bootstrap S3 key was generated although one was given"
    assert cluster.sql("SELECT count(*) FROM s3_keys") == "1"
    for node in cluster.nodes:
        c = h.Client(node, key)
        assert c.request("GET", "/ready").status_code == 200
        assert c.list(namespace=NS, tenant=TENANT).status_code == 200


def test_nodes_with_own_data_dirs_and_shared_roots_start_together(cluster_factory):
    """The other layout: a data dir per node, only the storage roots shared. All three
    insert the same bootstrap admin and S3 keys at once; none may fail to start."""
    cluster = cluster_factory(shared_data_dir=False)
    cluster.start_all_at_once()
    assert cluster.sql("SELECT count(*) FROM api_keys") == "1"
    assert cluster.sql("SELECT count(*) FROM s3_keys") == "1"
    clients = cluster.clients()
    data = h.pseudo_random_bytes(6 * MiB, "own-dirs")
    for i, c in enumerate(clients):
        c.put(data, tenant=TENANT, namespace=NS, key=f"copy{i}")
    for c in clients:
        for i in range(3):
            r = c.get_by_key(NS, TENANT, f"copy{i}")
            assert r.status_code == 200 and r.content == data, describe(r)
    assert cluster.chunk_file_bytes("hot") == len(data), "the roots do not hold one copy"
    s3 = cluster.s3_clients()
    s3[0].create_bucket(Bucket="own-dirs")
    s3[1].put_object(Bucket="own-dirs", Key="k", Body=b"through node 2")
    assert s3[2].get_object(Bucket="own-dirs", Key="k")["Body"].read() == b"through node 2"


def test_a_node_without_the_shared_master_key_refuses_to_start(cluster_factory):
    """Data dirs of their own and no CAIRN_MASTER_KEY: each node would make a key of its
    own. The first seals the S3 secrets; the next refuses to start, naming that key,
    instead of taking every S3 key for invalid."""
    cluster = cluster_factory(nodes=2, shared_data_dir=False, shared_master_key=False)
    first, second = cluster.nodes
    first.start()
    key_file = first.data_dir / "master.key"
    first_id = hashlib.sha256(bytes.fromhex(key_file.read_text().strip())).hexdigest()[:8]
    second.launch(h.free_port())
    assert second.wait_exit(60) not in (None, 0), "a node with another master key started"
    second._killed_on_purpose = True  # the refusal is the expected outcome
    log = second.log_text(second.log_files[-1])
    assert f"encrypted with master key {first_id}" in log, log


def test_read_list_delete_after_write_across_nodes(cluster_factory):
    cluster = cluster_factory()
    cluster.start_all_at_once()
    clients = cluster.clients()
    sizes = [0, 5, 40 * KiB, 4 * MiB + 3, 9 * MiB]
    for i, size in enumerate(sizes * 2):  # every node writes, reads and deletes
        writer, reader, deleter = (clients[(i + k) % 3] for k in range(3))
        others = [c for c in clients if c is not writer]
        data = h.pseudo_random_bytes(size, f"raw{i}")
        key = f"obj/{i}"
        obj = writer.put(data, tenant=TENANT, namespace=NS, key=key)
        for c in others:
            r = c.get(obj["id"], tenant=TENANT)
            assert r.status_code == 200 and r.content == data, describe(r, f"read via {c.base}")
            r = c.get_by_key(NS, TENANT, key)
            assert r.status_code == 200 and r.content == data, describe(r)
            listed = {o["key"]: o["id"] for o in c.list_all(namespace=NS, tenant=TENANT)}
            assert listed.get(key) == obj["id"], f"{key} not listed by {c.base}"
        # An overwrite through the reader is what the writer serves next.
        newer = h.pseudo_random_bytes(size + 1, f"raw{i}-2")
        obj2 = reader.put(newer, tenant=TENANT, namespace=NS, key=key)
        r = writer.get_by_key(NS, TENANT, key)
        assert r.status_code == 200 and r.content == newer, describe(r)
        assert writer.get(obj["id"], tenant=TENANT).status_code == 404
        r = deleter.delete(obj2["id"], tenant=TENANT)
        assert r.status_code == 204, describe(r, "delete")
        for c in clients:
            assert_error(c.get(obj2["id"], tenant=TENANT), 404, "read after delete")
            assert_error(c.get_by_key(NS, TENANT, key), 404, "read by key after delete")
            assert key not in {o["key"] for o in c.list_all(namespace=NS, tenant=TENANT)}
    for c in clients:
        assert c.list_all(namespace=NS, tenant=TENANT) == []


def test_s3_read_list_delete_after_write_across_nodes(cluster_factory):
    from botocore.exceptions import ClientError
    cluster = cluster_factory()
    cluster.start_all_at_once()
    s3 = cluster.s3_clients()
    s3[0].create_bucket(Bucket="multi")
    for c in s3[1:]:  # the bucket exists everywhere at once
        c.head_bucket(Bucket="multi")
    for i, size in enumerate([3, 70 * KiB, 6 * MiB]):
        a, b, c = s3[i % 3], s3[(i + 1) % 3], s3[(i + 2) % 3]
        data = h.pseudo_random_bytes(size, f"s3-{i}")
        key = f"k/{i}"
        a.put_object(Bucket="multi", Key=key, Body=data)
        for other in (b, c):
            assert other.get_object(Bucket="multi", Key=key)["Body"].read() == data
            listed = other.list_objects_v2(Bucket="multi", Prefix="k/")
            assert key in [o["Key"] for o in listed.get("Contents", [])]
        b.delete_object(Bucket="multi", Key=key)
        for other in (a, c):
            with pytest.raises(ClientError) as err:
                other.head_object(Bucket="multi", Key=key)
            assert err.value.response["ResponseMetadata"]["HTTPStatusCode"] == 404
            listed = other.list_objects_v2(Bucket="multi", Prefix="k/")
            assert key not in [o["Key"] for o in listed.get("Contents", [])]

    # A multipart upload created on one node, parts sent through the two others,
    # completed on the first: one object, readable everywhere, also by the native API.
    part_size = 5 * MiB
    parts_data = [h.pseudo_random_bytes(part_size, "mp0"), h.pseudo_random_bytes(MiB, "mp1")]
    upload = s3[0].create_multipart_upload(Bucket="multi", Key="big")
    parts = []
    for n, piece in enumerate(parts_data, start=1):
        r = s3[n].upload_part(Bucket="multi", Key="big", UploadId=upload["UploadId"],
                              PartNumber=n, Body=piece)
        parts.append({"PartNumber": n, "ETag": r["ETag"]})
    listed = s3[2].list_parts(Bucket="multi", Key="big", UploadId=upload["UploadId"])
    assert [p["PartNumber"] for p in listed["Parts"]] == [1, 2]
    s3[0].complete_multipart_upload(Bucket="multi", Key="big", UploadId=upload["UploadId"],
                                    MultipartUpload={"Parts": parts})
    whole = b"".join(parts_data)
    for c in s3:
        assert c.get_object(Bucket="multi", Key="big")["Body"].read() == whole
    native = cluster.clients()[1]
    r = native.get_by_key("multi", m.S3_TENANT, "big")
    assert r.status_code == 200 and r.content == whole, describe(r)


@pytest.mark.time_limit(240)
def test_concurrent_identical_uploads_store_one_copy(cluster_factory):
    cluster = cluster_factory()
    cluster.start_all_at_once()
    size = 20 * MiB
    data = h.pseudo_random_bytes(size, "same")
    uploads = 9  # three at a time through each node
    results: dict[int, object] = {}

    def upload(i: int) -> None:
        c = h.Client(cluster.nodes[i % 3], cluster.admin_key)
        try:
            results[i] = c.upload(data, tenant=TENANT, namespace="dedup", key=f"copy{i}")
        except requests.RequestException as e:
            results[i] = e

    threads = [threading.Thread(target=upload, args=(i,)) for i in range(uploads)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(180)
    for i in range(uploads):
        r = results.get(i)
        assert isinstance(r, requests.Response) and r.status_code == 201, \
            f"upload {i}: {describe(r) if isinstance(r, requests.Response) else r!r}"
    hashes = {results[i].json()["content_hash"] for i in range(uploads)}
    assert hashes == {"sha256:" + h.sha256_hex(data)}
    for c in cluster.clients():
        usage = c.usage_json(TENANT)
        row = h.usage_row(usage, "dedup", "hot")
        assert row["objects"] == uploads and row["logical_bytes"] == uploads * size, usage
        assert row["physical_bytes"] == size, f"physical bytes are not one copy: {usage}"
    # On the shared volume: the chunk files hold one copy, and no temp file is left.
    assert cluster.chunk_file_bytes("hot") == size
    assert cluster.temp_files() == []
    code, report = h.fsck_json(cluster.data_dir)
    assert code == 0 and report["ok"], report
    r = cluster.clients()[2].get_by_key("dedup", TENANT, "copy4")
    assert r.status_code == 200 and r.content == data


CHURN_SECONDS = float(os.environ.get("CAIRN_MULTINODE_CHURN_SECONDS", 20))


def node_metrics(node) -> str:
    r = h.new_session().get(node.url + "/metrics", timeout=10)
    assert r.status_code == 200, describe(r)
    return r.text


class Ledger:
    """What the clients were told: key -> (id, sha256) of the last acknowledged upload,
    and ids that an acknowledged delete or overwrite removed."""

    def __init__(self):
        self.lock = threading.Lock()
        self.live: dict[str, tuple[str, str, int]] = {}
        self.gone: set[str] = set()
        self.unknown_keys: set[str] = set()  # a request on the key got no answer
        self.errors: list[str] = []
        self.ops = 0


def churn_worker(cluster, worker: int, ledger: Ledger, deadline: float, pool: list[bytes]):
    rng = random.Random(worker)
    clients = cluster.clients()
    keys = [f"w{worker}/k{i}" for i in range(12)]
    for step in range(100000):  # bounded by the deadline and the count
        if time.monotonic() > deadline:
            return
        c = clients[rng.randrange(3)]
        key = rng.choice(keys)
        try:
            if rng.random() < 0.7:
                # Shared content (dedup across workers and nodes) or unique content.
                data = rng.choice(pool) if rng.random() < 0.6 else \
                    h.pseudo_random_bytes(rng.choice([100, 50 * KiB, 5 * MiB]), f"{worker}-{step}")
                r = c.upload(data, tenant=TENANT, namespace="churn", key=key,
                             timeout=(5, 60))
                if r.status_code != 201:
                    ledger.errors.append(describe(r, f"upload {key}"))
                    return
                obj = r.json()
                with ledger.lock:
                    old = ledger.live.get(key)
                    if old:
                        ledger.gone.add(old[0])
                    ledger.live[key] = (obj["id"], h.sha256_hex(data), len(data))
            else:
                with ledger.lock:
                    old = ledger.live.get(key)
                if old is None:
                    continue
                r = c.delete(old[0], tenant=TENANT)
                if r.status_code not in (204, 404):
                    ledger.errors.append(describe(r, f"delete {key}"))
                    return
                with ledger.lock:
                    ledger.live.pop(key, None)
                    ledger.gone.add(old[0])
            with ledger.lock:
                ledger.ops += 1
        except Exception as e:  # noqa: BLE001 - reported by the test, not lost in a thread
            ledger.errors.append(f"{key}: {e!r}")
            return


@pytest.mark.time_limit(300)
def test_gc_and_fsck_on_every_node_at_once_never_lose_a_referenced_chunk(cluster_factory):
    """Background GC every second with a 1 s grace on all three nodes, plus `cairn gc
    --grace 1` and `cairn fsck` processes, while uploads, overwrites and deletes churn
    through all nodes: every acknowledged object reads back identical afterwards, also
    after a final `cairn gc --grace 0`."""
    cluster = cluster_factory(gc_interval=1, gc_grace=1)
    cluster.start_all_at_once()
    pool = [h.pseudo_random_bytes(s, f"pool{s}") for s in (40 * KiB, 4 * MiB + 1, 9 * MiB)]
    ledger = Ledger()
    deadline = time.monotonic() + CHURN_SECONDS
    workers = [threading.Thread(target=churn_worker, args=(cluster, w, ledger, deadline, pool))
               for w in range(4)]
    for t in workers:
        t.start()
    # Command-line GC and fsck beside the servers' own GC, each in its own loop, as an
    # operator might run them on any node. fsck runs concurrently with writes, so it may
    # report a transient difference; it must finish and change nothing (no --repair).
    runs = {"gc": 0, "fsck": 0, "chunks removed by cairn gc": 0}
    cli_errors: list[str] = []

    def cli_loop(name: str) -> None:
        for _ in range(1000):  # bounded by the deadline
            if time.monotonic() > deadline:
                return
            try:
                if name == "gc":
                    # The servers' grace: four collectors compete for the same chunks.
                    out = h.gc_now(cluster.data_dir, 1).stdout
                    found = re.search(r"deleted chunks: (\d+)", out)
                    assert found, out
                    runs["chunks removed by cairn gc"] += int(found.group(1))
                else:
                    code, _ = h.fsck_json(cluster.data_dir, "--grace", "3600")
                    assert code in (0, 1)
            except Exception as e:  # noqa: BLE001 - reported below
                cli_errors.append(f"{name}: {e!r}")
                return
            runs[name] += 1

    loops = [threading.Thread(target=cli_loop, args=(name,)) for name in ("gc", "fsck")]
    for t in loops:
        t.start()
    for t in loops:
        t.join(CHURN_SECONDS + 120)
    assert not cli_errors, "\n".join(cli_errors)
    for t in workers:
        t.join(120)
    assert not any(t.is_alive() for t in workers), "a churn worker did not finish"
    assert not ledger.errors, "\n".join(ledger.errors[:5])
    assert ledger.ops >= 20, f"only {ledger.ops} operations in {CHURN_SECONDS} s"
    assert runs["gc"] >= 2 and runs["fsck"] >= 2, runs
    # GC really removed chunks while the churn went on, on the command line and in the
    # servers (the test would prove nothing otherwise).
    background = 0.0
    for node in cluster.nodes:
        metrics = node_metrics(node)
        found = re.search(r"^cairn_gc_deleted_blobs_total(?:\{\})? (\S+)$", metrics, re.M)
        assert found, metrics[:2000]
        background += float(found.group(1))
    print(f"{ledger.ops} operations, {runs}, {background:.0f} chunks removed by the servers")
    assert runs["chunks removed by cairn gc"] + background > 0, (runs, background)

    # Let every node's GC run a few more times with nothing in flight, then collect
    # everything unreferenced at once.
    time.sleep(3)
    h.gc_now(cluster.data_dir, 0)
    clients = cluster.clients()
    for key, (object_id, sha, size) in sorted(ledger.live.items()):
        for c in clients:
            r = c.get(object_id, tenant=TENANT)
            assert r.status_code == 200, describe(r, f"acknowledged {key} via {c.base}")
            assert len(r.content) == size and h.sha256_hex(r.content) == sha, \
                f"{key} read back different bytes via {c.base}"
    for object_id in sorted(ledger.gone)[:50]:
        assert_error(clients[0].get(object_id, tenant=TENANT), 404, "removed object")
    listed = {o["key"]: o["id"] for o in clients[1].list_all(namespace="churn", tenant=TENANT)}
    assert listed == {k: v[0] for k, v in ledger.live.items()}
    code, report = h.fsck_json(cluster.data_dir, "--grace", "0")
    assert code == 0 and report["ok"], json.dumps(report)[:3000]
    assert cluster.temp_files() == []
    for c in clients:
        assert c.request("GET", "/ready").status_code == 200


class SlowBody:
    """A request body that yields `size` bytes in 1 MiB blocks, pausing after `fast_bytes`
    until `release` is set (bounded), so an upload is reliably in flight."""

    def __init__(self, size: int, fast_bytes: int):
        self.size = size
        self.fast_bytes = fast_bytes
        self.sent = 0
        self.paused = threading.Event()
        self.release = threading.Event()

    def __iter__(self):
        for block in h.PseudoRandomStream.blocks(self.size, 99):
            if self.sent >= self.fast_bytes and not self.release.is_set():
                self.paused.set()
                self.release.wait(60)
            self.sent += len(block)
            yield block


@pytest.mark.time_limit(240)
def test_kill9_of_one_node_mid_upload(cluster_factory):
    cluster = cluster_factory(gc_interval=1, gc_grace=1)
    cluster.start_all_at_once()
    a, b, c = cluster.nodes
    ca, cb, cc = cluster.clients()
    before = cb.put(h.pseudo_random_bytes(6 * MiB, "before"), tenant=TENANT, namespace=NS,
                    key="before")
    body = SlowBody(200 * MiB, 24 * MiB)
    outcome: dict[str, object] = {}

    def stream() -> None:
        try:
            outcome["response"] = ca.upload(body, tenant=TENANT, namespace=NS, key="inflight",
                                            timeout=(5, 60))
        except requests.RequestException as e:
            outcome["error"] = e

    uploader = threading.Thread(target=stream)
    uploader.start()
    assert body.paused.wait(60), "the streaming upload did not get going"
    # Chunks of the in-flight upload are on the shared volume and in the database.
    m.wait_for(lambda: cluster.sql("SELECT count(*) FROM objects WHERE state = 'WRITING'")
               == "1", 10, "the in-flight upload has no WRITING row")
    a.kill9(reason="")
    body.release.set()
    uploader.join(60)
    assert not uploader.is_alive()
    assert "response" not in outcome or outcome["response"].status_code != 201

    # The two others keep serving reads and writes.
    for i, (writer, reader) in enumerate([(cb, cc), (cc, cb)] * 2):
        data = h.pseudo_random_bytes(5 * MiB + i, f"after-kill{i}")
        obj = writer.put(data, tenant=TENANT, namespace=NS, key=f"after/{i}")
        r = reader.get(obj["id"], tenant=TENANT)
        assert r.status_code == 200 and r.content == data, describe(r)
    r = cc.get(before["id"], tenant=TENANT)
    assert r.status_code == 200 and h.sha256_hex(r.content) == h.sha256_hex(
        h.pseudo_random_bytes(6 * MiB, "before"))
    assert_error(cb.get_by_key(NS, TENANT, "inflight"), 404, "the killed upload")

    # With nothing else in flight, GC reaps the dead upload (its row, its chunk references,
    # its temp file, whose lock died with the process): fsck is clean, no temp file left.
    r = h.run_cli(cluster.data_dir, ["gc"], ["--grace", "0", "--stalled-upload-timeout", "0"])
    assert r.returncode == 0, h.cli_summary(r)
    assert cluster.sql("SELECT count(*) FROM objects WHERE state = 'WRITING'") == "0"
    assert cluster.temp_files() == []
    code, report = h.fsck_json(cluster.data_dir, "--grace", "0")
    assert code == 0 and report["ok"], report

    # The killed node comes back on the same data and database.
    a.start()
    data = h.pseudo_random_bytes(3 * MiB, "restarted")
    obj = ca.put(data, tenant=TENANT, namespace=NS, key="restarted")
    for client in (ca, cb, cc):
        r = client.get(obj["id"], tenant=TENANT)
        assert r.status_code == 200 and r.content == data
    assert_error(ca.get_by_key(NS, TENANT, "inflight"), 404, "the killed upload")
