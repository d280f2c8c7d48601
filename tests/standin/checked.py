"""What a bridged provider's Check, Diff and preview answer, from the tables of provider/schema.py.

- Check fills in the provider's defaults (the Terraform schema's `Default`), so what the engine
  records, diffs and hands policy packs are the inputs with those defaults;
- Diff compares the checked inputs with the recorded outputs, input by input, as the provider
  does (provider/diff.py, the provider's half of it: the engine adds its own rules); an input
  not known yet (a preview's pending output) is a change, and a replacement where it is
  `ForceNew`;
- a preview's create answers the inputs, with every computed input the program left out not
  known yet, as the bridge plans it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from provider.diff import diff as provider_diff
from provider.schema import INPUTS, Input
from tests.standin.plugin import UNKNOWN, Diff, Properties


def with_defaults(type_token: str, inputs: Properties) -> Properties:
    """The inputs with the provider's defaults where the program left them out."""
    schema = INPUTS.get(type_token)
    return inputs if schema is None else _filled(schema, inputs)


def _filled(schema: Mapping[str, Input], values: Mapping[str, Any]) -> dict[str, Any]:
    filled = dict(values)
    for name, spec in schema.items():
        value = filled.get(name)
        if value is None and spec.default is not None:
            filled[name] = spec.default
        elif isinstance(value, Mapping) and spec.fields and spec.kind == "block":
            filled[name] = _filled(spec.fields, value)
        elif isinstance(value, list) and spec.fields:
            filled[name] = [_filled(spec.fields, v) if isinstance(v, Mapping) else v for v in value]
    return filled


def unknown_paths(value: Any, path: str = "") -> list[str]:
    """Dotted paths of the values not known yet."""
    if value == UNKNOWN:
        return [path]
    if isinstance(value, Mapping):
        return [p for k, v in value.items() for p in unknown_paths(v, f"{path}.{k}" if path else k)]
    if isinstance(value, list):
        return [p for i, v in enumerate(value) for p in unknown_paths(v, f"{path}.{i}")]
    return []


def _without_unknowns(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {k: _without_unknowns(v) for k, v in value.items() if v != UNKNOWN}
    if isinstance(value, list):
        return [_without_unknowns(v) for v in value if v != UNKNOWN]
    return value


def diff(
    type_token: str, olds: Properties, news: Properties, *, delete_before_replace: bool = False
) -> Diff:
    """The provider's diff of the checked inputs against the recorded outputs."""
    unknown = {_block_path(p) for p in unknown_paths(news)}
    found = provider_diff(type_token, olds, _without_unknowns(news), unknown_inputs=unknown)
    if found.action == "same":
        return Diff()
    changed = sorted({p.split(".")[0] for p in found.paths})
    return Diff(
        changed=changed,
        replaces=sorted({p.split(".")[0] for p in found.replace_reasons}),
        delete_before_replace=found.action == "replace" and found.delete_before_replace,
        detailed=_detailed(found.paths, found.replace_reasons),
    )


def _block_path(path: str) -> str:
    """An unknown value's path as the provider's diff names inputs: list indexes dropped (a
    set's element is not addressed by position)."""
    return ".".join(part for part in path.split(".") if not part.isdigit())


def _detailed(paths: Iterable[str], replacing: Iterable[str]) -> dict[str, int]:
    from pulumi.runtime.proto import provider_pb2 as rpc

    forced = set(replacing)
    return {
        p: rpc.PropertyDiff.UPDATE_REPLACE
        if any(p == r or p.startswith(r + ".") for r in forced)
        else rpc.PropertyDiff.UPDATE
        for p in paths
    }


def preview_outputs(type_token: str, inputs: Properties) -> Properties:
    """A preview's create: the inputs, and every computed input left out not known yet."""
    schema = INPUTS.get(type_token, {})
    return dict(inputs) | {
        name: UNKNOWN for name, spec in schema.items() if spec.computed and name not in inputs
    }
