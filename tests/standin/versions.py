"""The provider versions the program's SDKs ask the engine for, read from the installed SDKs
(the same `pulumi-plugin.json` the engine reads): the stand-ins answer as those versions."""

from __future__ import annotations

import json
from importlib import resources


def sdk_plugin_version(package: str) -> str:
    """The plugin version of an installed provider SDK, e.g. `5.2.0` for pulumi_docker."""
    text = resources.files(package).joinpath("pulumi-plugin.json").read_text()
    return str(json.loads(text)["version"])


DOCKER_VERSION = sdk_plugin_version("pulumi_docker")
RANDOM_VERSION = sdk_plugin_version("pulumi_random")
