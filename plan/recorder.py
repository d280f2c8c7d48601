"""Run the real Pulumi program under mocks and record the whole resource graph.

The one recorder of the program's graph: the unit tests assert on it, the tests' provider
stand-in deploys it, the policy rules check it and the offline plan compares two of them.

Config reaches the program the way the CLI hands it over: every key of `Pulumi.<stack>.yaml`
as a string (objects as JSON text), plus the list of keys that are secrets. The recording
monitor keeps, per resource, its inputs as the provider would receive them (camelCase keys),
which input paths are secrets, its dependencies (per input too) and its resource options; and
the stack's outputs. Nothing is asserted here: tests assert on the returned `Graph`, outside
any callback.

It also runs as a script on another checkout of the program (the offline plan's base
revision), with that checkout's code and stack files, and prints the graph as JSON:

    python plan/recorder.py --root <checkout> --stack prod --config <file.json> [--output F]

so it imports nothing of the project but the SDK internals module (sdk/internals.py, this
checkout's, which stays out of the way of the other checkout's own): the standard library,
pulumi and yaml.
"""

from __future__ import annotations

import argparse
import asyncio
import fnmatch
import hashlib
import json
import os
import runpy
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import pulumi
import yaml
from google.protobuf import json_format
from pulumi.runtime import mocks as pulumi_mocks
from pulumi.runtime.config import set_all_config

from sdk.internals import (
    SECRET_SIG,
    SECRET_VALUE,
    MockMonitor,
    reset_root_stack,
    serialize_outputs,
)

ROOT = Path(__file__).resolve().parent.parent
PROJECT = "ecommerce"
DYNAMIC_PREFIX = "pulumi-python:dynamic"
DYNAMIC_PROVIDER_KEY = "__provider"
IMAGE = "docker:index/image:Image"
ROOT_STACK_TYPE = "pulumi:pulumi:Stack"
# components/engine/rolling.py's; this module imports nothing of the project.
GENERATION_SEPARATOR = "--"


@dataclass
class Resource:
    type: str
    name: str
    urn: str
    parent: str
    inputs: dict[str, Any]
    """Plain values, secrets unwrapped."""
    secret_paths: set[str]
    """Dotted paths of inputs that were secrets, e.g. `uploads.0.content`."""
    depends_on: set[str]
    """URNs this resource waits for (explicit `depends_on` and inputs from other resources)."""
    property_dependencies: dict[str, set[str]]
    """Per input: the URNs whose outputs it is made from."""
    delete_before_replace: bool
    delete_before_replace_defined: bool
    """Whether the program set `delete_before_replace` (else the provider decides)."""
    replace_on_changes: list[str]
    ignore_changes: list[str]
    protect: bool
    provider: str = ""
    """The explicit provider's reference (`urn::id`), or "" for the default provider."""

    @property
    def service_name(self) -> str:
        """A container's Docker name without the generation of an app replaced side by side
        (`shop-order--3fa2c1` is `shop-order`)."""
        return str(self.inputs.get("name", "")).split(GENERATION_SEPARATOR)[0]

    def is_secret(self, path: str) -> bool:
        return any(p == path or p.startswith(path + ".") for p in self.secret_paths)


@dataclass
class Graph:
    resources: list[Resource] = field(default_factory=list)
    outputs: dict[str, Any] = field(default_factory=dict)
    secret_outputs: set[str] = field(default_factory=set)

    def of_type(self, type_token: str) -> list[Resource]:
        return [r for r in self.resources if r.type == type_token]

    def containers(self) -> list[Resource]:
        return self.of_type("docker:index/container:Container")

    def running_containers(self) -> list[Resource]:
        """Containers that start (secret-file seeds are only created)."""
        return [c for c in self.containers() if c.inputs.get("start", True)]

    def container(self, docker_name: str) -> Resource:
        """By Docker name; an app replaced side by side by its name before the generation
        (`shop-order` finds `shop-order--3fa2c1`)."""
        found = [c for c in self.containers() if c.service_name == docker_name]
        if len(found) != 1:
            raise LookupError(f"expected one container named {docker_name}, found {len(found)}")
        return found[0]

    def networks(self) -> list[Resource]:
        return self.of_type("docker:index/network:Network")

    def volumes(self) -> list[Resource]:
        return self.of_type("docker:index/volume:Volume")

    def name_prefix(self) -> str:
        """The stack's `namePrefix`, read off the gateway container's name."""
        gateway = next(c for c in self.containers() if c.service_name.endswith("-gateway"))
        return gateway.service_name.removesuffix("-gateway")

    def by_urn(self, urn: str) -> Resource:
        return next(r for r in self.resources if r.urn == urn)

    def to_json(self) -> str:
        def plain(value: Any) -> Any:
            return sorted(value) if isinstance(value, set) else value

        resources = []
        for r in self.resources:
            fields = {k: plain(v) for k, v in asdict(r).items()}
            fields["property_dependencies"] = {
                k: sorted(v) for k, v in r.property_dependencies.items()
            }
            resources.append(fields)
        return json.dumps(
            {
                "resources": resources,
                "outputs": self.outputs,
                "secret_outputs": sorted(self.secret_outputs),
            }
        )

    @classmethod
    def from_json(cls, text: str) -> Graph:
        data = json.loads(text)
        resources = []
        for fields in data["resources"]:
            fields["secret_paths"] = set(fields["secret_paths"])
            fields["depends_on"] = set(fields["depends_on"])
            fields["property_dependencies"] = {
                k: set(v) for k, v in fields["property_dependencies"].items()
            }
            resources.append(Resource(**fields))
        return cls(resources, data["outputs"], set(data["secret_outputs"]))


def _plain_and_secret_paths(value: Any, path: str, secrets: set[str]) -> Any:
    if isinstance(value, dict):
        if value.get(SECRET_SIG) == SECRET_VALUE:
            secrets.add(path)
            return _plain_and_secret_paths(value.get("value"), path, set())
        return {
            k: _plain_and_secret_paths(v, f"{path}.{k}" if path else k, secrets)
            for k, v in value.items()
        }
    if isinstance(value, list):
        return [_plain_and_secret_paths(v, f"{path}.{i}", secrets) for i, v in enumerate(value)]
    if isinstance(value, float) and value.is_integer():
        return int(value)  # protobuf carries every number as a double
    return value


class RecordingMonitor(MockMonitor):
    def __init__(
        self, mocks: pulumi_mocks.Mocks, graph: Graph, root: Path, outside: Path | None = None
    ) -> None:
        super().__init__(mocks)
        self.graph = graph
        self.root = root
        self.outside = outside

    def make_urn(self, parent: str, type_: str, name: str) -> str:  # sdk.internals.URN_METHOD
        """The URN the engine gives (sdk/go/common/resource/urn.New): the parent's whole
        qualified type chain, not only its last type as the SDK's mocks write it, so the URNs
        of the offline plan are the ones `pulumi up --target/--replace` take."""
        qualified = parent.split("::")[2] if parent else ""
        if qualified and qualified != ROOT_STACK_TYPE:
            type_ = f"{qualified}${type_}"
        return f"urn:pulumi:{pulumi.get_stack()}::{pulumi.get_project()}::{type_}::{name}"

    def build_context(self, context: str) -> Path:
        """A build context as the CLI would find it from `root`; one outside the checkout is
        looked up from `outside` (the working tree, when `root` is a temporary checkout of
        another revision: a sibling app repository is the same folder for both)."""
        found = (self.root / context).resolve()
        if self.outside is not None and not found.is_relative_to(self.root.resolve()):
            return (self.outside / context).resolve()
        return found

    def RegisterResource(self, request: Any) -> Any:  # noqa: N802 (gRPC method name)
        response = super().RegisterResource(request)  # type: ignore[no-untyped-call]
        if request.type != "pulumi:pulumi:Stack":
            raw = json_format.MessageToDict(request.object)
            secrets: set[str] = set()
            inputs = _plain_and_secret_paths(raw, "", secrets)
            if request.type.startswith(DYNAMIC_PREFIX):
                # A dynamic resource's serialized provider: the code's identity, not a setting.
                # Its own diff ignores it too.
                inputs.pop(DYNAMIC_PROVIDER_KEY, None)
                secrets.discard(DYNAMIC_PROVIDER_KEY)
            if request.type == IMAGE and isinstance(inputs.get("build"), dict):
                build = inputs["build"]
                dockerfile = build.get("dockerfile")
                build["contextDigest"] = context_digest(
                    self.build_context(build.get("context", ".")),
                    self.build_context(dockerfile) if dockerfile else None,
                )
            dependencies = set(request.dependencies)
            by_input = {k: set(deps.urns) for k, deps in request.propertyDependencies.items()}
            for deps in by_input.values():
                dependencies |= deps
            self.graph.resources.append(
                Resource(
                    type=request.type,
                    name=request.name,
                    urn=response.urn,
                    parent=request.parent,
                    inputs=inputs,
                    secret_paths=secrets,
                    depends_on=dependencies,
                    property_dependencies={k: v for k, v in by_input.items() if v},
                    delete_before_replace=request.deleteBeforeReplace,
                    delete_before_replace_defined=request.deleteBeforeReplaceDefined,
                    replace_on_changes=list(request.replaceOnChanges),
                    ignore_changes=list(request.ignoreChanges),
                    protect=request.protect,
                    provider=request.provider,
                )
            )
        return response


def context_digest(context: Path, dockerfile: Path | None) -> str:
    """What pulumi-docker's `Image` adds to its inputs when it checks them (`hashContext` in its
    provider/provider.go): a hash of the Dockerfile and of every file of the build context
    (name, mode, content) but those the ignore file excludes, so a changed source is a rebuild
    and an unchanged one is not. Not the provider's exact value: the same files decide it."""
    if not context.is_dir():
        return "missing"
    dockerfile = dockerfile or context / "Dockerfile"
    patterns = _ignore_patterns(context, dockerfile)
    digest = hashlib.sha256()
    if dockerfile.is_file():
        digest.update(b"Dockerfile\0" + hashlib.sha256(dockerfile.read_bytes()).digest())
    for path in sorted(context.rglob("*")):
        name = path.relative_to(context).as_posix()
        if not path.is_file() or _ignored(name, patterns):
            continue
        digest.update(f"{name}\0{path.stat().st_mode:o}\0".encode())
        digest.update(hashlib.sha256(path.read_bytes()).digest())
    return digest.hexdigest()


def _ignore_patterns(context: Path, dockerfile: Path) -> list[str]:
    """`<Dockerfile>.dockerignore` first, else the context's `.dockerignore` (Docker's order)."""
    for candidate in (Path(f"{dockerfile}.dockerignore"), context / ".dockerignore"):
        if candidate.is_file():
            lines = (line.strip() for line in candidate.read_text().splitlines())
            return [line.removeprefix("/") for line in lines if line and not line.startswith("#")]
    return []


def _ignored(name: str, patterns: Sequence[str]) -> bool:
    """Docker's ignore rules: the last pattern that matches decides, `!` takes a file back, a
    pattern covers a folder's contents, `**/` spans any folders (none included)."""
    ignored = False
    for pattern in patterns:
        include = pattern.startswith("!")
        glob = pattern.removeprefix("!").rstrip("/")
        globs = {glob, glob.replace("**/", "")} if "**/" in glob else {glob}
        if any(fnmatch.fnmatch(name, g) or fnmatch.fnmatch(name, g + "/*") for g in globs):
            ignored = not include
    return ignored


def mock_random_hex(name: str, byte_length: int) -> str:
    """What the mocks give as a `RandomId`'s hex: stable per resource, as long as a real one
    (a name made with it must fit where the real one does)."""
    return hashlib.sha256(f"random:{name}".encode()).hexdigest()[: 2 * byte_length]


def mock_container_id(name: str) -> str:
    """What the mocks give as a resource's ID (a container's, which a PIDs limit is given)."""
    return f"{name}-id"


def mock_image_id(name: str) -> str:
    """What the mocks give as a built image's local ID: stable per resource (a real build's ID
    is known only once it has run; the tests' stand-in puts the real one in its place)."""
    return "sha256:" + hashlib.sha256(name.encode()).hexdigest()


CERTIFICATES = {
    "pulumi-python:dynamic/ecommerce:CertificateAuthority",
    "pulumi-python:dynamic/ecommerce:IssuedCertificate",
}


class ProviderMocks(pulumi_mocks.Mocks):
    """Stands in for the providers: echoes inputs and fills the outputs they compute."""

    def new_resource(self, args: pulumi_mocks.MockResourceArgs) -> tuple[str, dict[str, Any]]:
        outputs = dict(args.inputs)
        if args.typ == "random:index/randomPassword:RandomPassword":
            outputs["result"] = f"generated-{args.name}"
            outputs["bcryptHash"] = f"$2a$10$generated-hash-of-{args.name}"
        if args.typ == "random:index/randomId:RandomId":
            outputs["hex"] = mock_random_hex(args.name, int(args.inputs["byteLength"]))
        if args.typ == IMAGE:
            outputs["repoDigest"] = mock_image_id(args.name)
        if args.typ in CERTIFICATES:  # what a Swarm secret of them encodes must be text
            outputs["certPem"] = f"mock certificate of {args.name}"
            outputs["keyPem"] = f"mock key of {args.name}"
        return mock_container_id(args.name), outputs

    def call(self, args: pulumi_mocks.MockCallArgs) -> tuple[dict[str, Any], None]:
        return {}, None


def stack_config(stack: str, root: Path = ROOT) -> dict[str, Any]:
    """The `config:` block of `Pulumi.<stack>.yaml`, as parsed YAML."""
    document = yaml.safe_load((root / f"Pulumi.{stack}.yaml").read_text())
    config: dict[str, Any] = document.get("config") or {}
    return config


def cli_config(config: Mapping[str, Any]) -> dict[str, str]:
    """What the CLI hands the program: strings as they are, everything else as JSON text."""
    return {k: v if isinstance(v, str) else json.dumps(v) for k, v in config.items()}


def run_program(
    stack: str,
    config: Mapping[str, Any] | None = None,
    secret_keys: Sequence[str] = (),
    graph: Graph | None = None,
    root: Path = ROOT,
    outside: Path | None = None,
) -> Graph:
    """Run `root/__main__.py` for `stack` under mocks (not a preview) and return what it built.

    `config` replaces the stack file's config (tests pass edited copies); `secret_keys` are the
    keys the CLI would have decrypted from `secure:` values. Pass `graph` to keep what was
    recorded when the program fails. Where the stack file itself asks for secrets only its
    operator sets, the config gets placeholders for them (`with_operator_secrets`).
    """

    def main() -> None:
        runpy.run_path(str(root / "__main__.py"), run_name="__main__")

    has_file = (root / f"Pulumi.{stack}.yaml").exists()
    committed = stack_config(stack, root) if has_file or config is None else None
    config = committed if config is None else config
    assert config is not None  # the stack file's, when none was given
    config, secret_keys = with_operator_secrets(config, secret_keys, committed)
    return run_under_mocks(main, stack, config, secret_keys, graph, root, outside)


OPERATOR_SECRET = "offline-plan-operator-secret"
# stacks/settings/keys.py's (this module imports nothing of the project).
PLATFORM_KEY = "ecommerce:platform"
EDGE_CERTIFICATE_KEYS = ("ecommerce:edgeTlsCertificate", "ecommerce:edgeTlsKey")


def with_operator_secrets(
    config: Mapping[str, Any],
    secret_keys: Sequence[str],
    committed: Mapping[str, Any] | None = None,
) -> tuple[dict[str, Any], list[str]]:
    """The config with a placeholder secret for each one its operator sets and git never holds,
    where the stack file (`committed`, by default `config` itself) asks for it and the config
    has none: the edge's own certificate and key (`certificates: files`, as the swarm file's
    edges share one). A run under mocks records the graph as it will be once they are set; a
    real preview or `up` stops until they are (stacks/settings/rules/other_config). A config
    edited into asking for them is left as it is: the program says what is missing."""
    platform = (config if committed is None else committed).get(PLATFORM_KEY) or {}
    tls = (platform.get("edge") or {}).get("tls") or {}
    filled, keys = dict(config), list(secret_keys)
    if tls.get("certificates") == "files":
        for key in EDGE_CERTIFICATE_KEYS:
            if key not in filled:
                filled[key] = f"{OPERATOR_SECRET}-{key.split(':')[1]}"
                keys.append(key)
    return filled, keys


def run_under_mocks(
    program: Callable[[], None],
    stack: str,
    config: Mapping[str, Any],
    secret_keys: Sequence[str] = (),
    graph: Graph | None = None,
    root: Path = ROOT,
    outside: Path | None = None,
) -> Graph:
    """Run any Pulumi program body under the recording mocks (`root`: where it runs)."""
    graph = Graph() if graph is None else graph
    # A new root stack resource for every run: set_mocks keeps the one it finds, and with it
    # the outputs an earlier run in this process exported.
    reset_root_stack()
    pulumi.runtime.set_mocks(
        ProviderMocks(),
        project=PROJECT,
        stack=stack,
        preview=False,
        monitor=RecordingMonitor(ProviderMocks(), graph, root, outside),
    )
    set_all_config(cli_config(config), list(secret_keys))

    async def record_exports() -> None:
        # Serialized as the engine would receive the stack's outputs, secret markers included.
        exports = pulumi.runtime.get_root_resource().outputs  # type: ignore[union-attr]
        struct = await serialize_outputs(exports)
        graph.outputs = _plain_and_secret_paths(
            json_format.MessageToDict(struct), "", graph.secret_outputs
        )

    def run() -> pulumi.Output[None]:
        program()
        return pulumi.Output.from_input(asyncio.ensure_future(record_exports()))

    pulumi.runtime.test(run)()  # type: ignore[no-untyped-call]
    return graph


def main(argv: Sequence[str] | None = None) -> int:
    """Record another checkout's graph for one stack; print it as JSON, or the error."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", type=Path, required=True, help="checkout of the program")
    parser.add_argument("--stack", required=True)
    parser.add_argument(
        "--config", type=Path, required=True, help='JSON {"config": {...}, "secret_keys": [...]}'
    )
    parser.add_argument("--output", type=Path, help="write the graph here, not to stdout")
    parser.add_argument(
        "--outside", type=Path, help="where build contexts outside the checkout are found"
    )
    args = parser.parse_args(argv)
    request = json.loads(args.config.read_text())
    root = args.root.resolve()
    # The checkout's own modules (stacks, components, ...) come first, never this project's;
    # this checkout's SDK internals, imported above, leave the way free for the other's.
    sys.path[0] = str(root)
    for name in [m for m in sys.modules if m == "sdk" or m.startswith("sdk.")]:
        del sys.modules[name]
    os.chdir(root)
    try:
        graph = run_program(
            args.stack, request["config"], request["secret_keys"], root=root, outside=args.outside
        )
    except Exception as err:  # the program's own error (a bad stack file) is the message
        print(str(err) or type(err).__name__, file=sys.stderr)
        return 1
    if args.output is None:
        print(graph.to_json())
    else:  # what the program itself prints cannot spoil the JSON
        args.output.write_text(graph.to_json())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
