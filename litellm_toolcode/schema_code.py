"""The schema package's public names, where the stages, tests and benchmarks first imported them.

The code lives in ``litellm_toolcode/schema/``, one module per concern.
"""

from .schema import Toolset, ToolSpec, build_toolset, cached_toolset

__all__ = ["ToolSpec", "Toolset", "build_toolset", "cached_toolset"]
