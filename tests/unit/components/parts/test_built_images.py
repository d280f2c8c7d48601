"""Stacks may build app images from source (`build:`), as dev does with the reference service:
pulumi-docker's `Image` builds them locally, and the container runs the built image's ID, so a
rebuild that changes the image replaces the container and an unchanged source changes nothing.
"""

from __future__ import annotations

from typing import Any

import pytest

from plan import recorder
from plan.compare import UNKNOWN, compare
from plan.recorder import Graph, Resource, run_program
from provider.schema import IMAGE
from tests.unit.conftest import edited

APPS = ("gateway", "customer", "product", "order", "cart", "content", "frontend", "backoffice")


def image_of(graph: Graph, service: str) -> Resource:
    (image,) = [r for r in graph.of_type(IMAGE) if r.name == f"platform-{service}-image"]
    return image


def test_dev_builds_the_reference_service_for_every_app(dev_graph: Graph) -> None:
    assert len(dev_graph.of_type(IMAGE)) == len(APPS) + 2  # and the edge proxy, PostgreSQL
    edge = image_of(dev_graph, "edge")
    assert edge.inputs["build"]["context"] == "images/edge-proxy"
    assert dev_graph.container("shop-dev-edge").property_dependencies["image"] == {edge.urn}
    for service in APPS:
        image = image_of(dev_graph, service)
        assert image.inputs["imageName"] == f"shop-dev-{service}:local"
        assert image.inputs["skipPush"] is True
        assert image.inputs["build"]["context"] == "images/reference-service"
        assert len(image.inputs["build"]["contextDigest"]) == 64  # the context was found


def test_the_container_runs_the_built_image_by_id(dev_graph: Graph) -> None:
    for service in APPS:
        image, container = image_of(dev_graph, service), dev_graph.container(f"shop-dev-{service}")
        # The local image ID, not the tag: a tag does not change when the image does.
        assert container.inputs["image"].startswith("sha256:")
        assert container.property_dependencies["image"] == {image.urn}
    seed = dev_graph.container("shop-dev-order-secrets-seed")
    assert seed.property_dependencies["image"] == {image_of(dev_graph, "order").urn}


def test_a_dockerfile_and_build_arguments_reach_the_build() -> None:
    def custom(platform: dict[str, Any]) -> None:
        platform["services"]["cart"]["build"] = {
            "context": "images/reference-service",
            "dockerfile": "Dockerfile",
            "args": {"NODE_IMAGE": "node:22.12.0-bookworm"},
        }

    build = image_of(run_program("dev", edited("dev", custom)), "cart").inputs["build"]
    # Named within the context in the stack file (as in Compose); the provider reads it from
    # the project folder.
    assert build["dockerfile"] == "images/reference-service/Dockerfile"
    assert build["args"] == {"NODE_IMAGE": "node:22.12.0-bookworm"}


def test_changed_source_rebuilds_and_replaces_only_its_container(
    dev_graph: Graph, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert compare("dev", dev_graph, run_program("dev")).changed() == []  # unchanged: nothing
    real = recorder.context_digest
    monkeypatch.setattr(recorder, "context_digest", lambda context, dockerfile: "0" * 64)
    edited_source = run_program("dev")
    monkeypatch.setattr(recorder, "context_digest", real)
    changes = {c.name: c for c in compare("dev", dev_graph, edited_source).changed()}
    # The same context serves every app here: each image builds again, each app restarts.
    assert {c.action for n, c in changes.items() if n.endswith("-image")} == {"update"}
    order = changes["platform-order-container"]
    assert (order.action, order.replace_reasons) == ("replace", ("image",))
    assert [v.new for v in order.values] == [UNKNOWN]  # the new ID is known after the build
    # Seeds keep the image they were created from (`ignore_changes`).
    assert not any(n.endswith("-seed") for n in changes)
