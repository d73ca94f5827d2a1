"""A cluster of `cairn serve` nodes for the multi-node tests: N processes on different
ports sharing one PostgreSQL database and one data directory (same hot and cold roots),
the same bootstrap admin key and S3 key pair."""
from __future__ import annotations

import secrets
import string
from pathlib import Path
from typing import Optional

import cairn_harness as h

S3_TENANT = "default"


def boto3_client(endpoint: str, access_key: str, secret_key: str):
    """A boto3 S3 client without retries (a retried request would hide what happened) and
    with bounded timeouts."""
    import boto3
    from botocore.config import Config
    config = Config(retries={"total_max_attempts": 1, "mode": "standard"}, connect_timeout=5,
                    read_timeout=60, s3={"addressing_style": "path"})
    return boto3.client("s3", endpoint_url=endpoint, aws_access_key_id=access_key,
                        aws_secret_access_key=secret_key, region_name="us-east-1",
                        config=config)


class Cluster:
    def __init__(self, root: Path, meta_url: str, *, nodes: int = 3,
                 admin_key=h._DEFAULT, gc_interval: Optional[float] = None,
                 gc_grace: Optional[float] = None, extra_args=(), shared_data_dir: bool = True,
                 shared_master_key: Optional[bool] = None):
        """shared_data_dir=False: each node has a data dir of its own (bootstrap files) and
        only the hot and cold roots (--hot-dir, --cold-dir) are shared.
        shared_master_key: every node gets one CAIRN_MASTER_KEY (the default with data dirs
        of their own; with a shared data dir the nodes share its master.key instead)."""
        self.root = Path(root)
        self.data_dir = self.root / "data"
        self.hot_dir = self.data_dir / "hot"
        self.cold_dir = self.data_dir / "cold"
        extra_args = list(extra_args)
        if not shared_data_dir:
            self.hot_dir, self.cold_dir = self.root / "shared-hot", self.root / "shared-cold"
            extra_args += ["--hot-dir", str(self.hot_dir), "--cold-dir", str(self.cold_dir)]
        self.meta_url = meta_url
        self.s3_access_key = "CRNTEST" + "".join(
            secrets.choice(string.ascii_uppercase + string.digits) for _ in range(13))
        self.s3_secret_key = secrets.token_urlsafe(30)
        h.register_secret(self.s3_secret_key, "bootstrap S3 secret")
        self.admin_key = h.generate_api_key() if admin_key is h._DEFAULT else admin_key
        env = {"CAIRN_S3_ACCESS_KEY": self.s3_access_key,
               "CAIRN_S3_SECRET_KEY": self.s3_secret_key}
        if shared_master_key is None:
            shared_master_key = not shared_data_dir
        if shared_master_key:
            env["CAIRN_MASTER_KEY"] = secrets.token_hex(32)
        self.nodes = [
            h.CairnServer(self.data_dir if shared_data_dir else self.root / f"node{i}",
                          admin_key=self.admin_key, meta_url=meta_url,
                          gc_interval=gc_interval, gc_grace=gc_grace, extra_args=extra_args,
                          extra_env=env, log_dir=self.root / "logs")
            for i in range(nodes)]

    # -- lifecycle ---------------------------------------------------------------------
    def start_all_at_once(self, timeout: float = 60.0) -> None:
        """Launches every node before waiting for any: they open the database (and run
        its migrations) and bootstrap their keys at the same moment."""
        # Back to back from this thread (a child dies with the thread that started it,
        # PR_SET_PDEATHSIG): the launches are a few milliseconds apart, far less than a
        # node needs to open the database.
        errors: list[str] = []
        for node in self.nodes:
            node.launch(h.free_port())
        for node in self.nodes:
            healthy, why = node.wait_healthy(timeout)
            if not healthy:
                errors.append(f"{node.name}: {why}\n{node.current_log_tail()}")
        assert not errors, "nodes did not start together:\n" + "\n".join(errors)

    def finish(self) -> list[str]:
        problems = h.finish_servers(self.nodes)
        try:
            h.drop_postgres_database(self.meta_url)
        except Exception as e:  # noqa: BLE001
            problems.append(f"dropping the cluster's database failed: {e!r}")
        return problems

    # -- clients -----------------------------------------------------------------------
    def clients(self, key: Optional[str] = None) -> list[h.Client]:
        return [h.Client(node, key or self.admin_key) for node in self.nodes]

    def s3_clients(self) -> list:
        return [boto3_client(node.s3_url, self.s3_access_key, self.s3_secret_key)
                for node in self.nodes]

    # -- shared volume -----------------------------------------------------------------
    def temp_files(self) -> list[Path]:
        out = []
        for root in (self.hot_dir, self.cold_dir):
            tmp = root / "tmp"
            if tmp.is_dir():
                out += [p for p in tmp.iterdir() if p.is_file()]
        return out

    def chunk_file_bytes(self, storage_class: str = "hot") -> int:
        """Bytes of the chunk files (temp files excluded) under one storage root."""
        root = (self.hot_dir if storage_class == "hot" else self.cold_dir) / "chunks"
        return sum(p.stat().st_size for p in root.rglob("*") if p.is_file())

    def sql(self, query: str) -> str:
        return h.psql(self.meta_url, query).strip()


def wait_for(predicate, timeout: float, what: str, interval: float = 0.1):
    value = h.wait_until(predicate, timeout, interval)
    assert value, f"{what} (waited {timeout:.0f} s)"
    return value


__all__ = ["Cluster", "boto3_client", "wait_for", "S3_TENANT"]
