"""Each Pulumi SDK internal the program relies on (sdk/internals.py) is still where it was, and
still does what the program needs: an SDK upgrade that moves one fails here, by name."""

from __future__ import annotations

import asyncio
import json
from contextvars import ContextVar
from typing import Any, cast

import pulumi
import pytest
from google.protobuf import json_format, struct_pb2
from pulumi.runtime import config as runtime_config
from pulumi.runtime import mocks, rpc, settings
from pulumi.runtime.proto import resource_pb2

VERSION = pulumi.__version__ if hasattr(pulumi, "__version__") else "installed"


class Mocks(mocks.Mocks):
    def new_resource(self, args: mocks.MockResourceArgs) -> tuple[str, dict[str, Any]]:
        return f"{args.name}-id", {}

    def call(self, args: mocks.MockCallArgs) -> tuple[dict[str, Any], None]:
        return {}, None


def sdk_has(module: Any, name: str) -> None:
    assert hasattr(module, name), (
        f"the Pulumi SDK ({VERSION}) has no {module.__name__}.{name} any more, which "
        "sdk/internals.py relies on: find where this SDK keeps it and update that module"
    )


def test_secret_markers_of_serialized_properties() -> None:
    sdk_has(rpc, "_special_sig_key")
    sdk_has(rpc, "_special_secret_sig")
    from sdk.internals import SECRET_SIG, SECRET_VALUE, serialize_outputs

    # Under mocks, as the recorder runs: a monitor that keeps secrets.
    pulumi.runtime.set_mocks(Mocks(), project="ecommerce", stack="sdk", preview=False)

    async def serialized() -> dict[str, Any]:
        struct = await serialize_outputs({"token": pulumi.Output.secret("s3cret"), "plain": "p"})
        assert isinstance(struct, struct_pb2.Struct)
        return json_format.MessageToDict(struct)

    found = asyncio.run(serialized())
    assert found["plain"] == "p"
    assert found["token"][SECRET_SIG] == SECRET_VALUE, f"a secret serializes as {found['token']}"


def test_every_config_key_of_the_stack(monkeypatch: pytest.MonkeyPatch) -> None:
    sdk_has(runtime_config, "CONFIG")
    assert isinstance(runtime_config.CONFIG, ContextVar)
    from sdk.internals import config_keys

    monkeypatch.setenv("PULUMI_CONFIG", json.dumps({"ecommerce:fromEnv": "1"}))
    runtime_config.set_all_config({"ecommerce:fromProgram": "2"})
    try:
        assert {"ecommerce:fromEnv", "ecommerce:fromProgram"} <= set(config_keys())
    finally:
        runtime_config.set_all_config({})


def test_the_root_stack_resource_can_be_forgotten() -> None:
    sdk_has(settings, "ROOT")
    assert isinstance(settings.ROOT, ContextVar)
    from sdk.internals import reset_root_stack

    settings.ROOT.set(cast(pulumi.Resource, object()))  # an earlier run's stack
    reset_root_stack()
    assert settings.ROOT.get() is None


def test_the_mock_monitor_names_a_resource_by_its_urn_method() -> None:
    from sdk.internals import URN_METHOD, MockMonitor

    sdk_has(mocks.MockMonitor, URN_METHOD)

    class Naming(MockMonitor):
        def make_urn(self, parent: str, type_: str, name: str) -> str:
            return f"urn:named-here:{type_}::{name}"

    request = resource_pb2.RegisterResourceRequest(
        type="docker:index/network:Network", name="edge", custom=True, object=struct_pb2.Struct()
    )
    response = Naming(Mocks()).RegisterResource(request)  # type: ignore[no-untyped-call]
    assert response.urn == "urn:named-here:docker:index/network:Network::edge", (
        f"the SDK's MockMonitor no longer names resources with {URN_METHOD}(): the offline "
        "plan's URNs would lose their parents' type chain (plan/recorder.py)"
    )
