"""The policy pack's server started as `policies/analyzer` starts it, and asked over its gRPC
interface what the CLI asks: its policies, then an analysis of resources. No CLI is needed for
that (the real engine runs the pack in tests/integration/test_stacks.py).
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import grpc
import pytest
from google.protobuf import empty_pb2, json_format, struct_pb2
from pulumi.runtime.proto import analyzer_pb2, analyzer_pb2_grpc

from plan.recorder import ROOT, Graph, Resource
from policies.pack import PACK_NAME
from policies.rules import RULES, STACK_RULES


@pytest.fixture(scope="module")
def analyzer() -> Iterator[analyzer_pb2_grpc.AnalyzerStub]:
    # `policies/analyzer` runs the pack's entry point with the pack's own virtualenv; here with
    # the tests' Python, which has the same packages.
    pack = subprocess.Popen(
        [sys.executable, str(ROOT / "policies" / "__main__.py")],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        assert pack.stdout is not None
        port = pack.stdout.readline().decode().strip()
        assert port.isdigit(), pack.stderr.read().decode() if pack.stderr else port
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            yield analyzer_pb2_grpc.AnalyzerStub(channel)
    finally:
        pack.kill()
        pack.wait()


def _request(resource: Resource, **inputs: Any) -> analyzer_pb2.AnalyzeRequest:
    properties = json_format.ParseDict({**resource.inputs, **inputs}, struct_pb2.Struct())
    return analyzer_pb2.AnalyzeRequest(
        type=resource.type,
        properties=properties,
        urn=resource.urn,
        name=resource.name,
        options=analyzer_pb2.AnalyzerResourceOptions(protect=resource.protect),
    )


def test_the_pack_lists_every_rule_advisory_by_default(
    analyzer: analyzer_pb2_grpc.AnalyzerStub,
) -> None:
    info = analyzer.GetAnalyzerInfo(empty_pb2.Empty())
    assert info.name == PACK_NAME
    assert {p.name for p in info.policies} == {r.name for r in RULES} | {
        r.name for r in STACK_RULES
    }
    assert {p.enforcementLevel for p in info.policies} == {analyzer_pb2.ADVISORY}


def test_the_pack_passes_prod_and_reports_a_broken_container(
    analyzer: analyzer_pb2_grpc.AnalyzerStub, prod_graph: Graph
) -> None:
    for resource in prod_graph.resources:
        assert list(analyzer.Analyze(_request(resource)).diagnostics) == [], resource.name
    order = prod_graph.container("shop-order")
    (diagnostic,) = analyzer.Analyze(_request(order, readOnly=False)).diagnostics
    assert (diagnostic.policyName, diagnostic.urn) == ("read-only-root", order.urn)


def test_the_pack_finds_a_secret_outside_its_file(
    analyzer: analyzer_pb2_grpc.AnalyzerStub, prod_graph: Graph
) -> None:
    seed = prod_graph.container("shop-redis-secrets-seed")
    password = next(u["content"] for u in seed.inputs["uploads"] if u["file"].endswith("password"))
    redis = prod_graph.container("shop-redis")
    leaking = {r.urn: r for r in prod_graph.resources}
    stack = []
    for r in leaking.values():
        inputs = {**r.inputs, "command": [*r.inputs["command"], password]} if r is redis else {}
        request = _request(r, **inputs)
        stack.append(
            analyzer_pb2.AnalyzerResource(
                type=request.type, properties=request.properties, urn=request.urn, name=request.name
            )
        )
    diagnostics = analyzer.AnalyzeStack(analyzer_pb2.AnalyzeStackRequest(resources=stack))
    assert [(d.policyName, d.urn) for d in diagnostics.diagnostics] == [
        ("secrets-only-in-files", redis.urn)
    ]
