"""The decision a `pulumi up` takes for one resource: same, update in place, or replace.

Two parts, as in a real deployment:
- the provider's diff (Terraform plugin SDK v2, `schemaMap.Diff`, as pulumi-docker bridges it):
  each input of the program, with the provider's defaults filled in, against what the state
  recorded. An input left out equals the zero value of its type ("", 0, false, empty); a
  computed input left out keeps the recorded value; sets compare in any order. A changed
  `ForceNew` input (`schema.py`, "replace") replaces the resource.
- Pulumi's engine on top (pkg/resource/deploy/step_generator.go, `applyReplaceOnChanges`): the
  program's `replace_on_changes` turns a change under one of its paths into a replacement; a
  resource recorded with initialisation errors (a create that failed after the resource
  existed, e.g. a container that never became healthy) is updated even with no change, and is
  replaced when `replace_on_changes` holds `#initerror` (or `*`); the resource option
  `delete_before_replace`, when set, overrides the provider's choice; `ignore_changes` keeps
  the recorded value of the inputs it names before anything is compared (in a replacement too).

Inputs made from the outputs of a resource that is itself created or replaced are not known
before the run: a preview treats them as changed, and a `ForceNew` one as a replacement
("known after apply"). The caller names them in `unknown_inputs`.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from provider.schema import DELETE_BEFORE_REPLACE, INPUTS, UPDATED_ONLY, Input

Action = Literal["same", "update", "replace"]

# The engine's key for "this resource was recorded with initialisation errors".
INIT_ERROR = "#initerror"


class UnknownInputError(ValueError):
    """An input the table in provider/schema.py does not describe: its effect is unknown."""


@dataclass(frozen=True)
class ResourceDiff:
    action: Action
    paths: tuple[str, ...] = ()
    """Changed inputs, dotted below blocks (`healthcheck.interval`)."""
    replace_reasons: tuple[str, ...] = ()
    """The inputs (or `#initerror`) that force the replacement."""
    delete_before_replace: bool = False
    """For a replacement: the old resource goes first (else the new one is created first)."""


def diff(
    type_token: str,
    recorded: Mapping[str, Any],
    desired: Mapping[str, Any],
    *,
    replace_on_changes: Iterable[str] = (),
    init_errors: bool = False,
    delete_before_replace: bool | None = None,
    unknown_inputs: Iterable[str] = (),
    ignore_changes: Iterable[str] = (),
) -> ResourceDiff:
    """What `pulumi up` does to a resource recorded as `recorded` when the program now asks for
    `desired` (both in Pulumi's input names)."""
    schema = INPUTS.get(type_token)
    ignored = set(ignore_changes)
    desired = _with_ignored_kept(recorded, desired, ignored)
    unknown = {p for p in unknown_inputs if _top(p) not in ignored}
    if schema is not None:
        paths = _changed_paths(type_token, schema, recorded, desired)
        paths = sorted(set(paths) | unknown)
        replacing = {r for p in paths if (r := _replaced_by(schema, p)) is not None}
    else:
        # pulumi-random's inputs all force a new value; see UPDATED_ONLY for the others.
        changed = {k for k in set(recorded) | set(desired) if recorded.get(k) != desired.get(k)}
        paths = sorted(changed | unknown)
        replacing = set() if type_token in UPDATED_ONLY else set(paths)
    rules = list(replace_on_changes)
    replacing |= {_top(p) for p in paths if any(_covers(rule, p) for rule in rules)}
    if init_errors and any(_covers(rule, INIT_ERROR) for rule in rules):
        replacing.add(INIT_ERROR)
    if replacing:
        dbr = type_token in DELETE_BEFORE_REPLACE
        if delete_before_replace is not None:
            dbr = delete_before_replace
        return ResourceDiff("replace", tuple(sorted(paths)), tuple(sorted(replacing)), dbr)
    if paths or init_errors:
        return ResourceDiff("update", tuple(sorted(paths)))
    return ResourceDiff("same")


def _with_ignored_kept(
    recorded: Mapping[str, Any], desired: Mapping[str, Any], ignored: set[str]
) -> dict[str, Any]:
    """The engine's `ignoreChanges`: the ignored inputs take their recorded values."""
    nested = sorted(p for p in ignored if "." in p)
    if nested:
        raise UnknownInputError(f"ignore_changes {nested}: only top-level inputs are supported")
    kept = {k: v for k, v in desired.items() if k not in ignored}
    kept.update({k: recorded[k] for k in ignored if k in recorded})
    return kept


def _top(path: str) -> str:
    return path.split(".")[0]


def _replaced_by(schema: Mapping[str, Input], path: str) -> str | None:
    """The shortest part of a changed input's path that is `ForceNew` (a container's
    `capabilities`, a service's `taskSpec.networksAdvanceds`), or None: an update."""
    names = path.split(".")
    spec = schema[names[0]]
    for depth, name in enumerate(names):
        if depth:
            spec = spec.fields[name]
        if spec.on_change == "replace":
            return ".".join(names[: depth + 1])
    return None


def _covers(rule: str, path: str) -> bool:
    """Whether a `replace_on_changes` path names `path` or one of its parents."""
    return rule == "*" or path == rule or path.startswith(rule + ".")


def _changed_paths(
    type_token: str,
    schema: Mapping[str, Input],
    recorded: Mapping[str, Any],
    desired: Mapping[str, Any],
) -> list[str]:
    unknown = sorted(set(desired) - set(schema))
    if unknown:
        raise UnknownInputError(
            f"{type_token}: inputs {unknown} are not described in provider/schema.py"
        )
    paths: list[str] = []
    for name, spec in schema.items():
        paths += _field_changes(spec, name, recorded.get(name), desired.get(name))
    return paths


def _field_changes(spec: Input, path: str, old: Any, new: Any) -> list[str]:
    if new is None and spec.computed:
        return []
    if spec.kind == "block" and isinstance(old, Mapping) and isinstance(new, Mapping):
        _refuse_unknown(spec, path, new)
        changes: list[str] = []
        for key, sub in spec.fields.items():
            changes += _field_changes(sub, f"{path}.{key}", old.get(key), new.get(key))
        return changes
    return [] if normalized(spec, old, path) == normalized(spec, new, path) else [path]


def normalized(spec: Input, value: Any, path: str = "") -> Any:
    """A value as the provider compares it: defaults filled in, absent as the type's zero,
    sets sorted."""
    if value is None:
        value = spec.default
    kind = spec.kind
    if kind == "str":
        return "" if value is None else str(value)
    if kind == "int":
        return 0 if value is None else int(value)
    if kind == "bool":
        return bool(value)
    if kind == "list":
        return list(value or [])
    if kind == "set":
        return sorted({_json(v) for v in value or []})
    if kind == "map":
        return {str(k): str(v) for k, v in (value or {}).items()}
    if kind == "block":
        return None if value is None else _normalized_block(spec, value, path)
    blocks = [_json(_normalized_block(spec, v, path)) for v in value or []]
    return blocks if kind == "block_list" else sorted(set(blocks))


def _normalized_block(spec: Input, value: Mapping[str, Any], path: str) -> dict[str, Any]:
    _refuse_unknown(spec, path, value)
    return {
        key: normalized(sub, value.get(key), f"{path}.{key}") for key, sub in spec.fields.items()
    }


def _refuse_unknown(spec: Input, path: str, value: Mapping[str, Any]) -> None:
    unknown = sorted(set(value) - set(spec.fields))
    if unknown:
        raise UnknownInputError(
            f"{path}: nested inputs {unknown} are not described in provider/schema.py"
        )


def _json(value: Any) -> str:
    return json.dumps(value, sort_keys=True)
