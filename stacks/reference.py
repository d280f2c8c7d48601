"""The settings reference (docs/settings.md), generated from the settings model.

Every key of `ecommerce:platform` with its type, default, what it does (the field's docstring
in stacks/settings/) and what the prod profile refuses. `make schema` writes it beside the
editor schema; a unit test fails when either is stale, so the reference cannot drift from the
code that validates the stack files.

    .venv/bin/python -m stacks.reference > docs/settings.md
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

from stacks.settings import PROD_REFUSES, PlatformSettings
from stacks.settings.keys import NAMESPACE, SETTINGS_KEY

ROOT_MODEL = "PlatformSettings"
HEADER = f"""# Stack settings reference

Who this is for: whoever writes or reviews a stack file (`Pulumi.<stack>.yaml`). Every key of
`{NAMESPACE}:{SETTINGS_KEY}`, its type, its default and what it does; the last column says what
the `prod` profile refuses (the stack then fails before anything is deployed, naming the key).
Keys are camelCase; unknown keys and wrong types are errors. How the settings are used:
[deploying.md](deploying.md).

Generated from the settings model (`stacks/settings/`) by `make schema`; do not edit by hand.
"""


@dataclass
class Model:
    """One settings object of the schema and the places it appears in a stack file."""

    name: str
    schema: dict[str, Any]
    paths: list[str] = field(default_factory=list)


def reference() -> str:
    schema = PlatformSettings.model_json_schema(by_alias=True)
    models = {name: Model(name, definition) for name, definition in schema.pop("$defs").items()}
    models[ROOT_MODEL] = Model(ROOT_MODEL, schema, [""])
    found = [models[ROOT_MODEL]]
    _find_paths(models, ROOT_MODEL, "", found)
    return "\n".join([HEADER, *(_section(models, m) for m in found)])


def _find_paths(models: dict[str, Model], name: str, path: str, found: list[Model]) -> None:
    """Record where each model appears, and each model in the order a reader meets it."""
    for key, prop in models[name].schema.get("properties", {}).items():
        here = f"{path}.{key}" if path else key
        for ref, suffix in _refs(prop):
            child = models[ref]
            if not child.paths:
                found.append(child)
            if here + suffix not in child.paths:
                child.paths.append(here + suffix)
                _find_paths(models, ref, here + suffix, found)


def _refs(prop: dict[str, Any]) -> list[tuple[str, str]]:
    """The models a property holds, with the path suffix to reach one (`.<name>` in a map)."""
    found: list[tuple[str, str]] = []
    if "$ref" in prop:
        found.append((prop["$ref"].rsplit("/", 1)[1], ""))
    for option in prop.get("anyOf", []):
        found += _refs(option)
    if isinstance(prop.get("additionalProperties"), dict):
        found += [(ref, ".<name>" + s) for ref, s in _refs(prop["additionalProperties"])]
    if isinstance(prop.get("items"), dict):
        found += [(ref, "[]" + s) for ref, s in _refs(prop["items"])]
    return found


def _section(models: dict[str, Model], model: Model) -> str:
    title = f"`{NAMESPACE}:{SETTINGS_KEY}`" if model.name == ROOT_MODEL else f"`{model.paths[0]}`"
    lines = [f"## {title}", ""]
    if len(model.paths) > 1:
        lines += ["Also at " + ", ".join(f"`{p}`" for p in model.paths[1:]) + ".", ""]
    if model.schema.get("description"):
        lines += [_one_line(model.schema["description"]), ""]
    lines += ["| Key | Type | Default | What it does | Prod refuses |", "|---|---|---|---|---|"]
    required = set(model.schema.get("required", []))
    for key, prop in model.schema.get("properties", {}).items():
        default = "required" if key in required else _default(prop)
        paths = [f"{p}.{key}" if p else key for p in model.paths]
        refused = next((PROD_REFUSES[p] for p in paths if p in PROD_REFUSES), "")
        cells = [
            f"`{key}`",
            _type(models, prop),
            default,
            _one_line(prop.get("description", "")),
            refused,
        ]
        lines.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
    return "\n".join(lines) + "\n"


def _type(models: dict[str, Model], prop: dict[str, Any]) -> str:
    if "$ref" in prop:
        ref = prop["$ref"].rsplit("/", 1)[1]
        return f"[object](#{_anchor(models[ref].paths[0])})"
    if "anyOf" in prop:
        options = [o for o in prop["anyOf"] if o.get("type") != "null"]
        return " or ".join(_type(models, o) for o in options)
    if "enum" in prop:
        return " or ".join(f"`{json.dumps(v)}`" for v in prop["enum"])
    if "const" in prop:
        return f"`{json.dumps(prop['const'])}`"
    kind = str(prop.get("type", "any"))
    if kind == "array":
        return f"list of {_type(models, prop.get('items', {}))}"
    if kind == "object":
        values = prop.get("additionalProperties")
        return f"map of {_type(models, values)}" if isinstance(values, dict) else "object"
    return kind + _bounds(prop)


def _bounds(prop: dict[str, Any]) -> str:
    if "pattern" in prop:
        return f" (`{prop['pattern']}`)"
    low = prop.get("minimum", prop.get("exclusiveMinimum"))
    high = prop.get("maximum", prop.get("exclusiveMaximum"))
    if low is None and high is None:
        return ""
    left = "" if low is None else f"{low} {'<' if 'exclusiveMinimum' in prop else '≤'} "
    right = "" if high is None else f" {'<' if 'exclusiveMaximum' in prop else '≤'} {high}"
    return f" ({left}x{right})"


def _default(prop: dict[str, Any]) -> str:
    if "default" not in prop:
        return "empty" if prop.get("type") in ("object", "array") else ""
    value = prop["default"]
    if value is None:
        return "unset"
    if isinstance(value, dict):
        return "see its keys" if "$ref" in prop else f"`{json.dumps(value)}`"
    return f"`{json.dumps(value)}`"


def _one_line(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip()


def _anchor(path: str) -> str:
    """GitHub's anchor of a `## `path`` heading."""
    heading = path or f"{NAMESPACE}:{SETTINGS_KEY}"
    return re.sub(r"[^\w\- ]", "", heading.lower()).replace(" ", "-")


if __name__ == "__main__":
    print(reference(), end="")
