"""Fixtures: the real stack files run through the real program under Pulumi mocks."""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import pytest

from plan.recorder import Graph, run_program, stack_config

SETTINGS_KEY = "ecommerce:platform"


@pytest.fixture(scope="session")
def dev_graph() -> Graph:
    return run_program("dev")


@pytest.fixture(scope="session")
def prod_graph() -> Graph:
    return run_program("prod")


@pytest.fixture(params=["dev", "prod"])
def stack_graph(request: pytest.FixtureRequest, dev_graph: Graph, prod_graph: Graph) -> Graph:
    """Both stacks, for rules that hold everywhere."""
    return dev_graph if request.param == "dev" else prod_graph


def edited(stack: str, *edits: Callable[[dict[str, Any]], None]) -> dict[str, Any]:
    """A copy of a stack file's config with `edits` applied to its `ecommerce:platform` object,
    in order."""
    config = copy.deepcopy(stack_config(stack))
    for edit in edits:
        edit(config[SETTINGS_KEY])
    return config
