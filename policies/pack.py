"""The rules as CrossGuard policies, for `pulumi preview --policy-pack policies`.

Building these objects starts nothing; `PolicyPack` (in `__main__.py`, the pack's entry point)
does, so tests import this module and call the policies' validate functions directly.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from pulumi_policy import (
    Policy,
    ReportViolation,
    ResourceValidationArgs,
    ResourceValidationPolicy,
    StackValidationArgs,
    StackValidationPolicy,
)
from pulumi_policy.proxy import UnknownValueError

from policies.rules import (
    RULES,
    STACK_RULES,
    UNKNOWN,
    Rule,
    StackRule,
    Subject,
    secret_values_leaked,
    secrets_only_in_files,
)

PACK_NAME = "ecommerce-production-rules"


def plain(value: Any) -> Any:
    """The policy SDK's values as plain ones, `UNKNOWN` for those a preview cannot know yet.
    (The SDK's proxies raise when such a value is read; a rule that read one would report
    "can't run policy" instead of judging what it can.)"""
    if isinstance(value, Mapping):
        return {key: _read(value, key) for key in value}
    if isinstance(value, Sequence) and not isinstance(value, str):
        return [_read(value, index) for index in range(len(value))]
    return value


def _read(container: Any, key: Any) -> Any:
    try:
        return plain(container[key])
    except UnknownValueError:
        return UNKNOWN


def subject_of_args(args: ResourceValidationArgs) -> Subject:
    # The policy SDK gives plain values: which were secrets is not known here (None).
    return Subject(args.resource_type, args.name, args.urn, plain(args.props), args.opts.protect)


def _validate(rule: Rule) -> Callable[[ResourceValidationArgs, ReportViolation], None]:
    def validate(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
        for message in rule.check(subject_of_args(args)):
            report_violation(message, args.urn)

    return validate


def _stack_subjects(args: StackValidationArgs) -> list[Subject]:
    return [
        Subject(r.resource_type, r.name, r.urn, plain(r.props), r.opts.protect)
        for r in args.resources
    ]


def validate_secrets(args: StackValidationArgs, report_violation: ReportViolation) -> None:
    for violation in secret_values_leaked(_stack_subjects(args)):
        report_violation(violation.message, violation.urn)


def _validate_stack(rule: StackRule) -> Callable[[StackValidationArgs, ReportViolation], None]:
    def validate(args: StackValidationArgs, report_violation: ReportViolation) -> None:
        for subject, message in rule.check(_stack_subjects(args)):
            report_violation(message, subject.urn)

    return validate


def policies() -> list[Policy]:
    """One policy per rule; secrets are found by value across the stack (see rules.py)."""
    found: list[Policy] = [
        ResourceValidationPolicy(rule.name, rule.description, _validate(rule))
        for rule in RULES
        if rule.check is not secrets_only_in_files
    ]
    secrets = next(r for r in RULES if r.check is secrets_only_in_files)
    found.append(StackValidationPolicy(secrets.name, secrets.description, validate_secrets))
    found += [
        StackValidationPolicy(rule.name, rule.description, _validate_stack(rule))
        for rule in STACK_RULES
    ]
    return found
