"""JSON schema of the stack files, for editors (`make schema` writes stacks/stack.schema.json).

Point YAML editors at it (the first line of each Pulumi.<stack>.yaml does, for the YAML
language server) to get completion and checks of `ecommerce:platform` while typing. The
cross-field rules (ports, prod rules) are checked by the program itself.
"""

from __future__ import annotations

import json
from typing import Any

from stacks.settings import PlatformSettings
from stacks.settings.keys import NAMESPACE, SETTINGS_KEY


def stack_file_schema() -> dict[str, Any]:
    settings = PlatformSettings.model_json_schema(by_alias=True)
    definitions = settings.pop("$defs", {})
    secret = {
        "type": "object",
        "properties": {"secure": {"type": "string"}},
        "required": ["secure"],
    }
    secret_keys = "jwtSecret|redisPassword|registryPassword|[a-z0-9]+DbPassword"
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "Pulumi stack file of the e-commerce platform",
        "type": "object",
        "properties": {
            "encryptionsalt": {"type": "string"},
            "config": {
                "type": "object",
                "properties": {f"{NAMESPACE}:{SETTINGS_KEY}": settings},
                "patternProperties": {
                    f"^{NAMESPACE}:({secret_keys})$": secret,
                    "^(?!ecommerce:).+$": {},
                },
                "additionalProperties": False,
                "required": [f"{NAMESPACE}:{SETTINGS_KEY}"],
            },
        },
        "$defs": definitions,
    }


if __name__ == "__main__":
    print(json.dumps(stack_file_schema(), indent=2, sort_keys=True))
