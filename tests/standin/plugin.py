"""A Pulumi resource provider plugin, served over gRPC the way the engine drives a real one.

The engine starts the plugin's executable with its own address as the argument, reads the
port the plugin prints on its first line, and calls the `ResourceProvider` service: `Configure`
once, then `Check`, `Diff`, `Create`, `Read`, `Update` and `Delete` per resource, side by side
for independent resources. This module is that service; each resource type's behaviour is a
`Kind` (docker_provider.py, random_provider.py).

Values cross the wire as protobuf `Struct`s: here they are plain Python values, numbers that are
whole as `int`, and a value unknown during a preview as `UNKNOWN`. The plugin asks the engine
for no secrets (`acceptSecrets: false`): the engine then sends plain values and marks as secret
the outputs whose inputs were (pkg/resource/plugin annotateSecrets), as it does for any
provider that does not keep secrets itself.

A create or update that fails after the object exists (a container that never turned healthy)
raises `InitFailedError`: the answer carries `ErrorResourceInitFailed`, as pulumi-terraform-bridge
sends it, so the engine records the resource with its initialisation errors.
"""

from __future__ import annotations

import os
import sys
import threading
import traceback
from collections.abc import Callable, Mapping, Sequence
from concurrent import futures
from dataclasses import dataclass, field
from typing import Any, NoReturn, Protocol, TypeVar

import grpc
from google.protobuf import any_pb2, empty_pb2, json_format, struct_pb2
from google.rpc import status_pb2
from pulumi.runtime.proto import engine_pb2, engine_pb2_grpc, plugin_pb2
from pulumi.runtime.proto import provider_pb2 as rpc
from pulumi.runtime.proto import provider_pb2_grpc as rpc_grpc

UNKNOWN = "04da6b54-80e4-46f7-96ec-b56ff0331ba9"
"""How the engine writes a value that is not known yet (a preview's pending output)."""
SECRET_SIG = "4dabf18193072939515e22adb298388d"

Properties = dict[str, Any]
"""A resource's inputs or outputs as plain values, in Pulumi's names."""


@dataclass(frozen=True)
class Diff:
    """A provider's answer to Diff."""

    changed: Sequence[str] = ()
    """Top-level inputs that changed."""
    replaces: Sequence[str] = ()
    """Those among them (or paths below them) that force a new resource."""
    delete_before_replace: bool = False
    detailed: Mapping[str, int] = field(default_factory=dict)
    """Path -> `rpc.PropertyDiff.Kind`, what `pulumi preview --diff` shows."""


class InitFailedError(Exception):
    """The object exists but did not become ready: recorded with these outputs and reasons."""

    def __init__(self, resource_id: str, outputs: Properties, reasons: Sequence[str]) -> None:
        super().__init__("; ".join(reasons))
        self.resource_id = resource_id
        self.outputs = outputs
        self.reasons = list(reasons)


class Kind(Protocol):
    """One resource type as a provider implements it."""

    def check(self, urn: str, olds: Properties, news: Properties) -> Properties: ...
    def diff(self, resource_id: str, olds: Properties, news: Properties) -> Diff: ...
    def create(self, urn: str, news: Properties, preview: bool) -> tuple[str, Properties]: ...
    def read(
        self, resource_id: str, state: Properties, inputs: Properties
    ) -> tuple[str, Properties, Properties] | None: ...
    def update(
        self, urn: str, resource_id: str, olds: Properties, news: Properties, preview: bool
    ) -> Properties: ...
    def delete(self, resource_id: str, state: Properties) -> None: ...


class KeptState:
    """A resource with nothing on the engine to read or remove (a generated value, a built
    image the provider leaves): Read gives the state back unchanged, Delete does nothing."""

    def read(
        self, resource_id: str, state: Properties, inputs: Properties
    ) -> tuple[str, Properties, Properties] | None:
        return resource_id, state, inputs

    def delete(self, resource_id: str, state: Properties) -> None:
        return None


class CheckFailedError(Exception):
    """An input is invalid; the engine shows `property: reason` and stops."""

    def __init__(self, failures: Mapping[str, str]) -> None:
        super().__init__("; ".join(f"{k}: {v}" for k, v in failures.items()))
        self.failures = dict(failures)


class Engine:
    """The engine's log, for the warnings a real provider prints (shown under the resource)."""

    def __init__(self, address: str) -> None:
        self._stub = engine_pb2_grpc.EngineStub(grpc.insecure_channel(address))

    def warn(self, urn: str, message: str) -> None:
        self._stub.Log(engine_pb2.LogRequest(severity=engine_pb2.WARNING, message=message, urn=urn))


def plain(struct: struct_pb2.Struct) -> Properties:
    """A `Struct` as plain values: whole numbers as ints (protobuf carries doubles), secrets
    unwrapped (the engine sends none to a plugin that does not accept them)."""
    value = _plain(json_format.MessageToDict(struct))
    assert isinstance(value, dict)
    return value


def _plain(value: Any) -> Any:
    if isinstance(value, dict):
        if value.get(SECRET_SIG) == "1b47061264138c4ac30d75fd1eb44270":
            return _plain(value.get("value"))
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def struct(properties: Mapping[str, Any]) -> struct_pb2.Struct:
    """Plain values as a `Struct`; None values are left out, as a provider omits unset ones."""
    message = struct_pb2.Struct()
    message.update({k: v for k, v in properties.items() if v is not None})
    return message


def type_of(urn: str) -> str:
    """`urn:pulumi:stack::project::parent$type::name` -> `type`."""
    return urn.split("::")[2].split("$")[-1]


T = TypeVar("T")


def abort(context: grpc.ServicerContext, code: grpc.StatusCode, message: str) -> NoReturn:
    """End the call with an error the engine shows as the step's."""
    context.abort(code, message)
    raise AssertionError("unreachable: grpc's abort raises")


class Provider(rpc_grpc.ResourceProviderServicer):
    """The `ResourceProvider` service over a table of kinds."""

    def __init__(
        self,
        name: str,
        version: str,
        kinds: Callable[[Properties, Engine], Mapping[str, Kind]],
    ) -> None:
        self.name, self.version = name, version
        self._make_kinds = kinds
        self.engine: Engine | None = None
        """Set by `serve`: the engine that started the plugin."""
        self._kinds: Mapping[str, Kind] = {}
        self._lock = threading.Lock()

    def kind(self, urn: str, context: grpc.ServicerContext) -> Kind:
        found = self._kinds.get(type_of(urn))
        if found is None:
            abort(
                context,
                grpc.StatusCode.INVALID_ARGUMENT,
                f"{self.name} stand-in: resource type {type_of(urn)} is not known "
                "here; add it to the stand-in before the program uses it",
            )
        return found

    def _call(self, context: grpc.ServicerContext, work: Callable[[], T]) -> T:
        try:
            return work()
        except CheckFailedError:
            raise
        except InitFailedError as err:
            detail = rpc.ErrorResourceInitFailed(
                id=err.resource_id, properties=struct(err.outputs), reasons=err.reasons
            )
            packed = any_pb2.Any()
            packed.Pack(detail)
            status = status_pb2.Status(
                code=grpc.StatusCode.UNKNOWN.value[0], message=str(err), details=[packed]
            )
            context.set_trailing_metadata(
                (("grpc-status-details-bin", status.SerializeToString()),)
            )
            abort(context, grpc.StatusCode.UNKNOWN, str(err))
        except Exception as err:  # the engine shows the message as the step's error
            print(traceback.format_exc(), file=sys.stderr, flush=True)
            abort(context, grpc.StatusCode.UNKNOWN, str(err) or type(err).__name__)

    # -- plugin and configuration ---------------------------------------------------------------

    def GetPluginInfo(self, request: empty_pb2.Empty, context: Any) -> plugin_pb2.PluginInfo:  # noqa: N802
        return plugin_pb2.PluginInfo(version=self.version)

    def CheckConfig(self, request: rpc.CheckRequest, context: Any) -> rpc.CheckResponse:  # noqa: N802
        return rpc.CheckResponse(inputs=request.news)

    def DiffConfig(self, request: rpc.DiffRequest, context: Any) -> rpc.DiffResponse:  # noqa: N802
        olds, news = plain(request.olds), plain(request.news)
        changed = sorted(k for k in set(olds) | set(news) if olds.get(k) != news.get(k))
        return rpc.DiffResponse(
            changes=rpc.DiffResponse.DIFF_SOME if changed else rpc.DiffResponse.DIFF_NONE,
            diffs=changed,
        )

    def Configure(self, request: rpc.ConfigureRequest, context: Any) -> rpc.ConfigureResponse:  # noqa: N802
        config = {k.split(":config:")[-1]: v for k, v in request.variables.items()}
        config |= plain(request.args)
        assert self.engine is not None, "serve() sets the engine before any call"
        with self._lock:
            self._kinds = self._make_kinds(config, self.engine)
        return rpc.ConfigureResponse(
            acceptSecrets=False, supportsPreview=True, acceptResources=False, acceptOutputs=False
        )

    def Cancel(self, request: empty_pb2.Empty, context: Any) -> empty_pb2.Empty:  # noqa: N802
        return empty_pb2.Empty()

    # -- resources ---------------------------------------------------------------------------------

    def Check(self, request: rpc.CheckRequest, context: Any) -> rpc.CheckResponse:  # noqa: N802
        kind = self.kind(request.urn, context)
        try:
            inputs = self._call(
                context, lambda: kind.check(request.urn, plain(request.olds), plain(request.news))
            )
        except CheckFailedError as err:
            return rpc.CheckResponse(
                inputs=request.news,
                failures=[rpc.CheckFailure(property=k, reason=v) for k, v in err.failures.items()],
            )
        return rpc.CheckResponse(inputs=struct(inputs))

    def Diff(self, request: rpc.DiffRequest, context: Any) -> rpc.DiffResponse:  # noqa: N802
        kind = self.kind(request.urn, context)
        found = self._call(
            context, lambda: kind.diff(request.id, plain(request.olds), plain(request.news))
        )
        return rpc.DiffResponse(
            changes=rpc.DiffResponse.DIFF_SOME if found.changed else rpc.DiffResponse.DIFF_NONE,
            diffs=list(found.changed),
            replaces=list(found.replaces),
            deleteBeforeReplace=found.delete_before_replace,
            detailedDiff={
                k: rpc.PropertyDiff(kind=v, inputDiff=True)  # type: ignore[arg-type]
                for k, v in found.detailed.items()
            },
            hasDetailedDiff=bool(found.detailed),
        )

    def Create(self, request: rpc.CreateRequest, context: Any) -> rpc.CreateResponse:  # noqa: N802
        kind = self.kind(request.urn, context)
        resource_id, outputs = self._call(
            context, lambda: kind.create(request.urn, plain(request.properties), request.preview)
        )
        return rpc.CreateResponse(id=resource_id, properties=struct(outputs))

    def Read(self, request: rpc.ReadRequest, context: Any) -> rpc.ReadResponse:  # noqa: N802
        kind = self.kind(request.urn, context)
        found = self._call(
            context,
            lambda: kind.read(request.id, plain(request.properties), plain(request.inputs)),
        )
        if found is None:  # gone from the engine: an empty answer tells Pulumi so
            return rpc.ReadResponse()
        resource_id, outputs, inputs = found
        return rpc.ReadResponse(id=resource_id, properties=struct(outputs), inputs=struct(inputs))

    def Update(self, request: rpc.UpdateRequest, context: Any) -> rpc.UpdateResponse:  # noqa: N802
        kind = self.kind(request.urn, context)
        outputs = self._call(
            context,
            lambda: kind.update(
                request.urn, request.id, plain(request.olds), plain(request.news), request.preview
            ),
        )
        return rpc.UpdateResponse(properties=struct(outputs))

    def Delete(self, request: rpc.DeleteRequest, context: Any) -> empty_pb2.Empty:  # noqa: N802
        kind = self.kind(request.urn, context)
        self._call(context, lambda: kind.delete(request.id, plain(request.properties)))
        return empty_pb2.Empty()


def serve(provider: Provider, argv: Sequence[str] = sys.argv[1:]) -> None:
    """Serve until the engine stops the plugin: print the port first, as every plugin does."""
    if not argv:
        print(
            f"usage: pulumi-resource-{provider.name} ENGINE_ADDRESS (the engine starts it)",
            file=sys.stderr,
        )
        raise SystemExit(2)
    provider.engine = Engine(argv[0])
    # Independent resources arrive side by side, and a create may wait minutes for health.
    server = grpc.server(
        futures.ThreadPoolExecutor(max_workers=64),
        options=[("grpc.max_receive_message_length", 400 * 1024 * 1024)],
    )
    rpc_grpc.add_ResourceProviderServicer_to_server(provider, server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    print(port, flush=True)
    # Whatever else writes to stdout would confuse the engine: from here on it goes to stderr.
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())
    server.wait_for_termination()
