"""What makes an image reference pinned: one rule for the settings (refused in a prod stack file)
and the policy rules (checked on the containers built). Standard library only: the policy pack
imports it in its own virtualenv."""

from __future__ import annotations

import re


def names_its_digest(image: str) -> bool:
    """Whether the image is named by its content (`name@sha256:<64 hex>`), which no one can
    move to other bytes, unlike any tag."""
    return re.search(r"@sha256:[0-9a-f]{64}$", image) is not None


def is_pinned(image: str) -> bool:
    """A digest (`name@sha256:...`), or a version tag: one with a digit (`1.2.3`,
    `16.6-bookworm`). `latest`, `stable`, `dev` or no tag at all move under you."""
    if "@sha256:" in image:
        return True
    last = image.rsplit("/", 1)[-1]  # a registry's `host:port/` is not a tag
    tag = last.rsplit(":", 1)[1] if ":" in last else ""
    return re.search(r"\d", tag) is not None
