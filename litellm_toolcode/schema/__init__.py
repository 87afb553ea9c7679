"""OpenAI ``tools`` (JSON Schema) -> one Python module: Pydantic argument models + typed stubs.

The generated source is the single source of truth for validation: the host ``exec``s exactly
that source and validates every call with the models it defines (the sandbox kernel runs the same
source later). The model reads it less the argument models that only repeat their stub
(``Toolset.prompt_source``): whole blocks left out, nothing rewritten. Everything taken from the
client (names, descriptions, enum values, defaults) reaches the source only as a checked Python
identifier or a Python literal, so a schema cannot inject code.

One module per concern, lowest first: ``literals`` and ``keywords`` (shared helpers and JSON
Schema's vocabulary), ``typexpr`` (type expressions), ``naming``, ``refs`` and ``convert``
(schema -> types), ``render`` (types -> source), ``residual`` (the jsonschema check for the
rest), ``messages`` (error wording), ``toolset`` (validation) and ``build`` (the whole way, cached).
"""

from .build import build_toolset, cached_toolset
from .toolset import Toolset, ToolSpec

__all__ = ["ToolSpec", "Toolset", "build_toolset", "cached_toolset"]
