"""The system prompt the upstream model sees, rendered from Jinja2 templates (package data)."""

from __future__ import annotations

from typing import Any

from jinja2 import Environment, PackageLoader, StrictUndefined

__all__ = ["render", "system_prompt"]

# One environment for the process: templates are compiled once and cached by Jinja2.
_ENV = Environment(
    loader=PackageLoader("litellm_toolcode", "templates"),
    autoescape=False,
    keep_trailing_newline=False,
    undefined=StrictUndefined,
    trim_blocks=False,
)


def render(template: str, **context: Any) -> str:
    """Render one of the package's templates."""
    return _ENV.get_template(template).render(**context).strip()


def system_prompt(source: str, client_system: str | None) -> str:
    """Tools shown as code, after the client's own system message (kept verbatim)."""
    return render("system.j2", source=source.strip(), client_system=client_system)
