"""Build the local test images, or reuse them when their recipe has not changed.

No image registry is reachable from CI, so every image starts from a Debian root filesystem that
debootstrap makes from the machine's own apt mirror (read from its apt configuration at run time,
never written into the repository):

    ecommerce-test/debian-base:bookworm   debootstrap --variant=minbase bookworm, `docker import`ed
    ecommerce-test/postgres:15            official postgres image's contract, Debian's postgresql-15
    ecommerce-test/redis:7                official redis image's contract, Debian's redis-server 7.0
    ecommerce-test/node-base:1            official node image's contract and Node.js binary
                                          (pinned in its downloads.json, images/downloads.py); also
                                          tagged with the official name the reference service
                                          builds FROM (images/reference-service/Dockerfile)
    ecommerce-test/reference-service:1    the reference service, for every Node.js app
    ecommerce-test/caddy-base:1           official caddy image's contract, Debian's caddy; also
                                          tagged with the official name images/edge-proxy
                                          builds FROM
    ecommerce-test/edge-proxy:1           the edge proxy (images/edge-proxy)
    ecommerce-test/postgres-pitr:15       PostgreSQL with pgBackRest and pitr (pitr/Dockerfile)
    ecommerce-test/prometheus:2           official prom/prometheus contract, Debian's prometheus
    ecommerce-test/alertmanager:0         official prom/alertmanager contract, Debian's package
    ecommerce-test/postgres-exporter:0    official postgres-exporter contract, Debian's package
    ecommerce-test/python:3               official python (alpine) contract, Debian's python3
    ecommerce-test/redis-exporter:1       official redis_exporter (alpine) contract, Debian's
    ecommerce-test/etcd:3                 etcd project's image contract, Debian's etcd-server 3.4
    ecommerce-test/haproxy:2              official haproxy image contract, Debian's haproxy 2.6

Each recipe is a folder under images/. Its hash (every file's path, mode and content, plus the
parent recipe's hash) is stored on the image as the label ``ecommerce-test.recipe-hash``; an image
whose label matches is reused, anything else is rebuilt.

Usage: ``python -m images.build [--force] [NAME ...]`` (NAME: debian-base, postgres, redis,
node-base, reference-service, caddy-base, edge-proxy, postgres-pitr, backup, prometheus,
alertmanager, postgres-exporter, redis-exporter, python, etcd, haproxy; default all).
Building debian-base needs root (or sudo) and debootstrap.
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from images import downloads

IMAGES_DIR = Path(__file__).resolve().parent
PROJECT_DIR = IMAGES_DIR.parent
HASH_LABEL = "ecommerce-test.recipe-hash"
SUITE = "bookworm"
MIRROR_ENV = "ECOMMERCE_TEST_APT_MIRROR"
CACHE_ENV = "ECOMMERCE_TEST_IMAGE_CACHE"
SYSTEM_CACHE = Path("/var/cache/ecommerce-test-images")
BUILD_TIMEOUT_S = 1200

EXIT_OK = 0
EXIT_BUILD_FAILED = 1
EXIT_USAGE = 2


class BuildError(Exception):
    """An image could not be built; the message is one line, details are in the build log."""


@dataclass(frozen=True)
class Recipe:
    """One image: the folder of its recipe, the tag it gets, the recipe it is built on."""

    name: str
    tag: str
    parent: str | None
    source: Path | None = None
    """Recipe folder outside images/ (its Dockerfile builds with the project root as context,
    unless `own_context`)."""
    own_context: bool = False
    """The recipe folder is the build context, wherever it is."""
    build_args: tuple[tuple[str, str], ...] = ()
    also_tags: tuple[str, ...] = ()
    """Further names of the image, e.g. the official image it stands in for."""

    @property
    def folder(self) -> Path:
        return self.source if self.source is not None else IMAGES_DIR / self.name

    @property
    def context(self) -> Path:
        return self.folder if self.source is None or self.own_context else PROJECT_DIR


def official_image(recipe: str, arg: str) -> str:
    """The official image a project recipe builds FROM by default (its Dockerfile's `ARG`)."""
    dockerfile = (IMAGES_DIR / recipe / "Dockerfile").read_text()
    found = re.search(rf"^ARG {arg}=(\S+)$", dockerfile, re.MULTILINE)
    if found is None:
        raise BuildError(f"images/{recipe}/Dockerfile: no `ARG {arg}=` default")
    return found.group(1)


RECIPES: dict[str, Recipe] = {
    r.name: r
    for r in (
        Recipe("debian-base", "ecommerce-test/debian-base:bookworm", None),
        Recipe("postgres", "ecommerce-test/postgres:15", "debian-base"),
        Recipe("redis", "ecommerce-test/redis:7", "debian-base"),
        Recipe(
            "node-base",
            "ecommerce-test/node-base:1",
            "debian-base",
            also_tags=(official_image("reference-service", "NODE_IMAGE"),),
        ),
        Recipe(
            "reference-service",
            "ecommerce-test/reference-service:1",
            "node-base",
            build_args=(("NODE_IMAGE", "ecommerce-test/node-base:1"),),
        ),
        Recipe(
            "caddy-base",
            "ecommerce-test/caddy-base:1",
            "debian-base",
            also_tags=(official_image("edge-proxy", "CADDY_IMAGE"),),
        ),
        Recipe(
            "edge-proxy",
            "ecommerce-test/edge-proxy:1",
            "caddy-base",
            build_args=(("CADDY_IMAGE", "ecommerce-test/caddy-base:1"),),
        ),
        # Monitoring (components/monitoring.py): the official images' contracts on Debian's
        # packages.
        Recipe("prometheus", "ecommerce-test/prometheus:2", "debian-base"),
        Recipe("alertmanager", "ecommerce-test/alertmanager:0", "debian-base"),
        Recipe("postgres-exporter", "ecommerce-test/postgres-exporter:0", "debian-base"),
        Recipe("redis-exporter", "ecommerce-test/redis-exporter:1", "debian-base"),
        Recipe("python", "ecommerce-test/python:3", "debian-base"),
        # A replicated database (docs/replication.md): its consensus store and its router.
        Recipe("etcd", "ecommerce-test/etcd:3", "debian-base"),
        Recipe("haproxy", "ecommerce-test/haproxy:2", "debian-base"),
        # The project's PostgreSQL image with pgBackRest and the pitr tool (pitr/Dockerfile),
        # on the local postgres image.
        Recipe(
            "postgres-pitr",
            "ecommerce-test/postgres-pitr:15",
            "postgres",
            source=PROJECT_DIR / "pitr",
            own_context=True,
            build_args=(("POSTGRES_IMAGE", "ecommerce-test/postgres:15"),),
        ),
        # The project's own backup image, from backup/Dockerfile, on the local postgres image
        # (its pg_dump matches the test servers' major version).
        Recipe(
            "backup",
            "ecommerce-test/backup:1",
            "postgres",
            source=PROJECT_DIR / "backup",
            build_args=(("BASE_IMAGE", "ecommerce-test/postgres:15"),),
        ),
    )
}


@dataclass(frozen=True)
class Outcome:
    """What happened to one image."""

    recipe: Recipe
    recipe_hash: str
    action: Literal["built", "reused"]
    seconds: float

    def describe(self) -> str:
        timing = f" in {self.seconds:.1f}s" if self.action == "built" else ""
        return f"{self.action} {self.recipe.tag} (recipe {self.recipe_hash[:12]}){timing}"


# ----------------------------------------------------------------------------------------------
# Recipe hashes


def recipe_files(recipe: Recipe) -> list[Path]:
    folder = recipe.folder
    if not folder.is_dir():
        raise BuildError(f"recipe folder {folder} is missing")
    return sorted(
        p
        for p in folder.rglob("*")
        if p.is_file()
        and "__pycache__" not in p.parts
        and not any(part.startswith(".") for part in p.relative_to(folder).parts)
    )


def recipe_hash(recipe: Recipe) -> str:
    """sha256 over the recipe's files (path, executable bit, content) and its parent's hash."""
    digest = hashlib.sha256()
    digest.update(f"recipe {recipe.name} {recipe.tag}\0".encode())
    if recipe.parent is not None:
        digest.update(f"parent {recipe_hash(RECIPES[recipe.parent])}\0".encode())
    for key, value in recipe.build_args:
        digest.update(f"arg {key}={value}\0".encode())
    folder = recipe.folder
    for path in recipe_files(recipe):
        executable = os.access(path, os.X_OK)
        digest.update(f"{path.relative_to(folder).as_posix()}\0{int(executable)}\0".encode())
        digest.update(path.read_bytes())
        digest.update(b"\0")
    return digest.hexdigest()


# ----------------------------------------------------------------------------------------------
# The machine: apt mirror, cache folder, root


def _deb822_stanzas(text: str) -> Iterator[dict[str, str]]:
    fields: dict[str, str] = {}
    key = ""
    for line in [*text.splitlines(), ""]:
        if not line.strip():
            if fields:
                yield fields
            fields, key = {}, ""
        elif line.startswith("#"):
            continue
        elif line[0].isspace() and key:
            fields[key] += " " + line.strip()
        elif ":" in line:
            key, _, value = line.partition(":")
            key = key.strip().lower()
            fields[key] = value.strip()


def apt_mirror(apt_dir: Path = Path("/etc/apt")) -> str:
    """The URI of the machine's apt source for Debian bookworm (or $ECOMMERCE_TEST_APT_MIRROR)."""
    override = os.environ.get(MIRROR_ENV, "").strip()
    if override:
        return override
    for path in sorted((apt_dir / "sources.list.d").glob("*.sources")):
        for stanza in _deb822_stanzas(path.read_text(encoding="utf-8", errors="replace")):
            if stanza.get("enabled", "yes").lower() == "no":
                continue
            types, suites = stanza.get("types", "").split(), stanza.get("suites", "").split()
            if "deb" in types and SUITE in suites:
                uris = stanza.get("uris", "").split()
                if uris:
                    return uris[0]
    list_files = [apt_dir / "sources.list", *sorted((apt_dir / "sources.list.d").glob("*.list"))]
    for path in list_files:
        if not path.is_file():
            continue
        for raw in path.read_text(encoding="utf-8", errors="replace").splitlines():
            words = raw.split("#", 1)[0].split()
            if len(words) >= 3 and words[0] == "deb":
                if words[1].startswith("["):  # options: deb [arch=amd64 signed-by=...] URI ...
                    while words and not words[0].endswith("]"):
                        words.pop(0)
                    words = ["deb", *words[1:]]
                if len(words) >= 3 and words[2] == SUITE:
                    return words[1]
    raise BuildError(
        f"no apt source for Debian {SUITE} in {apt_dir}; set {MIRROR_ENV} to a Debian mirror URI"
    )


def cache_dir() -> Path:
    """Where build logs, the lock and the temporary root filesystem live (outside the repo)."""
    configured = os.environ.get(CACHE_ENV)
    candidates = [Path(configured)] if configured else []
    candidates.append(SYSTEM_CACHE)
    xdg = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    candidates.append(Path(xdg) / "ecommerce-test-images")
    for candidate in candidates:
        with contextlib.suppress(OSError):
            candidate.mkdir(parents=True, exist_ok=True)
            if os.access(candidate, os.W_OK):
                return candidate
    raise BuildError(f"no writable cache folder among {', '.join(map(str, candidates))}")


def _as_root() -> list[str]:
    if os.geteuid() == 0:
        return []
    if shutil.which("sudo"):
        return ["sudo", "--non-interactive"]
    raise BuildError("building debian-base needs root (debootstrap): run as root or install sudo")


# ----------------------------------------------------------------------------------------------
# Docker


def _docker(*args: str, capture: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["docker", *args], check=False, capture_output=capture, text=True, timeout=120
    )


def image_hash(tag: str) -> str | None:
    """The recipe hash label of the local image `tag`, or None when there is no such image."""
    result = _docker("image", "inspect", "--format", "{{json .Config.Labels}}", tag)
    if result.returncode != 0:
        return None
    labels = json.loads(result.stdout.strip() or "null") or {}
    value = labels.get(HASH_LABEL) if isinstance(labels, dict) else None
    return value if isinstance(value, str) else None


def require_engine() -> None:
    if shutil.which("docker") is None:
        raise BuildError("no docker client on PATH")
    result = _docker("version", "--format", "{{.Server.Version}}")
    if result.returncode != 0:
        detail = (result.stderr.strip().splitlines() or ["no answer"])[-1]
        raise BuildError(f"no Docker engine answers ({detail}); try scripts/docker-engine start")


def _run_logged(argv: list[str], log_file: Path, *, stdin: int | None = None) -> None:
    with log_file.open("a", encoding="utf-8") as out:
        out.write(f"$ {' '.join(argv)}\n")
        out.flush()
        env = {**os.environ, "DOCKER_BUILDKIT": "0"}
        result = subprocess.run(
            argv,
            stdin=stdin,
            stdout=out,
            stderr=subprocess.STDOUT,
            check=False,
            env=env,
            timeout=BUILD_TIMEOUT_S,
        )
    if result.returncode != 0:
        tail = log_file.read_text(encoding="utf-8", errors="replace").splitlines()[-30:]
        sys.stderr.write("\n".join(["--- build log tail ---", *tail, "---", ""]))
        raise BuildError(f"`{' '.join(argv[:3])} ...` failed ({result.returncode}); see {log_file}")


def _unmount_below(root: Path) -> None:
    """Lazily unmount anything a failed debootstrap left mounted below `root` (e.g. proc)."""
    prefix = str(root.resolve()) + "/"
    mounts = Path("/proc/mounts").read_text(encoding="utf-8").splitlines()
    targets = [line.split()[1] for line in mounts if line.split()[1].startswith(prefix)]
    for target in sorted(targets, key=len, reverse=True):
        subprocess.run([*_as_root(), "umount", "-l", target], check=False)


def build_base(recipe: Recipe, digest: str, log_file: Path) -> None:
    mirror = apt_mirror()
    work = Path(tempfile.mkdtemp(prefix="rootfs-", dir=cache_dir()))
    rootfs = work / "rootfs"
    try:
        script = IMAGES_DIR / recipe.name / "build-rootfs.sh"
        _run_logged([*_as_root(), "bash", str(script), str(rootfs), mirror], log_file)
        tar = subprocess.Popen(
            [*_as_root(), "tar", "--numeric-owner", "--xattrs", "-C", str(rootfs), "-c", "."],
            stdout=subprocess.PIPE,
        )
        try:
            assert tar.stdout is not None
            _run_logged(
                [
                    "docker",
                    "import",
                    "--change",
                    f"LABEL {HASH_LABEL}={digest}",
                    "--change",
                    "ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
                    "--change",
                    'CMD ["bash"]',
                    "--message",
                    f"debootstrap --variant=minbase {SUITE}",
                    "-",
                    recipe.tag,
                ],
                log_file,
                stdin=tar.stdout.fileno(),
            )
        finally:
            if tar.stdout is not None:
                tar.stdout.close()
            if tar.wait(timeout=60) != 0:
                raise BuildError(f"tar of the root filesystem failed; see {log_file}")
    finally:
        _unmount_below(work)
        subprocess.run([*_as_root(), "rm", "-rf", "--one-file-system", str(work)], check=False)


def build_dockerfile(recipe: Recipe, digest: str, log_file: Path) -> None:
    folder = recipe.folder
    with tempfile.TemporaryDirectory(dir=cache_dir()) as scratch:
        context = recipe.context
        if context == folder:  # the pinned downloads of a recipe that is its own context
            try:
                context = downloads.build_context(folder, cache_dir(), Path(scratch))
            except (downloads.DownloadError, OSError, subprocess.TimeoutExpired) as exc:
                raise BuildError(f"{recipe.tag}: {exc}") from None
        _docker_build(recipe, digest, context, log_file)


def _docker_build(recipe: Recipe, digest: str, context: Path, log_file: Path) -> None:
    folder = recipe.folder
    build_args = [
        arg for key, value in recipe.build_args for arg in ("--build-arg", f"{key}={value}")
    ]
    # The classic builder (DOCKER_BUILDKIT=0) behaves the same with any client/daemon pair; host
    # networking lets RUN apt-get reach the mirror even where bridge NAT is unavailable.
    _run_logged(
        [
            "docker",
            "build",
            "--pull=false",
            "--force-rm",
            "--network",
            "host",
            "--label",
            f"{HASH_LABEL}={digest}",
            *build_args,
            "--tag",
            recipe.tag,
            "--file",
            str(folder / "Dockerfile"),
            str(context),
        ],
        log_file,
    )


@contextlib.contextmanager
def _build_lock() -> Iterator[None]:
    """One builder at a time on a machine (two test sessions may start together)."""
    with (cache_dir() / "build.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _with_parents(names: Sequence[str]) -> list[Recipe]:
    ordered: list[Recipe] = []

    def visit(name: str) -> None:
        if name not in RECIPES:
            raise BuildError(f"unknown image {name!r}; known: {', '.join(RECIPES)}")
        recipe = RECIPES[name]
        if recipe.parent is not None:
            visit(recipe.parent)
        if recipe not in ordered:
            ordered.append(recipe)

    for name in names:
        visit(name)
    return ordered


def ensure_images(
    names: Sequence[str] | None = None,
    *,
    force: bool = False,
    log: Callable[[str], None] = print,
) -> list[Outcome]:
    """Make sure the named images (default: all) and their parents exist with current recipes."""
    recipes = _with_parents(list(names) if names else list(RECIPES))
    require_engine()
    outcomes: list[Outcome] = []
    with _build_lock():
        rebuilt: set[str] = set()
        for recipe in recipes:
            digest = recipe_hash(recipe)
            parent_rebuilt = recipe.parent in rebuilt
            if not force and not parent_rebuilt and image_hash(recipe.tag) == digest:
                outcome = Outcome(recipe, digest, "reused", 0.0)
            else:
                log(f"building {recipe.tag} (recipe {digest[:12]}) ...")
                log_file = cache_dir() / "logs" / f"{recipe.name}-{digest[:12]}.log"
                log_file.parent.mkdir(parents=True, exist_ok=True)
                log_file.write_text("", encoding="utf-8")
                started = time.monotonic()
                if recipe.parent is None:
                    build_base(recipe, digest, log_file)
                else:
                    build_dockerfile(recipe, digest, log_file)
                if image_hash(recipe.tag) != digest:
                    raise BuildError(f"{recipe.tag} lacks label {HASH_LABEL}={digest} after build")
                rebuilt.add(recipe.name)
                outcome = Outcome(recipe, digest, "built", time.monotonic() - started)
            for name in recipe.also_tags:
                _docker("tag", recipe.tag, name)
            log(outcome.describe())
            outcomes.append(outcome)
        if rebuilt:
            # Images replaced by this build are now untagged: drop them (ours only, by label).
            _docker("image", "prune", "--force", "--filter", f"label={HASH_LABEL}")
    return outcomes


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m images.build", description="Build or reuse the local test images."
    )
    parser.add_argument("names", nargs="*", help=f"images to ensure ({', '.join(RECIPES)})")
    parser.add_argument("--force", action="store_true", help="rebuild even when up to date")
    args = parser.parse_args(argv)
    try:
        ensure_images(args.names, force=args.force)
    except BuildError as err:
        print(f"images.build: error: {err}", file=sys.stderr)
        return EXIT_BUILD_FAILED
    except subprocess.TimeoutExpired as err:
        print(f"images.build: error: timed out: {' '.join(map(str, err.cmd))}", file=sys.stderr)
        return EXIT_BUILD_FAILED
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
