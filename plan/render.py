"""The plan as a pull-request comment (Markdown, one per stack) and as JSON for machines.

The Markdown puts first what a reviewer must not miss (the banner), then the counts and the
policy results, then one folded section per changed resource. A section too long for a
comment drops the values (the JSON keeps them); past that, the CI workflow cuts the comment and
links its job summary, which holds the whole plan.
"""

from __future__ import annotations

import html
import json
from collections.abc import Sequence
from typing import Any

from plan.compare import ACTIONS, SECRET, UNKNOWN, Change, ValueChange, set_difference
from plan.report import Finding, StackReport

MARKER = "<!-- ecommerce-plan:stack={stack} -->"
COMMENT_LIMIT = 60_000
"""GitHub refuses comments over 65,536 characters; this leaves room for the workflow's text."""
LONG_VALUE = 200
"""Characters of one value shown inline; a longer one is folded in its own section."""

BANNERS = {
    "data-loss": ("CAUTION", "Data loss"),
    "protected": ("CAUTION", "Protected resource"),
    "port-opened": ("WARNING", "Port opened"),
    "restart": ("WARNING", "Restarts"),
    "rolled": ("NOTE", "Rolling replacements"),
    "removed": ("NOTE", "Removals"),
}


def to_json(base: str, reports: Sequence[StackReport]) -> str:
    return json.dumps(
        {"base": base, "stacks": {r.plan.stack: _stack_json(r) for r in reports}}, indent=2
    )


def _stack_json(report: StackReport) -> dict[str, Any]:
    return {
        "summary": report.plan.summary(),
        "note": report.note,
        "changes": [
            {
                "urn": c.urn,
                "type": c.type,
                "name": c.name,
                "action": c.action,
                "paths": list(c.paths),
                "replace_reasons": list(c.replace_reasons),
                "delete_before_replace": c.delete_before_replace,
                "secret_changed": c.secret_changed,
                "values": [{"path": v.path, "old": v.old, "new": v.new} for v in c.values],
            }
            for c in report.plan.changed()
        ],
        "warnings": [{"kind": w.kind, "message": w.message} for w in report.plan.warnings],
        "outputs": report.plan.outputs,
        "policy": [
            {
                "rule": f.violation.rule,
                "urn": f.violation.urn,
                "name": f.violation.name,
                "message": f.violation.message,
                "enforcement": f.enforcement,
                "new": f.new,
            }
            for f in report.findings
        ],
    }


def to_markdown(base: str, report: StackReport) -> str:
    text = _markdown(base, report, with_values=True)
    if len(text) > COMMENT_LIMIT:
        text = _markdown(base, report, with_values=False)
    return text


def _markdown(base: str, report: StackReport, with_values: bool) -> str:
    plan = report.plan
    stack = plan.stack
    title = f"### Infrastructure plan for `{stack}`: `{_escape(base)}` → this change"
    lines = [MARKER.format(stack=stack), title, ""]
    if report.note:
        lines += [report.note, ""]
    lines += _banner(report)
    summary = plan.summary()
    lines += [
        "| " + " | ".join(ACTIONS) + " |",
        "|" + "---:|" * len(ACTIONS),
        "| " + " | ".join(str(summary[a]) for a in ACTIONS) + " |",
        "",
    ]
    lines += _policy(report)
    changed = plan.changed()
    if plan.outputs:
        lines += ["Stack outputs that change: " + ", ".join(f"`{o}`" for o in plan.outputs), ""]
    if not changed:
        lines += ["No resource changes.", ""]
    else:
        if not with_values:
            lines += [
                "_Values left out to fit one comment: "
                "`make diff BASE=… STACK=… FORMAT=json` lists them._",
                "",
            ]
        lines += [_change(c, with_values) for c in changed]
    lines += [
        "<sub>Computed offline from the program under Pulumi's mocks (`make diff`): it "
        "does not see drift on the hosts or values only the provider computes. "
        "See docs/reviewing.md.</sub>",
        "",
    ]
    return "\n".join(lines)


def _banner(report: StackReport) -> list[str]:
    lines: list[str] = []
    for kind, (alert, title) in BANNERS.items():
        messages = [w.message for w in report.plan.warnings if w.kind == kind]
        if messages:
            lines += [f"> [!{alert}]", f"> **{title}**"]
            lines += [f"> - {_escape(m)}" for m in messages]
            lines.append("")
    return lines


def _policy(report: StackReport) -> list[str]:
    findings = report.findings
    level = report.enforcement
    if not findings:
        return [f"**Policy** ({level}): every rule passes.", ""]
    new = sum(f.new for f in findings)
    mark = "❌" if level == "mandatory" else "⚠️"
    head = (
        f"{mark} **Policy** ({level}): {len(findings)} violation(s), {new} brought by this change"
    )
    rows = [
        f"- {'**new** ' if f.new else ''}`{f.violation.rule}` {f.violation.name}: "
        f"{_escape(f.violation.message)}"
        for f in _new_first(findings)
    ]
    if level == "mandatory":
        return [head, "", *rows, ""]
    return [f"<details><summary>{head}</summary>", "", *rows, "", "</details>", ""]


def _new_first(findings: Sequence[Finding]) -> list[Finding]:
    return sorted(findings, key=lambda f: not f.new)


def _change(change: Change, with_values: bool) -> str:
    summary = f"<code>{change.action}</code> <b>{html.escape(change.name)}</b>"
    summary += f" <sub>{html.escape(change.type)}</sub>"
    if change.replace_reasons:
        reasons = ", ".join(f"<code>{html.escape(r)}</code>" for r in change.replace_reasons)
        summary += f": replaced because of {reasons}"
    if change.secret_changed:
        summary += " (secret changed)"
    body: list[str] = []
    if change.action == "replace":
        order = "delete, then create" if change.delete_before_replace else "create, then delete"
        body.append(f"Replacement order: {order}.")
    if with_values and change.values:
        body += ["", "| input | before | after |", "|---|---|---|"]
        body += [_value_row(v) for v in change.values]
    elif change.paths:
        body.append("Changed inputs: " + ", ".join(f"`{p}`" for p in change.paths))
    return "\n".join([f"<details><summary>{summary}</summary>", "", *body, "", "</details>", ""])


def _value_row(value: ValueChange) -> str:
    if value.old == SECRET:
        return f"| `{value.path}` | _secret_ | _secret changed_ |"
    if value.new == UNKNOWN:
        return f"| `{value.path}` | {_cell(value.old)} | _known after apply_ |"
    difference = set_difference(value.old, value.new)
    if difference is not None:
        removed, added = difference
        old = "<br>".join(f"- {_cell(v)}" for v in removed) or "&nbsp;"
        new = "<br>".join(f"+ {_cell(v)}" for v in added) or "&nbsp;"
        return f"| `{value.path}` | {old} | {new} |"
    return f"| `{value.path}` | {_cell(value.old)} | {_cell(value.new)} |"


def _cell(value: Any) -> str:
    if value is None:
        return "_absent_"
    text = value if isinstance(value, str) else json.dumps(value, sort_keys=True)
    escaped = html.escape(text, quote=False).replace("|", "&#124;").replace("\n", "<br>")
    if len(text) > LONG_VALUE:
        return f"<details><summary>{len(text)} characters</summary><code>{escaped}</code></details>"
    return f"<code>{escaped}</code>"


def _escape(text: str) -> str:
    """Markdown text from values a change can set (names, messages): no HTML, no tables."""
    return html.escape(text).replace("|", "&#124;")
