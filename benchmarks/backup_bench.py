"""Benchmark (not a test): the backup tool against the original shell scripts' approach.

On a temporary PostgreSQL server of its own, fills the four service databases to about
--size-gb (the pgbench tables, scale split over the four, plus ~20 % text documents), then times
side by side:

  original  backup : per database, sequentially, `pg_dump` (plain SQL) | gzip > db.sql.gz,
                     then `tar czf` of those files
            restore: tar xzf, then per database `gunzip -c | psql` into an empty database
  tool      backup : `python -m backup create` (directory format, --compress zstd:N or gzip:N,
                     parallel); the last of --levels is also used for --archive and restore
            restore: `python -m backup restore` into empty databases

printing wall time, CPU time (the children's user+sys from getrusage(RUSAGE_CHILDREN), and the
server's from /proc) and output size for each.

--data realistic (the default) fills the tables with text-like content generated server-side
(sentences of pseudo-words, varied numbers, JSON metadata): non-trivial to compress, gzip -6 runs
at ~35 MB/s on its dump, so the original backup takes ~40 s at 1.5 GB on 2 cores, like the
issue's "about 36 s". --data pgbench is `pgbench -i`'s own data (blank fillers, zero balances)
plus md5-hex documents, which gzip at ~135 MB/s (original ~11 s): the easy case.

With --pitr the server archives its WAL into a pgBackRest repository (tests/pitr/cluster.py) and
pgBackRest is timed too on the same data: a full backup, `verify`, and the restore of a lost
data directory until the server takes writes again (what `python -m pitr restore` runs).

    .venv/bin/python benchmarks/backup_bench.py --size-gb 1.5 [--data realistic|pgbench]
        [--levels zstd:1,gzip:1,zstd:3] [--jobs 2] [--pitr]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from pitr.pgbackrest import RestoreTarget  # noqa: E402
from tests.backup.pgserver import PgServer, create_service_db, start_server  # noqa: E402
from tests.pitr.cluster import Cluster, archiving_cluster  # noqa: E402

SERVICES = {  # service: (user, database, share of the data)
    "customer": ("customer_user", "customer_db", 0.20),
    "product": ("product_user", "product_db", 0.25),
    "order": ("order_user", "order_db", 0.40),
    "content": ("content_user", "website_content_db", 0.15),
}
PGBENCH_MB_PER_SCALE = 15.0  # pg_database_size grows ~15 MB per pgbench scale unit
TEXT_SHARE = 0.2  # part of each database that is text-heavy documents


@dataclass
class Measure:
    label: str
    wall: float
    cpu_children: float
    cpu_server: float
    size: int


def _server_cpu(server: PgServer) -> float:
    """CPU seconds of the server: postmaster (with its reaped children) + live children."""
    tick = os.sysconf("SC_CLK_TCK")
    pidfile = server.data_dir / "postmaster.pid"
    try:
        master = int(pidfile.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 0.0
    total = 0
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            fields = (proc / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        ppid = int(fields[1])
        pid = int(proc.name)
        if pid == master:
            total += sum(int(fields[i]) for i in (11, 12, 13, 14))
        elif ppid == master:
            total += int(fields[11]) + int(fields[12])
    return total / tick


@contextmanager
def measure(
    label: str, server: PgServer, results: list[Measure]
) -> Iterator[Callable[[int], None]]:
    size = {"bytes": 0}

    def set_size(n: int) -> None:
        size["bytes"] = n

    subprocess.run(["sync"], check=False)
    r0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    s0 = _server_cpu(server)
    t0 = time.monotonic()
    yield set_size
    wall = time.monotonic() - t0
    r1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    s1 = _server_cpu(server)
    cpu = (r1.ru_utime - r0.ru_utime) + (r1.ru_stime - r0.ru_stime)
    results.append(Measure(label, wall, cpu, max(0.0, s1 - s0), size["bytes"]))
    print(f"  {label}: {wall:.1f}s wall", flush=True)


def tree_size(path: Path) -> int:
    if path.is_file():
        return path.stat().st_size
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


VOCAB_SIZE = 4096  # pseudo-words; short ones first, picked with a skew like real text
SENTENCES = 1 << 18  # sentence pool per database (~8 MB of distinct text, >> zstd's window)


def vocabulary(seed: int = 1) -> list[str]:
    """Pronounceable pseudo-words, shortest first (the most often picked, as in real text)."""
    rnd = random.Random(seed)
    consonants, vowels = "bcdfghjklmnprstvwz", "aeiou"
    words: set[str] = set()
    while len(words) < VOCAB_SIZE:
        syllables = min(1 + int(rnd.expovariate(0.6)), 5)
        words.add(
            "".join(
                rnd.choice(consonants)
                + rnd.choice(vowels)
                + (rnd.choice("nrst") * (rnd.random() < 0.3))
                for _ in range(syllables)
            )
        )
    return sorted(words, key=lambda w: (len(w), w))


def realistic_sql(scale: int, docs: int) -> str:
    """SQL filling the (empty) pgbench tables and `documents` with varied, text-like content.

    Everything is generated server-side by INSERT ... SELECT (no UPDATE, so no bloat), and
    deterministic: rows pick words and sentences by hashing their ids. A pool of sentences
    (2-9 words drawn from the vocabulary with a skew towards the short, common words) is built
    first; `pgbench_accounts.filler` gets one sentence (blank-padded to char(84)), `abalance` a
    varied number, and each document a sentence as title, a 20-sentence body and JSON metadata.
    The helper tables are dropped at the end. On the pg_dump output gzip -6 runs at ~35 MB/s
    (ratio ~3.6:1), against ~135 MB/s on `--data pgbench`.
    """
    values = ",".join(f"({i},'{w}')" for i, w in enumerate(vocabulary()))
    # a uniform [0, 1) from a hash, raised to the 4th power: index skewed towards short words
    pick = "floor({n} * power((hashint8({x})::bigint + 2147483648) / 4294967296.0, 4))::int"
    mask = SENTENCES - 1
    return f"""
CREATE TABLE bench_vocab (id int PRIMARY KEY, w text);
INSERT INTO bench_vocab VALUES {values};
CREATE TABLE bench_sentences AS
  SELECT i AS id, string_agg(v.w, ' ' ORDER BY k) AS s
  FROM generate_series(1, {SENTENCES}) i
  CROSS JOIN LATERAL generate_series(1, 2 + (hashint4(i) & 7)) k
  JOIN bench_vocab v ON v.id = {pick.format(n=VOCAB_SIZE, x="i::bigint * 16 + k")}
  GROUP BY i;
ALTER TABLE bench_sentences ADD PRIMARY KEY (id);
INSERT INTO pgbench_branches (bid, bbalance) SELECT b, 0 FROM generate_series(1, {scale}) b;
INSERT INTO pgbench_tellers (tid, bid, tbalance)
  SELECT t, (t - 1) / 10 + 1, 0 FROM generate_series(1, {scale * 10}) t;
INSERT INTO pgbench_accounts (aid, bid, abalance, filler)
  SELECT a, (a - 1) / 100000 + 1, hashint4(a) % 100000,
         left(upper(left(s.s, 1)) || substr(s.s, 2) || '.', 84)
  FROM generate_series(1, {scale * 100000}) a
  JOIN bench_sentences s ON s.id = 1 + (hashint8(a::bigint * 2) & {mask});
CREATE TABLE documents (id bigserial PRIMARY KEY, title text, body text, meta jsonb);
INSERT INTO documents (title, body, meta)
  SELECT initcap(t.s), b.body,
         jsonb_build_object(
           'author', a.w, 'views', hashint4(g) & 65535,
           'created', timestamp '2020-01-01' + (hashint4(g + 7) & 134217727) * interval '1 s',
           'tags', jsonb_build_array(t1.w, t2.w))
  FROM generate_series(1, {docs}) g
  JOIN bench_sentences t ON t.id = 1 + (hashint8(g::bigint * 3) & {mask})
  JOIN bench_vocab a ON a.id = hashint4(g * 5) & {VOCAB_SIZE - 1}
  JOIN bench_vocab t1 ON t1.id = hashint4(g * 5 + 1) & 1023
  JOIN bench_vocab t2 ON t2.id = hashint4(g * 5 + 2) & 1023
  JOIN (SELECT d, string_agg(upper(left(s.s, 1)) || substr(s.s, 2), '. ' ORDER BY k) || '.' AS body
        FROM generate_series(1, {docs}) d CROSS JOIN generate_series(1, 20) k
        JOIN bench_sentences s ON s.id = 1 + (hashint8(d::bigint * 32 + k) & {mask})
        GROUP BY d) b ON b.d = g;
DROP TABLE bench_sentences, bench_vocab;
"""  # noqa: S608 (numbers and generated words only)


def pgbench_docs_sql(rows: int) -> str:
    """`--data pgbench`'s documents: ~1 kB rows of md5 hex and a fixed phrase (about 3:1)."""
    return (
        "CREATE TABLE documents (id bigserial PRIMARY KEY, title text, body text, meta jsonb);"  # noqa: S608
        "INSERT INTO documents (title, body, meta) SELECT 'Document ' || g, "
        "(SELECT string_agg(md5((g * 31 + i)::text) || ' lorem ipsum dolor sit amet ', ' ') "
        " FROM generate_series(1, 16) i), "
        "jsonb_build_object('n', g, 'tags', jsonb_build_array('a', g % 13)) "
        f"FROM generate_series(1, {rows}) g;"
    )


def fill(server: PgServer, size_gb: float, data: str) -> dict[str, str]:
    """Four service databases with pgbench tables and text documents; returns passwords.

    `pgbench`: `pgbench -i` data (blank `filler`, zero balances: compresses trivially) plus
    md5-hex documents. `realistic`: the same tables filled with text-like content instead
    (see `realistic_sql`), non-trivial to compress."""
    pgbench = server.bin_dir / "pgbench"
    passwords = {}
    for service, (user, db, share) in SERVICES.items():
        passwords[service] = create_service_db(server, user, db)
        mb = size_gb * 1024 * share
        scale = max(1, round(mb * (1 - TEXT_SHARE) / PGBENCH_MB_PER_SCALE))
        env = {**server.env(user, passwords[service]), "PGDATABASE": db}

        def run_pgbench(steps: str, env: dict[str, str] = env, scale: int = scale) -> None:
            subprocess.run(
                [str(pgbench), "-i", "-q", "-I", steps, "-s", str(scale)],
                env=env,
                check=True,
                capture_output=True,
            )

        if data == "realistic":
            rows = max(1000, int(mb * TEXT_SHARE * 1024 * 1024 / 800))  # ~800 B per document
            run_pgbench("dt")  # empty tables
            server.psql(realistic_sql(scale, rows), db, user, passwords[service])
            run_pgbench("vp")  # vacuum analyze, primary keys
        else:
            rows = max(1000, int(mb * TEXT_SHARE * 1024 * 1024 / 1100))  # ~1.1 kB per document
            run_pgbench("dtGvp")
            server.psql(pgbench_docs_sql(rows), db, user, passwords[service])
        server.psql("ANALYZE;", db, user, passwords[service])
        size = server.psql(f"SELECT pg_database_size('{db}')").strip()
        print(f"  {db}: pgbench scale {scale}, {rows} documents, {int(size) / 1e6:.0f} MB")
    return passwords


def pipe(producer: list[str], consumer: list[str], env: dict[str, str], out: Path | None) -> None:
    """`producer | consumer [> out]` without a shell."""
    with open(out, "wb") if out else open(os.devnull, "wb") as sink:  # noqa: PTH123
        p1 = subprocess.Popen(producer, stdout=subprocess.PIPE, env=env)
        assert p1.stdout is not None
        p2 = subprocess.Popen(consumer, stdin=p1.stdout, stdout=sink, env=env)
        p1.stdout.close()
        if p2.wait() != 0 or p1.wait() != 0:
            raise RuntimeError(f"{producer[0]} | {consumer[0]} failed")


def original_backup(server: PgServer, pw: dict[str, str], work: Path) -> tuple[Path, int]:
    stamp = work / "orig" / "20250101_000000"
    stamp.mkdir(parents=True)
    for service, (user, db, _share) in SERVICES.items():
        env = {**server.env(user, pw[service]), "PGDATABASE": db}
        pipe([str(server.bin_dir / "pg_dump"), db], ["gzip"], env, stamp / f"{db}.sql.gz")
    gz_size = tree_size(stamp)
    archive = work / "orig" / "20250101_000000.tar.gz"
    subprocess.run(["tar", "czf", str(archive), "-C", str(stamp.parent), stamp.name], check=True)
    return archive, gz_size


def original_restore(server: PgServer, pw: dict[str, str], archive: Path, work: Path) -> None:
    out = work / "orig-restore"
    out.mkdir()
    subprocess.run(["tar", "xzf", str(archive), "-C", str(out)], check=True)
    for service, (user, db, _share) in SERVICES.items():
        env = {**server.env(user, pw[service]), "PGDATABASE": f"{db}_orig"}
        psql = [str(server.bin_dir / "psql"), "-X", "-q", "-v", "ON_ERROR_STOP=1"]
        dump = out / "20250101_000000" / f"{db}.sql.gz"
        pipe(["gunzip", "-c", str(dump)], psql, env, None)


def tool(*args: str | Path, env: dict[str, str] | None = None) -> str:
    proc = subprocess.run(
        [sys.executable, "-m", "backup", *map(str, args), "--quiet"],
        cwd=ROOT,
        env={**os.environ, **(env or {})},
        capture_output=True,
        text=True,
        check=False,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"backup {args[0]} failed: {proc.stderr.strip()}")
    return proc.stdout


def recreate_empty(server: PgServer, suffix: str) -> None:
    for user, db, _share in SERVICES.values():
        server.psql(f"DROP DATABASE IF EXISTS {db}{suffix}")
        server.psql(f"CREATE DATABASE {db}{suffix} OWNER {user}")


def create_args(targets: Path, dest: Path, jobs: str, level: str) -> tuple[str | Path, ...]:
    """The tool's `create` as the benchmark times it."""
    return ("create", "--targets", targets, "--dest", dest, "--jobs", jobs, "--compress", level)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size-gb", type=float, default=1.5)
    parser.add_argument(
        "--levels",
        default="zstd:3,zstd:1,gzip:1",  # the default first, then the alternatives
        help="--compress values to time, e.g. gzip:1,zstd:1,zstd:3 (a bare number: gzip level)",
    )
    parser.add_argument("--jobs", default=str(os.cpu_count() or 1), help="e.g. 1,2,4")
    parser.add_argument("--skip-original", action="store_true")
    parser.add_argument(
        "--pitr",
        action="store_true",
        help="the server archives its WAL with pgBackRest; also time its backup and restore",
    )
    parser.add_argument(
        "--data",
        choices=("realistic", "pgbench"),
        default="realistic",
        help="realistic: text-like content, non-trivial to compress (gzip -6 ~35 MB/s); "
        "pgbench: pgbench -i's blank fillers plus md5 documents (compresses trivially)",
    )
    args = parser.parse_args()

    results: list[Measure] = []
    work = Path(tempfile.mkdtemp(prefix="backup-bench-"))
    print(f"starting PostgreSQL, filling ~{args.size_gb} GB ({args.data} data) ...", flush=True)
    with bench_server(args.pitr) as (server, cluster):
        try:
            total = run_all(args, server, cluster, work, results)
        finally:
            shutil.rmtree(work, ignore_errors=True)
    print_results(args, total, results)
    return 0


SERVER_SETTINGS = {
    "shared_buffers": "256MB",
    "max_wal_size": "4GB",
    "checkpoint_timeout": "30min",
    "maintenance_work_mem": "256MB",
}


@contextmanager
def bench_server(pitr: bool) -> Iterator[tuple[PgServer, Cluster | None]]:
    """The benchmark's server; with `pitr`, archiving into a pgBackRest repository."""
    if pitr:
        with archiving_cluster(extra_settings=SERVER_SETTINGS) as cluster:
            cluster.tool.create_stanza()  # archiving from the first row written
            yield cluster.server, cluster
        return
    server = start_server(SERVER_SETTINGS)
    try:
        yield server, None
    finally:
        server.stop()


def pitr_measures(cluster: Cluster, results: list[Measure]) -> None:
    """pgBackRest on the same data: a full backup, then a lost data directory restored from
    it (verify first, as `pitr restore` does) until the server takes writes again."""
    tool, server = cluster.tool, cluster.server
    repo = Path(tool.stanza.repo_path)
    with measure("pgBackRest full backup (zstd, encrypted)", server, results) as size:
        tool.backup("full")
        size(tree_size(repo / "backup"))
    with measure("pgBackRest verify", server, results):
        assert tool.verify() == []
    cluster.stop()
    for entry in server.data_dir.iterdir():  # the volume is lost
        shutil.rmtree(entry) if entry.is_dir() else entry.unlink()
    with measure("pgBackRest restore + recovery (to latest)", server, results):
        tool.restore(RestoreTarget("latest"), force=False)
        cluster.start()


def run_all(
    args: argparse.Namespace,
    server: PgServer,
    cluster: Cluster | None,
    work: Path,
    results: list[Measure],
) -> int:
    """Every measurement; returns the databases' total size."""
    sql_gz = 0
    t0 = time.monotonic()
    pw = fill(server, args.size_gb, args.data)
    total = sum(
        int(server.psql(f"SELECT pg_database_size('{db}')")) for _u, db, _s in SERVICES.values()
    )
    print(f"filled {total / 1e9:.2f} GB in {time.monotonic() - t0:.0f}s", flush=True)
    server.psql("CHECKPOINT")
    if cluster is not None:  # the archive catches up before anything is timed
        cluster.tool.run("check")

    targets = work / "targets.json"
    restore_targets = work / "restore-targets.json"
    for path, suffix in ((targets, ""), (restore_targets, "_new")):
        data = {
            s: {
                "host": server.host,
                "port": server.port,
                "database": db + suffix,
                "user": user,
                "password": pw[s],
            }
            for s, (user, db, _share) in SERVICES.items()
        }
        path.write_text(json.dumps(data))
        path.chmod(0o600)
    admin = {"BACKUP_ADMIN_USER": server.superuser, "BACKUP_ADMIN_PASSWORD": server.password}

    if not args.skip_original:
        print("original: sequential pg_dump | gzip, tar czf", flush=True)
        with measure("original backup (pg_dump|gzip, tar czf)", server, results) as size:
            archive, gz_size = original_backup(server, pw, work)
            size(tree_size(archive))
        print(f"  original: the .sql.gz files before tar czf: {gz_size / 1e6:.1f} MB")
        sql_gz = gz_size
        recreate_empty(server, "_orig")
        with measure("original restore (tar xzf, gunzip|psql)", server, results) as size:
            original_restore(server, pw, archive, work)
        shutil.rmtree(work / "orig")
        shutil.rmtree(work / "orig-restore")
        for _u, db, _s in SERVICES.values():
            server.psql(f"DROP DATABASE {db}_orig")

    last = None
    for jobs in args.jobs.split(","):
        for level in args.levels.split(","):
            dest = work / f"tool-j{jobs}-{level.replace(':', '')}"
            label = f"tool create (-Fd {level}, jobs {jobs})"
            with measure(label, server, results) as size:
                out = tool(*create_args(targets, dest, jobs, level))
                size(tree_size(Path(out.strip())))
            if last is not None:
                shutil.rmtree(last.parent)
            last = Path(out.strip())
    assert last is not None
    dest = work / "tool-archive"
    with measure(f"tool create --archive ({level}, jobs {jobs})", server, results) as size:
        out = tool(*create_args(targets, dest, jobs, level), "--archive")
        size(tree_size(Path(out.split()[1])))
    shutil.rmtree(dest)
    recreate_empty(server, "_new")
    with measure(
        f"tool restore (pg_restore -j {args.jobs.split(',')[-1]})", server, results
    ) as size:
        tool(
            "restore",
            "--targets",
            restore_targets,
            "--dest",
            last.parent,
            last.name,
            "--jobs",
            args.jobs.split(",")[-1],
            env=admin,
        )
    with measure("tool verify --deep", server, results) as size:
        tool("verify", "--dest", last.parent, "--deep", "--targets", targets, env=admin)
    if cluster is not None:
        pitr_measures(cluster, results)
    if sql_gz:
        print(f"original's per-database .sql.gz files before `tar czf`: {sql_gz / 1e6:.1f} MB")
    return total


def print_results(args: argparse.Namespace, total: int, results: list[Measure]) -> None:
    print(
        f"\n{os.cpu_count()} CPUs, {args.data} data, {args.size_gb} GB requested, "
        f"{total / 1e9:.2f} GB in databases"
    )
    print(
        f"| {'approach':<44} | {'wall s':>7} | {'CPU s (tools)':>13} | {'CPU s (server)':>14} "
        f"| {'size MB':>8} |"
    )
    print(f"|{'-' * 46}|{'-' * 9}|{'-' * 15}|{'-' * 16}|{'-' * 10}|")
    for m in results:
        shown = f"{m.size / 1e6:8.1f}" if m.size else f"{'-':>8}"
        print(
            f"| {m.label:<44} | {m.wall:7.1f} | {m.cpu_children:13.1f} | "
            f"{m.cpu_server:14.1f} | {shown} |"
        )


if __name__ == "__main__":
    sys.exit(main())
