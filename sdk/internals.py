"""The Pulumi SDK's internals the program relies on, each said once with why it is needed.

The SDK's public API has no list of a stack's config keys, no way to record a program's graph
with the engine's own URNs, and no serialized form of a stack's outputs. Each piece below is
reached where the SDK keeps it (pulumi 3.272); an upgrade that moves one fails its unit test
(tests/unit/sdk/test_internals.py) with the piece's name, instead of a stack that quietly
accepts a misspelt key or a plan with the wrong URNs.

Imports only pulumi and the standard library: the offline plan's recorder imports it when it
records another checkout of the program (plan/recorder.py).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from google.protobuf import struct_pb2
from pulumi.runtime import config as runtime_config
from pulumi.runtime import mocks, rpc, settings

SECRET_SIG: str = rpc._special_sig_key
"""The key that marks a secret in serialized properties (the recorder finds secrets by it)."""
SECRET_VALUE: str = rpc._special_secret_sig
"""Its value for a secret."""
URN_METHOD = "make_urn"
"""The method of the SDK's mock monitor that names a registered resource: the recorder
overrides it to write URNs as the engine does (with the parent's whole type chain)."""
MockMonitor = mocks.MockMonitor
"""The SDK's mock monitor, which the recorder extends."""


def config_keys() -> list[str]:
    """Every config key the stack was given, `namespace:key`, however the program runs: the
    CLI's language host passes them in the environment, the Automation API's inline programs
    and the mocks through the SDK's context variable (which `pulumi.Config` reads by key only).
    The loader refuses a misspelt key with them."""
    return sorted(set(runtime_config.CONFIG.get()) | set(runtime_config.get_config_env()))


def reset_root_stack() -> None:
    """Forget the root stack resource of an earlier program run in this process: the mocks
    keep the one they find, and with it the outputs it exported."""
    settings.ROOT.set(None)


async def serialize_outputs(outputs: Mapping[str, Any]) -> struct_pb2.Struct:
    """A stack's outputs as the engine receives them, secret markers included."""
    return await rpc.serialize_properties(outputs, {})
