"""Prompts are files: this package holds them and loads them with a version.

The version is a hash of the file's bytes, so every plan records exactly which prompt text it was
made with, and an edit shows up in the audit trail even if nobody renames anything. Nothing here
formats user data into a prompt: callers do that, quoting it as data.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from importlib import resources

from core.errors import NotFound

INPUT_MARKER = "<!-- input -->"


@dataclass(frozen=True)
class Prompt:
    name: str
    text: str
    version: str
    """``<name>@<first 12 hex of sha256>``."""

    @property
    def system(self) -> str:
        """The part before the input marker (the instructions)."""
        return self.text.split(INPUT_MARKER, 1)[0].strip()

    @property
    def input_template(self) -> str:
        """The part after the input marker (a ``string.Template`` for the quoted inputs)."""
        parts = self.text.split(INPUT_MARKER, 1)
        return parts[1].strip() if len(parts) == 2 else ""


def load_prompt(name: str) -> Prompt:
    """The prompt ``prompts/<name>.md`` with its version hash."""
    if not name.replace("_", "").isalnum():
        raise NotFound("prompt", name)
    resource = resources.files(__name__).joinpath(f"{name}.md")
    if not resource.is_file():
        raise NotFound("prompt", name)
    data = resource.read_bytes()
    digest = hashlib.sha256(data).hexdigest()[:12]
    return Prompt(name=name, text=data.decode("utf-8"), version=f"{name}@{digest}")
