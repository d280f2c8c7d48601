"""Two recorded graphs of one stack compared by URN: what a `pulumi up` would do to each resource.

Resources are visited after those their inputs come from, so whether an input is known before
the run is decided before its consumers are: an input made from a resource that is created or
replaced is "known after apply" and counts as changed, as in a real preview. Among resources
that do not wait for each other the order is the URNs': the program's registration order is
not fixed there (two resources made from one container's outputs register as their callbacks
happen to run), and the same change must read the same in every run.

The per-resource decision is `provider.diff`, the same one the tests' stand-in applies to a
real engine. Values are shown for reviewers, except where a secret is: there only "secret
changed" is said, never the value, not even hashed.
"""

from __future__ import annotations

import heapq
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Literal

from plan.recorder import Graph, Resource
from plan.stackfiles import PlanError
from policies.rules import SCRATCH_ROLE, SECRETS_ROLE, role_of
from provider.diff import ResourceDiff, UnknownInputError, diff
from provider.schema import CONTAINER, DELETE_BEFORE_REPLACE, IMAGE, VOLUME

Action = Literal["create", "update", "replace", "delete", "same"]
ACTIONS: tuple[Action, ...] = ("create", "update", "replace", "delete", "same")

SECRET = "[secret]"
UNKNOWN = "[known after apply]"


@dataclass(frozen=True)
class ValueChange:
    path: str
    old: Any
    """The recorded value (None: absent), `SECRET` for a secret."""
    new: Any
    """The desired value, `SECRET`, or `UNKNOWN` when it is known only after the run."""


@dataclass(frozen=True)
class Change:
    urn: str
    type: str
    name: str
    action: Action
    paths: tuple[str, ...] = ()
    replace_reasons: tuple[str, ...] = ()
    values: tuple[ValueChange, ...] = ()
    delete_before_replace: bool = False
    secret_changed: bool = False
    """A secret input (or one made from a secret) changed."""

    def describe(self) -> str:
        how = f" ({', '.join(self.replace_reasons)})" if self.replace_reasons else ""
        return f"{self.action} {self.name}{how}: {', '.join(self.paths)}"


@dataclass(frozen=True)
class Warning:
    kind: Literal["data-loss", "protected", "port-opened", "restart", "rolled", "removed"]
    message: str


@dataclass
class StackPlan:
    stack: str
    changes: list[Change]
    """Every resource of either revision, `same` ones included, in the head's order."""
    warnings: list[Warning]
    outputs: list[str] = field(default_factory=list)
    """Stack outputs whose value changes (names only: some hold secrets)."""

    def summary(self) -> dict[str, int]:
        return {action: sum(c.action == action for c in self.changes) for action in ACTIONS}

    def changed(self) -> list[Change]:
        return [c for c in self.changes if c.action != "same"]


def compare(stack: str, base: Graph | None, head: Graph | None) -> StackPlan:
    """What deploying `head` over a stack deployed from `base` does (None: no stack file)."""
    base_by_urn = {r.urn: r for r in base.resources} if base is not None else {}
    head_resources = head.resources if head is not None else []
    head_urns = {r.urn for r in head_resources}
    pending: set[str] = set()  # their outputs are known only after the run
    secret_changed: set[str] = set()
    changes: list[Change] = []
    for resource in in_stable_order(head_resources):
        recorded = base_by_urn.get(resource.urn)
        try:
            change = (
                Change(resource.urn, resource.type, resource.name, "create")
                if recorded is None
                else _compare_resource(recorded, resource, pending)
            )
        except UnknownInputError as err:
            raise PlanError(
                f"stack {stack}: {resource.name}: {err}: describe them there (from the "
                "provider's code) before the program uses them"
            ) from None
        if outputs_change(resource.type, change.action):
            pending.add(resource.urn)
        # A change that comes from a changed secret (through a secrets revision, say) says so.
        from_secret = any(deps & secret_changed for deps in resource.property_dependencies.values())
        if change.action != "same" and (change.secret_changed or from_secret):
            change = replace(change, secret_changed=True)
            secret_changed.add(resource.urn)
        changes.append(change)
    deleted = in_stable_order([r for r in base_by_urn.values() if r.urn not in head_urns])
    changes += [Change(r.urn, r.type, r.name, "delete") for r in deleted]
    base_resources = base.resources if base is not None else []
    base_outputs = base.outputs if base is not None else {}
    head_outputs = head.outputs if head is not None else {}
    outputs = sorted(
        k
        for k in set(base_outputs) | set(head_outputs)
        if base_outputs.get(k) != head_outputs.get(k)
    )
    return StackPlan(stack, changes, _warnings(changes, base_resources, head_resources), outputs)


def in_stable_order(resources: Sequence[Resource]) -> list[Resource]:
    """Each resource after its parent and those it depends on; otherwise by URN."""
    by_urn = {r.urn: r for r in resources}
    waits_for = {
        r.urn: ({r.parent} | r.depends_on | set().union(*r.property_dependencies.values()))
        & by_urn.keys()
        for r in resources
    }
    waited_by: dict[str, list[str]] = {urn: [] for urn in by_urn}
    for urn, needs in waits_for.items():
        for need in needs:
            waited_by[need].append(urn)
    ready = [urn for urn, needs in waits_for.items() if not needs]
    heapq.heapify(ready)
    ordered: list[Resource] = []
    while ready:
        urn = heapq.heappop(ready)
        ordered.append(by_urn[urn])
        for follower in waited_by[urn]:
            waits_for[follower].discard(urn)
            if not waits_for[follower]:
                heapq.heappush(ready, follower)
    # A cycle cannot be registered; should one be recorded, its members keep their order.
    placed = {r.urn for r in ordered}
    return ordered + [r for r in resources if r.urn not in placed]


def _is_component(type_token: str) -> bool:
    """The program's own component resources: no provider, no state of their own (its dynamic
    resources, `pulumi-python:dynamic/...`, have both)."""
    return type_token.split(":")[0] not in ("docker", "random", "pulumi", "pulumi-python")


def decide(
    recorded: Mapping[str, Any], desired: Resource, pending: set[str], init_errors: bool = False
) -> ResourceDiff:
    """What `pulumi up` does to `desired`, recorded with `recorded` inputs, when the resources
    in `pending` are created, replaced or rebuilt by the same run: the provider's diff with the
    resource's options, inputs made from a pending resource counting as unknown. The offline
    plan and the tests' stand-in both decide with it."""
    return diff(
        desired.type,
        recorded,
        desired.inputs,
        replace_on_changes=desired.replace_on_changes,
        init_errors=init_errors,
        delete_before_replace=(
            desired.delete_before_replace if desired.delete_before_replace_defined else None
        ),
        unknown_inputs=unknown_inputs(desired, pending),
        ignore_changes=desired.ignore_changes,
    )


def _provider_urn(resource: Resource) -> str:
    """The explicit provider a resource uses ("" for the default one), without its ID."""
    return resource.provider.rpartition("::")[0] if resource.provider else ""


def unknown_inputs(desired: Resource, pending: set[str]) -> list[str]:
    return sorted(k for k, deps in desired.property_dependencies.items() if deps & pending)


def outputs_change(type_token: str, action: str) -> bool:
    """Whether the run gives the resource new outputs, known only once it has run: a created or
    replaced resource, and an image built again (it gets a new ID)."""
    return action in ("create", "replace") or (action == "update" and type_token == IMAGE)


def _compare_resource(recorded: Resource, desired: Resource, pending: set[str]) -> Change:
    if _is_component(desired.type):
        return Change(desired.urn, desired.type, desired.name, "same")
    if _provider_urn(recorded) != _provider_urn(desired):
        # Pulumi's engine replaces a resource that moves to another provider (the default one
        # to an explicit one, as adding `registry:` does, or back).
        first = desired.type in DELETE_BEFORE_REPLACE
        return Change(
            desired.urn,
            desired.type,
            desired.name,
            "replace",
            ("provider",),
            ("provider",),
            delete_before_replace=first,
        )
    unknown = unknown_inputs(desired, pending)
    found = decide(recorded.inputs, desired, pending)
    if found.action == "same":
        return Change(desired.urn, desired.type, desired.name, "same")
    values = tuple(_value_change(recorded, desired, path, set(unknown)) for path in found.paths)
    return Change(
        desired.urn,
        desired.type,
        desired.name,
        found.action,
        found.paths,
        found.replace_reasons,
        values,
        found.delete_before_replace,
        secret_changed=any(SECRET in (v.old, v.new) for v in values),
    )


def _value_change(
    recorded: Resource, desired: Resource, path: str, unknown: set[str]
) -> ValueChange:
    if _touches_secret(recorded, path) or _touches_secret(desired, path):
        return ValueChange(path, SECRET, SECRET)
    old = _at(recorded.inputs, path)
    new = UNKNOWN if path.split(".")[0] in unknown else _at(desired.inputs, path)
    return ValueChange(path, old, new)


def _touches_secret(resource: Resource, path: str) -> bool:
    """A secret at `path`, inside it or around it."""
    return any(
        s == path or s.startswith(path + ".") or path.startswith(s + ".")
        for s in resource.secret_paths
    )


def _at(inputs: Mapping[str, Any], path: str) -> Any:
    value: Any = inputs
    for part in path.split("."):
        if isinstance(value, Mapping):
            value = value.get(part)
        elif isinstance(value, list) and part.isdigit() and int(part) < len(value):
            value = value[int(part)]
        else:
            return None
    return value


def set_difference(old: Any, new: Any) -> tuple[list[Any], list[Any]] | None:
    """For two lists: what was removed and what was added, or None for other values."""
    if not isinstance(old, list | None) or not isinstance(new, list | None):
        return None
    if old is None and new is None:
        return None
    before = [_key(v) for v in old or []]
    after = [_key(v) for v in new or []]
    removed = [v for v, k in zip(old or [], before, strict=True) if k not in after]
    added = [v for v, k in zip(new or [], after, strict=True) if k not in before]
    return removed, added


def _key(value: Any) -> str:
    return json.dumps(value, sort_keys=True)


# ----------------------------------------------------------------------------------------------
# What a reviewer must not miss


def _warnings(
    changes: Sequence[Change], base: Sequence[Resource], head: Sequence[Resource]
) -> list[Warning]:
    base_by_urn = {r.urn: r for r in base}
    head_by_urn = {r.urn: r for r in head}
    warnings: list[Warning] = []
    restarted: list[str] = []
    rolled: list[str] = []
    removed: list[str] = []
    for change in changes:
        old, new = base_by_urn.get(change.urn), head_by_urn.get(change.urn)
        gone = change.action in ("delete", "replace")
        # A secrets volume holds only what every seed writes again, a scratch volume nothing
        # to keep: no data to lose.
        keeps_nothing = (SECRETS_ROLE, SCRATCH_ROLE)
        holds_data = old is not None and role_of(old.inputs) not in keeps_nothing
        if gone and old is not None and old.type == VOLUME and holds_data:
            what = "deleted" if change.action == "delete" else "replaced by an empty one"
            message = f"volume {_docker_name(old)} is {what}: its data is lost"
            warnings.append(Warning("data-loss", message))
        # The engine refuses to delete what the state protects, and to replace what stays
        # protected (a change that also unprotects it may replace it).
        blocked = change.action == "delete" or (new is not None and new.protect)
        if gone and old is not None and old.protect and blocked:
            warnings.append(
                Warning(
                    "protected",
                    f"{old.name} ({_docker_name(old)}) is protected: "
                    "`pulumi up` stops with an error "
                    f"instead of the {change.action}; unprotect it first if the loss is intended",
                )
            )
        if new is not None and new.type == CONTAINER:
            opened = _published(new) - (_published(old) if old is not None else set())
            warnings += [
                Warning("port-opened", f"{_docker_name(new)} publishes {port}")
                for port in sorted(opened)
            ]
        if old is not None and old.type == CONTAINER and old.inputs.get("start", True):
            if change.action == "replace":
                # Delete first leaves a gap; side by side, the new one is healthy first.
                gap = change.delete_before_replace
                (restarted if gap else rolled).append(_docker_name(old))
            elif change.action == "delete":
                removed.append(_docker_name(old))
    if restarted:
        message = "containers restarted, down until the new one is healthy (delete-first): "
        warnings.append(Warning("restart", message + ", ".join(restarted)))
    if rolled:
        warnings.append(
            Warning("rolled", "containers replaced side by side, no gap: " + ", ".join(rolled))
        )
    if removed:
        warnings.append(Warning("removed", "containers removed: " + ", ".join(removed)))
    return warnings


def _docker_name(resource: Resource) -> str:
    """What operators know it by: a rolled container's name without its generation (the mocks
    make that up anyway)."""
    return resource.service_name or resource.name


def _published(container: Resource) -> set[str]:
    return {
        f"{p.get('ip') or 'all addresses'}:{p['external']} -> {p.get('internal')}"
        for p in container.inputs.get("ports") or []
        if p.get("external")
    }
