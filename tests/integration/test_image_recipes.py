"""The image builder's pure parts, no engine needed: where the apt mirror comes from, and the
recipe hash that decides between reuse and rebuild."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from images import build
from images.build import RECIPES, BuildError, apt_mirror, recipe_hash


def write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")


@pytest.fixture(autouse=True)
def no_mirror_override(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(build.MIRROR_ENV, raising=False)


def test_mirror_from_deb822_sources_skips_security_and_disabled(tmp_path: Path) -> None:
    write(
        tmp_path / "sources.list.d" / "debian.sources",
        "Types: deb\n"
        "URIs: http://disabled.invalid/debian\n"
        "Suites: bookworm\n"
        "Enabled: no\n"
        "\n"
        "# comment\n"
        "Types: deb deb-src\n"
        "URIs: http://mirror.invalid/debian\n"
        "Suites: bookworm bookworm-updates\n"
        "Components: main\n"
        "\n"
        "Types: deb\n"
        "URIs: http://mirror.invalid/debian-security\n"
        "Suites: bookworm-security\n",
    )
    assert apt_mirror(tmp_path) == "http://mirror.invalid/debian"


def test_mirror_from_one_line_sources_with_options(tmp_path: Path) -> None:
    write(
        tmp_path / "sources.list",
        "# deb http://commented.invalid/debian bookworm main\n"
        "deb http://security.invalid/debian-security bookworm-security main\n"
        "deb [arch=amd64 signed-by=/usr/share/keyrings/k.gpg] http://mirror.invalid/debian"
        " bookworm main\n",
    )
    assert apt_mirror(tmp_path) == "http://mirror.invalid/debian"


def test_mirror_override_and_missing_source(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write(tmp_path / "sources.list", "deb http://archive.invalid/ubuntu noble main\n")
    with pytest.raises(BuildError, match=build.MIRROR_ENV):
        apt_mirror(tmp_path)
    monkeypatch.setenv(build.MIRROR_ENV, "http://override.invalid/debian")
    assert apt_mirror(tmp_path) == "http://override.invalid/debian"


def test_recipe_hash_follows_recipe_files_and_parent(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    copy = tmp_path / "images"
    shutil.copytree(build.IMAGES_DIR, copy, ignore=shutil.ignore_patterns("__pycache__"))
    monkeypatch.setattr(build, "IMAGES_DIR", copy)
    before = {name: recipe_hash(recipe) for name, recipe in RECIPES.items()}
    assert len(set(before.values())) == len(before)

    (copy / "redis" / ".notes").write_text("dotfiles are not part of a recipe", encoding="utf-8")
    assert recipe_hash(RECIPES["redis"]) == before["redis"]

    with (copy / "redis" / "Dockerfile").open("a", encoding="utf-8") as dockerfile:
        dockerfile.write("# changed\n")
    assert recipe_hash(RECIPES["redis"]) != before["redis"]
    assert recipe_hash(RECIPES["postgres"]) == before["postgres"]

    (copy / "debian-base" / "build-rootfs.sh").chmod(0o644)  # the mode is part of the recipe
    after = {name: recipe_hash(recipe) for name, recipe in RECIPES.items()}
    assert all(after[name] != before[name] for name in RECIPES), "children follow their parent"
