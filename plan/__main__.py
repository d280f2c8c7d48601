"""The offline plan: what this change does to each stack, without credentials or a daemon.

    python -m plan --base origin/main [--stack prod] [--format markdown|json]

Runs the program under Pulumi's mocks at the base ref (a temporary git worktree) and in the
working tree, for each stack file, compares the two graphs (`plan.compare`) and checks the
production rules on the head's resources (`policies.rules`). Prints to stdout.

Exit status: 0 nothing changes; 2 something changes; 1 an error (said on stderr: a bad stack
file at either revision names the revision and the key), or a violation of a mandatory rule
(after the report is printed).
"""

from __future__ import annotations

import argparse
import sys
from collections import Counter
from collections.abc import Iterable, Sequence
from pathlib import Path

from plan.compare import compare
from plan.recorder import ROOT
from plan.render import to_json, to_markdown
from plan.report import StackReport, policy_findings, profile_of
from plan.revisions import Recording, checkout, record_all
from plan.stackfiles import PlanError, SecretPlaceholders, StackFile, read_stack_file, stack_names
from policies.rules import enforcement_for

NO_CHANGE, CHANGES, ERROR = 0, 2, 1


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m plan", description=__doc__.splitlines()[0])
    parser.add_argument("--base", required=True, help="git ref to compare with, e.g. origin/main")
    parser.add_argument(
        "--stack",
        action="append",
        default=[],
        help="a stack to plan (repeatable); default: every stack file",
    )
    parser.add_argument("--format", choices=("markdown", "json"), default="markdown")
    args = parser.parse_args(argv)
    try:
        reports = plan(ROOT, args.base, args.stack)
    except PlanError as err:
        print(f"error: {err}", file=sys.stderr)
        return ERROR
    if args.format == "json":
        print(to_json(args.base, reports))
    else:
        print("\n".join(to_markdown(args.base, r) for r in reports), end="")
    blocked = [
        f"{r.plan.stack}: {_counted(f.violation.rule for f in r.blocking())}"
        for r in reports
        if r.blocking()
    ]
    if blocked:
        print(f"error: mandatory policies are violated ({'; '.join(blocked)})", file=sys.stderr)
        return ERROR
    changed = any(r.plan.changed() or r.plan.outputs for r in reports)
    return CHANGES if changed else NO_CHANGE


def _counted(rules: Iterable[str]) -> str:
    counts = Counter(rules)
    return ", ".join(f"{rule} ({n})" for rule, n in sorted(counts.items()))


def plan(repo: Path, base_ref: str, only: Sequence[str] = ()) -> list[StackReport]:
    """Every asked-for stack's plan from `base_ref` to the working tree at `repo`."""
    with checkout(repo, base_ref) as base_root:
        stacks = list(only) or sorted(set(stack_names(repo)) | set(stack_names(base_root)))
        placeholders = SecretPlaceholders()
        pairs: list[tuple[str, StackFile | None, StackFile | None]] = []
        for stack in stacks:
            base = read_stack_file(base_root, stack, f"base {base_ref}", placeholders)
            head = read_stack_file(repo, stack, "head", placeholders)
            if base is None and head is None:
                raise PlanError(
                    f"stack {stack}: no Pulumi.{stack}.yaml at base {base_ref} "
                    "or in the working tree"
                )
            pairs.append((stack, base, head))
        recordings = [
            Recording(revision, root, stack_file, outside)
            for _, base, head in pairs
            for revision, root, stack_file, outside in (
                (f"base {base_ref}", base_root, base, repo),
                ("head", repo, head, None),
            )
            if stack_file is not None
        ]
        graphs = iter(record_all(recordings))
    reports = []
    for stack, base, head in pairs:
        base_graph = next(graphs) if base is not None else None
        head_graph = next(graphs) if head is not None else None
        newest = head if head is not None else base
        profile = profile_of(newest.config if newest is not None else None)
        note = ""
        if base is None:
            note = f"`Pulumi.{stack}.yaml` is new: everything is created."
        elif head is None:
            note = f"`Pulumi.{stack}.yaml` is removed: `pulumi destroy` would delete this."
        reports.append(
            StackReport(
                compare(stack, base_graph, head_graph),
                policy_findings(base_graph, head_graph, profile),
                enforcement_for(profile),
                note,
            )
        )
    return reports


if __name__ == "__main__":
    raise SystemExit(main())
