"""Benchmark (not a test): how much committed data point-in-time recovery loses when a server's
volume is lost, against its `archive_timeout`.

On a temporary PostgreSQL server archiving into its own pgBackRest repository (one full backup),
a writer commits a row every 50 ms, each with its commit time. At a random moment the server is
lost: stopped at once (`pg_ctl -m immediate`, no final archiving) and its data directory
deleted. The latest state is then restored from the repository, and the loss is the time
between the last row committed before the loss and the last row the restored server has. Each
round goes on from the restored server (a new timeline).

    .venv/bin/python -m benchmarks.pitr_rpo [--rounds 3] [--archive-timeout 60]
"""

from __future__ import annotations

import argparse
import random
import shutil
import statistics
import subprocess
import threading
import time

from pitr.pgbackrest import RestoreTarget
from tests.pitr.cluster import Cluster, archiving_cluster


class Writer:
    """Commits one row per `interval` on its own connection; remembers each commit's time."""

    def __init__(self, cluster: Cluster, interval: float = 0.05) -> None:
        self.cluster, self.interval = cluster, interval
        self.committed: dict[int, float] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> Writer:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        server = self.cluster.server
        psql = [
            str(server.bin_dir / "psql"),
            "-X",
            "-q",
            "-A",
            "-t",
            "-v",
            "ON_ERROR_STOP=1",
            "-c",
            "INSERT INTO ticks DEFAULT VALUES RETURNING id",
        ]
        while not self._stop.is_set():
            done = subprocess.run(
                psql, env=server.env(), capture_output=True, text=True, check=False
            )
            if done.returncode != 0:
                return  # the server is gone
            self.committed[int(done.stdout.strip())] = time.time()
            self._stop.wait(self.interval)


def one_round(cluster: Cluster, rng: random.Random, timeout_s: int) -> float:
    """Seconds of committed data lost in one loss of the server's volume."""
    with Writer(cluster) as writer:
        time.sleep(rng.uniform(timeout_s * 0.5, timeout_s * 2.5))
        cluster.stop("immediate")  # the host is gone: nothing more is archived
    data = cluster.server.data_dir
    for entry in data.iterdir():  # the volume is lost (the directory itself stays, empty)
        shutil.rmtree(entry) if entry.is_dir() else entry.unlink()
    cluster.tool.restore(RestoreTarget.parse("latest"), force=False)  # an empty directory
    cluster.start()
    cluster.tool.resume_archiving(str(cluster.server.bin_dir / "psql"))
    kept = int(cluster.sql("SELECT coalesce(max(id), 0) FROM ticks"))
    last = max(writer.committed)
    return writer.committed[last] - writer.committed.get(
        kept, writer.committed[min(writer.committed)]
    )


def main() -> int:
    parser = argparse.ArgumentParser(description="Data lost to a lost volume, with PITR")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--archive-timeout", type=int, default=60, metavar="SECONDS")
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    rng = random.Random(args.seed)
    with archiving_cluster(args.archive_timeout) as cluster:
        cluster.tool.create_stanza()
        cluster.sql("CREATE TABLE ticks (id bigserial PRIMARY KEY, at timestamptz DEFAULT now())")
        cluster.tool.backup("full")
        losses = [one_round(cluster, rng, args.archive_timeout) for _ in range(args.rounds)]
    print(
        f"archive_timeout {args.archive_timeout} s: committed data lost per lost volume "
        f"{', '.join(f'{s:.1f} s' for s in losses)}; worst {max(losses):.1f} s, "
        f"median {statistics.median(losses):.1f} s"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
