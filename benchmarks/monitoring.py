"""Prometheus's memory and disk per day at the stack's own scrape interval and retention.

Deploys a stack (prod by default: every exporter, the PITR agents and the backup job) with the
real Pulumi engine, the stand-in provider plugins and the local test images, at the scrape
interval of its stack file, and lets it run for `--minutes`. Then it reads, from the stack's own
Prometheus: the series in its head, the samples it appends per second and its resident memory.
Disk: Prometheus compresses samples into blocks only every two hours, so a second Prometheus
with the same configuration runs beside it (same image, on the monitoring network), cutting a
block every two minutes (the TSDB's hidden block-duration flags); its blocks' bytes over their
samples (each block's meta.json) give the bytes per sample of such short blocks, where each
block's index and chunks of four samples dominate: a pessimistic figure. Disk per day is given
from the WAL's growth over the run, an upper bound (blocks compress samples better than the WAL
records them). Measures only; asserts nothing.

    .venv/bin/python -m benchmarks.monitoring [--stack prod] [--minutes 12]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
import urllib.parse
from pathlib import Path
from typing import Any

import docker

from tests.integration.engine import engine_home
from tests.integration.stacks import MONITORING_IMAGES, PLATFORM, RUN_LABEL, LiveStack, engine_run

PROBE_FLAGS = ["--storage.tsdb.min-block-duration=2m", "--storage.tsdb.max-block-duration=2m"]


def query(container: Any, promql: str) -> float:
    """One instant query's single value, asked inside the container (nothing is published)."""
    url = "http://127.0.0.1:9090/api/v1/query?" + urllib.parse.urlencode({"query": promql})
    result = container.exec_run(["wget", "-qO-", url])
    answer = json.loads(result.output)
    found = answer["data"]["result"]
    return float(found[0]["value"][1]) if found else float("nan")


def start_probe(live: LiveStack, prometheus: Any) -> Any:
    """A second Prometheus with the stack's configuration, cutting blocks every two minutes."""
    bits, _ = prometheus.get_archive("/etc/prometheus")
    archive = b"".join(bits)
    probe = live.client.containers.create(
        MONITORING_IMAGES["prometheus"],
        [
            "--config.file=/etc/prometheus/prometheus.yml",
            "--storage.tsdb.path=/prometheus",
            "--web.listen-address=:9090",
            *PROBE_FLAGS,
        ],
        name=f"{live.prefix}-prometheus-probe",
        labels={RUN_LABEL: live.run_id},
        network=f"{live.prefix}-monitoring",
        user="65534:65534",
    )
    probe.put_archive("/etc", archive)
    probe.start()
    return probe


def block_bytes_per_sample(probe: Any) -> tuple[float, int]:
    """Bytes on disk per sample over the probe's compacted blocks, and how many blocks."""
    listing = probe.exec_run(["sh", "-c", "ls -d /prometheus/01*/ 2>/dev/null"]).output.decode()
    samples = size = 0
    blocks = [b.rstrip("/") for b in listing.split()]
    for block in blocks:
        meta = json.loads(probe.exec_run(["cat", f"{block}/meta.json"]).output)
        samples += int(meta["stats"]["numSamples"])
        size += int(probe.exec_run(["du", "-sb", block]).output.split()[0])
    return (size / samples if samples else float("nan")), len(blocks)


def wal_bytes(container: Any) -> int:
    return int(container.exec_run(["du", "-sb", "/prometheus/wal"]).output.split()[0])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--stack", default="prod")
    parser.add_argument("--minutes", type=float, default=12)
    args = parser.parse_args()
    client = docker.from_env()

    def stack_interval(platform: dict[str, Any]) -> None:
        # The tests scrape every 10 s; the benchmark measures the stack file's own interval.
        platform["monitoring"]["prometheus"].pop("scrapeIntervalSeconds", None)

    with (
        tempfile.TemporaryDirectory() as home_dir,
        engine_run(client, engine_home(Path(home_dir)), args.stack, stack_interval) as live,
    ):
        live.up()
        prometheus = live.container("prometheus")
        settings = live.config[PLATFORM]["monitoring"]["prometheus"]
        probe = start_probe(live, prometheus)
        wal_start, started = wal_bytes(prometheus), time.monotonic()
        time.sleep(args.minutes * 60)
        hours = (time.monotonic() - started) / 3600
        series = query(prometheus, "prometheus_tsdb_head_series")
        rate = query(prometheus, "rate(prometheus_tsdb_head_samples_appended_total[5m])")
        rss = query(prometheus, 'process_resident_memory_bytes{job="prometheus"}')
        per_sample, blocks = block_bytes_per_sample(probe)
        wal_per_hour = (wal_bytes(prometheus) - wal_start) / hours
        retention = int(settings.get("retentionDays", 15))
        samples_per_hour = rate * 3600
        wal_per_sample = wal_per_hour / samples_per_hour
        print(
            f"stack {args.stack}, scrape every {settings.get('scrapeIntervalSeconds', 30)} s, "
            f"retention {retention} days, after {args.minutes:g} minutes:"
        )
        print(f"  series in the head             {series:,.0f}")
        print(f"  samples appended per second    {rate:,.1f}")
        print(f"  resident memory                {rss / 2**20:,.0f} MiB")
        print(
            f"  WAL growth per hour            {wal_per_hour / 2**20:,.1f} MiB "
            f"({wal_per_sample:.1f} bytes per sample)"
        )
        print(
            f"  disk per day, WAL rate         {wal_per_hour * 24 / 2**20:,.1f} MiB "
            "(an upper bound: blocks compress better than the WAL)"
        )
        print(f"  disk at retention, WAL rate    {wal_per_hour * 24 * retention / 2**30:,.2f} GiB")
        print(
            f"  2-minute blocks                {per_sample:.1f} bytes per sample ({blocks} "
            "blocks; each block's index and 4-sample chunks dominate: a pessimistic bound, "
            "not the 2-hour blocks' figure)"
        )


if __name__ == "__main__":
    main()
