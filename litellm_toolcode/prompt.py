"""The system prompt the upstream model sees, rendered from Jinja2 templates (package data)."""

from __future__ import annotations

import functools
from typing import Any

from jinja2 import Environment, PackageLoader, StrictUndefined

__all__ = ["CACHED_PROMPT_CHARS", "SYSTEM_TEMPLATE", "render", "system_prompt"]

# One environment for the process: templates are compiled once and cached by Jinja2.
_ENV = Environment(
    loader=PackageLoader("litellm_toolcode", "templates"),
    autoescape=False,
    keep_trailing_newline=False,
    undefined=StrictUndefined,
    trim_blocks=False,
)

SYSTEM_TEMPLATE = "system.j2"
# Rendered system prompts are kept for inputs up to this size together (256 of them: a few MB
# at most); longer ones are rendered each time, where the copy costs more than the template.
CACHED_PROMPT_CHARS = 32_000


def render(template: str, **context: Any) -> str:
    """Render one of the package's templates."""
    return _ENV.get_template(template).render(**context).strip()


def _render_system(source: str, client_system: str | None) -> str:
    return render(SYSTEM_TEMPLATE, source=source.strip(), client_system=client_system)


# Keyed by the two arguments because they are all the template reads (tests/test_prompt.py
# checks its variables): the same tools and client system message render once.
_cached_system = functools.lru_cache(maxsize=256)(_render_system)


def system_prompt(source: str, client_system: str | None) -> str:
    """Tools shown as code, after the client's own system message (kept verbatim)."""
    if len(source) + len(client_system or "") > CACHED_PROMPT_CHARS:
        return _render_system(source, client_system)
    return _cached_system(source, client_system)
