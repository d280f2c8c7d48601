"""The two revisions a plan compares: a base git ref, checked out in a temporary worktree, and
the working tree; and their graphs, recorded side by side in separate processes.

Each recording runs `plan/recorder.py` (this checkout's) on the revision's own program and
stack file, in its own process: the base revision's modules never mix with the head's, and
Pulumi's runtime state is per process.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from plan.recorder import Graph
from plan.stackfiles import PlanError, StackFile

RECORDER = Path(__file__).resolve().parent / "recorder.py"
ROOT = RECORDER.parent.parent


@dataclass(frozen=True)
class Recording:
    """One program run to record: a revision's checkout and one of its stack files."""

    revision: str
    """How errors name it: "base origin/main" or "head"."""
    root: Path
    stack_file: StackFile
    outside: Path | None = None
    """Where build contexts outside `root` are found (the working tree, for the base)."""


def commit_of(repo: Path, ref: str) -> str:
    result = _git(repo, "rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}")
    if result.returncode != 0:
        raise PlanError(
            f"base {ref}: not a commit of this repository (fetch it, e.g. `git fetch origin`)"
        )
    return result.stdout.strip()


@contextmanager
def checkout(repo: Path, ref: str) -> Iterator[Path]:
    """The program as it was at `ref`, in a temporary worktree removed afterwards."""
    commit = commit_of(repo, ref)
    with tempfile.TemporaryDirectory(prefix="ecommerce-plan-") as parent:
        worktree = Path(parent) / "base"
        added = _git(repo, "worktree", "add", "--detach", "--quiet", str(worktree), commit)
        if added.returncode != 0:
            raise PlanError(f"base {ref}: git worktree add failed: {added.stderr.strip()}")
        try:
            yield worktree
        finally:
            _git(repo, "worktree", "remove", "--force", str(worktree))


def record_all(recordings: Sequence[Recording]) -> list[Graph]:
    """The graphs of `recordings`, in order; as many at a time as there are cores."""
    workers = max(1, min(len(recordings), os.cpu_count() or 1))
    with ThreadPoolExecutor(max_workers=workers) as pool:
        return list(pool.map(record, recordings))


def record(recording: Recording) -> Graph:
    request = {
        "config": recording.stack_file.config,
        "secret_keys": recording.stack_file.secret_keys,
    }
    with tempfile.TemporaryDirectory(prefix="ecommerce-plan-") as scratch:
        config, output = Path(scratch) / "config.json", Path(scratch) / "graph.json"
        config.write_text(json.dumps(request))
        # The program's own warnings (Pulumi's, Python's) stay out of the plan's output. The
        # recorder runs as a script: this checkout's root gives it the SDK internals module.
        paths = [str(ROOT), *filter(None, [os.environ.get("PYTHONPATH")])]
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(paths)}
        result = subprocess.run(
            [
                sys.executable,
                "-W",
                "ignore",
                str(RECORDER),
                "--root",
                str(recording.root),
                "--stack",
                recording.stack_file.stack,
                "--config",
                str(config),
                "--output",
                str(output),
                *(["--outside", str(recording.outside)] if recording.outside else []),
            ],
            capture_output=True,
            text=True,
            check=False,
            env=env,
        )
        if result.returncode != 0:
            message = result.stderr.strip() or f"the program exited with {result.returncode}"
            raise PlanError(f"{recording.revision}: stack {recording.stack_file.stack}: {message}")
        return Graph.from_json(output.read_text())


def _git(repo: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["git", "-C", str(repo), *args], capture_output=True, text=True, check=False
    )
