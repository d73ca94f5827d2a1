"""Losing the PostgreSQL server: while it is down every request fails fast with 503 (JSON
on the native API, S3 XML on S3), never 500, never a hang, never a partial object; /ready
says not ready; once it is back the same server process serves again by itself.

Uses a PostgreSQL server of its own (scripts/postgres-test-server.sh) so that stopping it
disturbs nothing else."""
from __future__ import annotations

import json
import os
import select
import shutil
import socket
import subprocess
import tempfile
import threading
import time
import urllib.parse
from pathlib import Path

import pytest
import requests

import cairn_harness as h
import multinode as m
from cairn_harness import KiB, MiB, describe

SCRIPT = h.REPO_ROOT / "scripts" / "postgres-test-server.sh"
TENANT = "acme"
NS = "dbloss"
REQUEST_BOUND_S = 20.0  # no request may take longer than this, database or not
RECOVERY_BOUND_S = 30.0


def pg(command: str, directory: Path) -> str:
    r = subprocess.run([str(SCRIPT), command, str(directory)], capture_output=True, text=True,
                       timeout=120, stdin=subprocess.DEVNULL)
    assert r.returncode == 0, f"postgres-test-server.sh {command}: {r.stderr[-2000:]}"
    return r.stdout.strip().splitlines()[-1] if r.stdout.strip() else ""


@pytest.fixture
def own_postgres():
    if not Path("/usr/lib/postgresql/15/bin/pg_ctl").exists():
        pytest.skip("PostgreSQL 15 server binaries are not installed")
    # Not under pytest's private tmp dir: the server runs as another user when we are root.
    directory = Path(tempfile.mkdtemp(prefix="cairn-pg-", dir="/tmp"))
    try:
        url = pg("start", directory)
        h.register_secret(urllib.parse.urlsplit(url).password or "",
                          "password of the dedicated PostgreSQL")
        yield directory, url
    finally:
        pg("stop", directory)
        shutil.rmtree(directory, ignore_errors=True)


def send_until_answered(sock: socket.socket, blocks) -> tuple[int, dict, bytes]:
    """Sends the rest of a body in small pieces until the server answers (bounded); returns
    the response."""
    deadline = time.monotonic() + REQUEST_BOUND_S + 30
    for block in blocks:
        for offset in range(0, len(block), 64 * KiB):
            readable, _, _ = select.select([sock], [], [], 0)
            if readable or time.monotonic() > deadline:
                return h.read_http_response(sock, REQUEST_BOUND_S)
            try:
                sock.sendall(block[offset:offset + 64 * KiB])
            except OSError:  # the server answered and closed: read what it said
                return h.read_http_response(sock, REQUEST_BOUND_S)
    return h.read_http_response(sock, REQUEST_BOUND_S)


def timed(fn):
    """(result or exception, seconds)."""
    start = time.monotonic()
    try:
        result = fn()
    except Exception as e:  # noqa: BLE001 - the caller inspects it
        result = e
    return result, time.monotonic() - start


def assert_native_503(r, what: str) -> None:
    assert isinstance(r, requests.Response), f"{what}: {r!r}"
    h.assert_error(r, 503, what)
    assert r.headers.get("Retry-After") == "1", describe(r, what)


def assert_s3_503(result, what: str) -> None:
    from botocore.exceptions import ClientError
    assert isinstance(result, ClientError), f"{what}: expected a 503, got {result!r}"
    meta = result.response["ResponseMetadata"]
    assert meta["HTTPStatusCode"] == 503, f"{what}: {result.response}"
    assert meta["HTTPHeaders"].get("retry-after") == "1", f"{what}: {meta}"
    if what.startswith("HEAD"):  # no body: botocore names the status only
        return
    assert result.response["Error"]["Code"] in ("ServiceUnavailable", "SlowDown"), \
        f"{what}: {result.response['Error']}"


@pytest.mark.time_limit(240)
def test_database_down_gives_503_and_the_server_recovers_by_itself(tmp_path, own_postgres):
    from botocore.exceptions import ClientError
    pg_dir, url = own_postgres
    cluster = m.Cluster(tmp_path / "c", url, nodes=1)
    try:
        run_scenario(cluster, pg_dir, ClientError)
    finally:
        problems = h.finish_servers(cluster.nodes)
    assert not problems, "\n".join(problems)


def run_scenario(cluster: m.Cluster, pg_dir: Path, ClientError) -> None:
    cluster.start_all_at_once()
    node = cluster.nodes[0]
    pid = node.pid
    c = cluster.clients()[0]
    s3 = cluster.s3_clients()[0]
    s3.create_bucket(Bucket="dbloss")
    acknowledged = {}
    for i, size in enumerate([10, 60 * KiB, 5 * MiB]):
        data = h.pseudo_random_bytes(size, f"ack{i}")
        acknowledged[c.put(data, tenant=TENANT, namespace=NS, key=f"ack{i}")["id"]] = data
    s3.put_object(Bucket="dbloss", Key="s3-ack", Body=b"s3 acknowledged")

    # An upload in flight when the database goes away: some chunks are in, the rest is
    # sent while the database is down. A raw socket, so that the early answer is read
    # while the body is still being sent (requests would only see the closed connection).
    total = 30 * MiB
    sock = socket.create_connection(("127.0.0.1", node.port), timeout=10)
    try:
        sock.sendall(h.raw_upload_head(cluster.admin_key, TENANT, NS, "inflight",
                                       f"Content-Length: {total}\r\n".encode()) + b"\r\n")
        blocks = h.PseudoRandomStream.blocks(total, 7)
        sent = 0
        for block in blocks:
            sock.sendall(block)
            sent += len(block)
            if sent >= 9 * MiB:
                break
        pg("stop", pg_dir)
        inflight = send_until_answered(sock, blocks)
    finally:
        sock.close()
    try:
        status, headers, answer = inflight
        assert status == 503, (status, headers, answer[:500])
        assert json.loads(answer)["error"]["code"] == "Unavailable", answer[:500]
        assert headers.get("retry-after") == "1", headers

        time.sleep(1.2)  # past the one-second credential cache: every lookup hits the store
        ready, seconds = timed(lambda: c.request("GET", "/ready"))
        assert ready.status_code == 503 and ready.json()["status"] == "unavailable", \
            describe(ready)
        assert "metadata" in ready.json()["reason"], describe(ready)
        some_id = next(iter(acknowledged))
        native_calls = {
            "upload small": lambda: c.upload(b"x" * 100, tenant=TENANT, namespace=NS,
                                             key="down-small"),
            # Under the server's 4 MiB drain bound for bodies it answers early.
            "upload chunked": lambda: c.upload(h.pseudo_random_bytes(3 * MiB, "down"),
                                               tenant=TENANT, namespace=NS, key="down-big"),
            "get": lambda: c.get(some_id, tenant=TENANT),
            "get by key": lambda: c.get_by_key(NS, TENANT, "ack0"),
            "list": lambda: c.list(namespace=NS, tenant=TENANT),
            "usage": lambda: c.usage(TENANT),
            "delete": lambda: c.delete(some_id, tenant=TENANT),
        }
        for what, call in native_calls.items():
            r, seconds = timed(call)
            assert_native_503(r, what)
            assert seconds < REQUEST_BOUND_S, f"{what} took {seconds:.1f} s"
        s3_calls = {
            "GET": lambda: s3.get_object(Bucket="dbloss", Key="s3-ack"),
            "HEAD": lambda: s3.head_object(Bucket="dbloss", Key="s3-ack"),
            "PUT": lambda: s3.put_object(Bucket="dbloss", Key="s3-down", Body=b"y" * 70000),
            "LIST": lambda: s3.list_objects_v2(Bucket="dbloss"),
            "DELETE": lambda: s3.delete_object(Bucket="dbloss", Key="s3-ack"),
        }
        for what, call in s3_calls.items():
            result, seconds = timed(call)
            assert_s3_503(result, what)
            assert seconds < REQUEST_BOUND_S, f"S3 {what} took {seconds:.1f} s"
        assert node.alive() and node.pid == pid
    finally:
        pg("resume", pg_dir)

    # The same process serves again by itself.
    m.wait_for(lambda: c.request("GET", "/ready").status_code == 200, RECOVERY_BOUND_S,
               "/ready did not recover after the database came back")
    assert node.alive() and node.pid == pid, "the server was restarted"
    for object_id, data in acknowledged.items():
        r = c.get(object_id, tenant=TENANT)
        assert r.status_code == 200 and r.content == data, describe(r, "acknowledged object")
    assert s3.get_object(Bucket="dbloss", Key="s3-ack")["Body"].read() == b"s3 acknowledged"
    for key in ("inflight", "down-small", "down-big"):
        h.assert_error(c.get_by_key(NS, TENANT, key), 404, f"{key} (answered 503)")
    with pytest.raises(ClientError):
        s3.head_object(Bucket="dbloss", Key="s3-down")
    after = c.put(b"after", tenant=TENANT, namespace=NS, key="after")
    assert c.get(after["id"], tenant=TENANT).content == b"after"

    restart_with_requests_in_flight(cluster, pg_dir, c, s3, ClientError, acknowledged)


def restart_with_requests_in_flight(cluster, pg_dir, c, s3, ClientError, acknowledged):
    """Workers upload, read and list through both APIs while PostgreSQL restarts: every
    answer is a success or a 503, every acknowledged upload is there afterwards and no
    upload answered 503 is visible."""
    stop = threading.Event()
    lock = threading.Lock()
    statuses: dict[int, int] = {}
    problems: list[str] = []
    acked: dict[str, bytes] = {}
    refused: list[tuple[str, str]] = []  # (api, key) answered 503

    def count(status: int) -> None:
        with lock:
            statuses[status] = statuses.get(status, 0) + 1

    def native_worker(w: int) -> None:
        client = c.clone()
        for i in range(10000):
            if stop.is_set():
                return
            key = f"restart/n{w}/{i}"
            data = h.pseudo_random_bytes(70 * KiB if i % 2 else 300, key)
            r, seconds = timed(lambda: client.upload(data, tenant=TENANT, namespace=NS,
                                                     key=key, timeout=(5, 30)))
            if not isinstance(r, requests.Response):
                problems.append(f"{key}: {r!r}")
                return
            count(r.status_code)
            if seconds > REQUEST_BOUND_S:
                problems.append(f"{key}: {seconds:.1f} s")
            if r.status_code == 201:
                with lock:
                    acked[key] = data
            elif r.status_code == 503:
                if "outcome is unknown" not in r.text:
                    with lock:
                        refused.append(("native", key))
            else:
                problems.append(describe(r, key))
            r, _ = timed(lambda: client.list(namespace=NS, tenant=TENANT, limit=5))
            if not isinstance(r, requests.Response) or r.status_code not in (200, 503):
                problems.append(f"list: {r if not isinstance(r, requests.Response) else describe(r)}")
            time.sleep(0.02)

    def s3_worker() -> None:
        for i in range(10000):
            if stop.is_set():
                return
            key = f"restart/s3/{i}"
            result, seconds = timed(lambda: s3.put_object(Bucket="dbloss", Key=key,
                                                          Body=key.encode() * 50))
            if seconds > REQUEST_BOUND_S:
                problems.append(f"S3 {key}: {seconds:.1f} s")
            if isinstance(result, ClientError):
                status = result.response["ResponseMetadata"]["HTTPStatusCode"]
                count(status)
                if status != 503:
                    problems.append(f"S3 {key}: {result.response}")
                elif "outcome is unknown" not in str(result.response["Error"]):
                    with lock:
                        refused.append(("s3", key))
            elif isinstance(result, Exception):
                problems.append(f"S3 {key}: {result!r}")
                return
            else:
                count(200)
            time.sleep(0.02)

    workers = [threading.Thread(target=native_worker, args=(w,)) for w in range(2)]
    workers.append(threading.Thread(target=s3_worker))
    for t in workers:
        t.start()
    try:
        time.sleep(1)
        pg("restart", pg_dir)
        time.sleep(1)
        pg("restart", pg_dir)
        m.wait_for(lambda: c.request("GET", "/ready").status_code == 200, RECOVERY_BOUND_S,
                   "/ready did not recover after a restart")
        time.sleep(2)  # successes after the restart
    finally:
        stop.set()
        for t in workers:
            t.join(60)
    print(f"answers while PostgreSQL restarted twice: {statuses}")
    assert not problems, "\n".join(problems[:10])
    assert 500 not in statuses, statuses
    assert statuses.get(201, 0) + statuses.get(200, 0) > 0, statuses
    for key, data in acked.items():
        r = c.get_by_key(NS, TENANT, key)
        assert r.status_code == 200 and r.content == data, describe(r, f"acknowledged {key}")
    for api, key in refused:
        if api == "native":
            h.assert_error(c.get_by_key(NS, TENANT, key), 404, f"{key} answered 503")
        else:
            with pytest.raises(ClientError):
                s3.head_object(Bucket="dbloss", Key=key)
    for object_id, data in acknowledged.items():
        assert c.get(object_id, tenant=TENANT).content == data
    code, report = h.fsck_json(cluster.data_dir)
    assert code == 0 and report["ok"], report


def postgres_processes(pg_dir: Path) -> list[int]:
    """The postmaster (first) and its children."""
    postmaster = int((pg_dir / "data" / "postmaster.pid").read_text().split()[0])
    children = subprocess.run(["pgrep", "-P", str(postmaster)], capture_output=True, text=True,
                              timeout=10).stdout.split()
    return [postmaster] + [int(c) for c in children]


@pytest.mark.time_limit(240)
def test_a_hung_database_gives_503_not_a_hang(tmp_path, own_postgres):
    """A PostgreSQL that stops answering without closing its connections (here: every
    process stopped with SIGSTOP, as a hung host or a frozen VM would look) must not hold
    requests forever: each answers 503 in bounded time, and once the database answers again
    the same server process serves again, with every acknowledged object intact."""
    import signal
    from botocore.exceptions import ClientError
    pg_dir, url = own_postgres
    cluster = m.Cluster(tmp_path / "c", url, nodes=1)
    stopped: list[int] = []
    try:
        cluster.start_all_at_once()
        node = cluster.nodes[0]
        pid = node.pid
        c = cluster.clients()[0]
        s3 = cluster.s3_clients()[0]
        s3.create_bucket(Bucket="hung")
        acknowledged = {}
        for i, size in enumerate([10, 6 * MiB]):
            data = h.pseudo_random_bytes(size, f"hung{i}")
            acknowledged[c.put(data, tenant=TENANT, namespace=NS, key=f"hung{i}")["id"]] = data

        stopped = postgres_processes(pg_dir)
        for p in stopped:
            os.kill(p, signal.SIGSTOP)
        time.sleep(1.2)  # past the one-second credential cache: every lookup hits the store
        some_id = next(iter(acknowledged))
        calls = {
            "upload small": lambda: c.upload(b"x" * 100, tenant=TENANT, namespace=NS,
                                             key="hung-small", timeout=(5, 60)),
            "get": lambda: c.get(some_id, tenant=TENANT),
            "list": lambda: c.list(namespace=NS, tenant=TENANT),
            "ready": lambda: c.request("GET", "/ready"),
        }
        for what, call in calls.items():
            r, seconds = timed(call)
            assert isinstance(r, requests.Response), f"{what}: {r!r}"
            assert r.status_code == 503, describe(r, what)
            assert seconds < REQUEST_BOUND_S, f"{what} took {seconds:.1f} s"
        result, seconds = timed(lambda: s3.get_object(Bucket="hung", Key="nothing"))
        assert_s3_503(result, "GET")
        assert seconds < REQUEST_BOUND_S, f"S3 GET took {seconds:.1f} s"
        assert node.alive() and node.pid == pid

        for p in stopped:
            os.kill(p, signal.SIGCONT)
        stopped = []
        m.wait_for(lambda: c.request("GET", "/ready").status_code == 200, RECOVERY_BOUND_S,
                   "/ready did not recover after the database answered again")
        assert node.alive() and node.pid == pid, "the server was restarted"
        for object_id, data in acknowledged.items():
            r = c.get(object_id, tenant=TENANT)
            assert r.status_code == 200 and r.content == data, describe(r, "acknowledged")
        h.assert_error(c.get_by_key(NS, TENANT, "hung-small"), 404, "hung-small (answered 503)")
        after = c.put(b"after", tenant=TENANT, namespace=NS, key="after")
        assert c.get(after["id"], tenant=TENANT).content == b"after"
    finally:
        for p in stopped:
            try:
                os.kill(p, signal.SIGCONT)
            except ProcessLookupError:
                pass
        problems = h.finish_servers(cluster.nodes)
    assert not problems, "\n".join(problems)
