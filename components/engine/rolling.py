"""Rolling replacement of an app container: the new one starts beside the old one, and only once
it is healthy is the old one stopped (with its grace, for the requests in flight).

Docker names are unique, so two containers of one service need two names. The name carries a
generation, a `RandomId` kept by a digest of every input whose change replaces the container
(the provider's table, provider/schema.py): when one changes, a new generation means a new
name, the replacement is created first under it, and the old container goes afterwards. The
service's network alias stays, so callers find whichever is up; while both are, Docker's DNS
answers with both, and a caller must try the next address when one refuses (the reference
gateway does). An input the provider updates in place (memory) keeps the generation: it is
still an in-place update.

Only for containers nothing else pins to one instance: a fixed host port or a volume only one
container may use keep delete-before-replace (containers.container_options).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import Any

import pulumi
import pulumi_random as random
from pydantic.alias_generators import to_camel

from provider import schema

SEPARATOR = "--"
"""Between the service's name and its generation: `shop-order--3fa2c1`."""


def generation_name(
    name: str, docker_name: str, container_inputs: Mapping[str, Any], parent: pulumi.Resource
) -> pulumi.Output[str]:
    """The container's Docker name, new whenever an input that replaces it changes."""
    generation = random.RandomId(
        f"{name}-generation",
        byte_length=3,
        keepers={"inputs": replacing_inputs_digest(container_inputs)},
        opts=pulumi.ResourceOptions(parent=parent),
    )
    return pulumi.Output.concat(docker_name, SEPARATOR, generation.hex)


def replacing_inputs_digest(container_inputs: Mapping[str, Any]) -> pulumi.Output[str]:
    """A digest of the inputs (the `docker.Container` keyword arguments) whose change replaces
    the container: those the provider forces new, and those it never applies."""
    replacing = {
        key: value
        for key, value in container_inputs.items()
        if schema.CONTAINER_INPUTS[to_camel(key)].on_change in ("replace", "ignored")
    }
    return pulumi.Output.from_input(replacing).apply(_digest)


def _digest(values: Any) -> str:
    text = json.dumps(values, sort_keys=True, default=vars)  # input types are plain objects
    return hashlib.sha256(text.encode()).hexdigest()[:16]
