"""The docs name only what exists: every `make` target and `python -m` command they show, and
every relative link (with its heading, when it names one)."""

from __future__ import annotations

import functools
import re
import subprocess
import sys
from pathlib import Path

import pytest

from plan.recorder import ROOT

DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
FENCE = re.compile(r"^```.*?^```", re.MULTILINE | re.DOTALL)
SPAN = re.compile(r"`([^`\n]+)`")
MAKE = re.compile(r"(?:^|[\s;&|(])make ([a-z][a-z-]*)")
PYTHON_M = re.compile(r"python3? -m ([a-z_][a-z_.]*)((?: [a-z][a-z-]*)?)")
LINK = re.compile(r"\]\(([^)\s]+)\)")
TARGET = re.compile(r"^([a-z][a-z-]*):", re.MULTILINE)


def code_of(text: str) -> list[str]:
    """What a reader would type: fenced blocks and inline code spans (not the prose around)."""
    blocks = FENCE.findall(text)
    return blocks + SPAN.findall(FENCE.sub("", text))


def named(pattern: re.Pattern[str]) -> list[tuple[str, tuple[str, ...]]]:
    """(doc, match groups) for each command the docs show, once per doc."""
    found = {
        (doc.relative_to(ROOT).as_posix(), tuple(g.strip() for g in m.groups()))
        for doc in DOCS
        for code in code_of(doc.read_text())
        for m in pattern.finditer(code)
    }
    return sorted(found)


def test_the_docs_are_checked() -> None:
    # Guards the checks below against a pattern that matches nothing.
    assert {d.name for d in DOCS} >= {"README.md", "pitr.md", "backup.md"}
    assert len(named(MAKE)) > 10 and len(named(PYTHON_M)) > 10


@pytest.mark.parametrize(
    ("doc", "target"), named(MAKE), ids=[f"{d}:make {t[0]}" for d, t in named(MAKE)]
)
def test_every_make_target_the_docs_name_exists(doc: str, target: tuple[str, ...]) -> None:
    targets = set(TARGET.findall((ROOT / "Makefile").read_text()))
    assert target[0] in targets, f"{doc}: `make {target[0]}` is not a target of the Makefile"


@functools.cache
def help_of(*command: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", *command, "--help"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.mark.parametrize(
    ("doc", "command"),
    named(PYTHON_M),
    ids=[f"{d}:python -m {' '.join(c).strip()}" for d, c in named(PYTHON_M)],
)
def test_every_python_command_the_docs_name_answers_help(
    doc: str, command: tuple[str, ...]
) -> None:
    module, sub = command
    answer = help_of(module, *([sub] if sub else []))
    shown = f"python -m {module} {sub}".strip()
    assert answer.returncode == 0, f"{doc}: `{shown} --help` failed: {answer.stderr[-500:]}"


def anchors_of(doc: Path) -> set[str]:
    """GitHub's heading anchors: lowercase, punctuation dropped, spaces to dashes."""
    text = FENCE.sub("", doc.read_text())
    headings = re.findall(r"^#+ (.+)$", text, re.MULTILINE)
    return {re.sub(r"[^\w\- ]", "", h.strip().lower()).replace(" ", "-") for h in headings}


def links() -> list[tuple[str, str]]:
    found = set()
    for doc in DOCS:
        for target in LINK.findall(SPAN.sub("", FENCE.sub("", doc.read_text()))):
            if not re.match(r"^[a-z]+:", target):  # http:, https:, mailto: are not ours
                found.add((doc.relative_to(ROOT).as_posix(), target))
    return sorted(found)


@pytest.mark.parametrize(("doc", "target"), links(), ids=[f"{d}:{t}" for d, t in links()])
def test_every_relative_link_resolves(doc: str, target: str) -> None:
    path, _, anchor = target.partition("#")
    resolved = (ROOT / doc).parent / path if path else ROOT / doc
    assert resolved.exists(), f"{doc}: link {target!r} names a missing file"
    if anchor and resolved.suffix == ".md":
        assert anchor in anchors_of(resolved), f"{doc}: link {target!r}: no such heading"


TOP = "|".join(sorted(p.name for p in ROOT.iterdir() if p.is_dir() and not p.name.startswith(".")))
REPO_PATH = re.compile(rf"^(?:\.github/|(?:{TOP})/)[\w./-]*$|^Makefile$")


def paths() -> list[tuple[str, str]]:
    """The project's files and folders the docs name in code spans (`components/parts/edge.py`)."""
    found = set()
    for doc in DOCS:
        for span in SPAN.findall(FENCE.sub("", doc.read_text())):
            path = span.split(":")[0].rstrip(".,")  # `file.py:function`
            if REPO_PATH.match(path) and not path.startswith(("policies/venv", ".venv")):
                found.add((doc.relative_to(ROOT).as_posix(), path))
    return sorted(found)


@pytest.mark.parametrize(("doc", "path"), paths(), ids=[f"{d}:{p}" for d, p in paths()])
def test_every_file_the_docs_name_exists(doc: str, path: str) -> None:
    assert (ROOT / path).exists(), f"{doc}: `{path}` does not exist in the project"
