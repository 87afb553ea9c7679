# mypy: ignore-errors
"""Kernel-side runtime: sent as source to each spare kernel while it warms up; never imported by
the proxy. Defines ``__toolcode_run(source, code, tools, max_calls, aliases)`` in the kernel.

The run executes the request's generated module (Pydantic models + stubs with body ``...``),
replaces each stub by a recorder, runs the model's code, and publishes one report as a display
message of type ``application/vnd.toolcode.report+json``. A recorder binds the arguments with the
stub's signature, validates them with the tool's model, records them as plain JSON values and
returns a placeholder. Any use of a placeholder (reading it, testing it, printing it, passing it
to another tool) means the code needs the tool's real answer, which only the client can produce:
the run stops there and reports the calls made before (design.md section 4).

Nothing here is trusted by the proxy: the model's code runs in this same process and may replace
any of it. The proxy caps the report's size, parses it as JSON and validates every call again.
"""

import builtins
import functools
import inspect
import sys
import traceback

from IPython.display import publish_display_data as _publish
from pydantic import BaseModel, ConfigDict, Field
from pydantic_core import to_jsonable_python


class _Warm(BaseModel):  # pays pydantic's first-model costs while the kernel is a spare
    model_config = ConfigDict(extra="forbid")
    a: list[dict[str, int | float | None]] = Field(default_factory=list)


_Warm.model_validate({"a": [{"b": 1}]}).model_dump(mode="json")

_REPORT_TYPE = "application/vnd.toolcode.report+json"
_FILENAME = "<model code>"


class ResultNeeded(BaseException):
    """The code used a tool's result, which only exists once the client has run the tool."""


class _State:
    def __init__(self, max_calls):
        self.max_calls = max_calls
        self.calls = []
        self.used = None  # {"function", "calls_before", "line"} at the first use of a result


_state = None


def _line():
    for frame in reversed(traceback.extract_stack()):
        if frame.filename == _FILENAME:
            return frame.lineno
    return None


def _use(function):
    if _state is not None and _state.used is None:
        _state.used = {
            "function": function,
            "calls_before": len(_state.calls),
            "line": _line(),
        }
    raise ResultNeeded(f"the result of {function}() is only known once the client has run it")


class ToolResult:
    """What a tool call returns in here: a stand-in for the answer the client will produce."""

    __slots__ = ("_function",)

    def __init__(self, function):
        object.__setattr__(self, "_function", function)

    def __getattr__(self, name):
        _use(object.__getattribute__(self, "_function"))


def _dunder(name):
    def method(self, *args, **kwargs):
        _use(object.__getattribute__(self, "_function"))

    method.__name__ = name
    return method


for _name in [
    "__repr__",
    "__str__",
    "__format__",
    "__bytes__",
    "__bool__",
    "__len__",
    "__iter__",
    "__reversed__",
    "__contains__",
    "__getitem__",
    "__setitem__",
    "__delitem__",
    "__call__",
    "__enter__",
    "__exit__",
    "__await__",
    "__aiter__",
    "__anext__",
    "__next__",
    "__hash__",
    "__eq__",
    "__ne__",
    "__lt__",
    "__le__",
    "__gt__",
    "__ge__",
    "__int__",
    "__float__",
    "__complex__",
    "__index__",
    "__round__",
    "__trunc__",
    "__floor__",
    "__ceil__",
    "__neg__",
    "__pos__",
    "__abs__",
    "__invert__",
    "__fspath__",
    "__setattr__",
    "__delattr__",
    "__dir__",
    "__reduce__",
    "__reduce_ex__",
    "__copy__",
    "__deepcopy__",
    "__getstate__",
    "__sizeof__",
    "__instancecheck__",
] + [
    f"__{prefix}{op}__"
    for op in (
        [
            "add",
            "sub",
            "mul",
            "matmul",
            "truediv",
            "floordiv",
            "mod",
            "divmod",
            "pow",
            "lshift",
            "rshift",
            "and",
            "xor",
            "or",
        ]
    )
    for prefix in ("", "r", "i")
]:
    setattr(ToolResult, _name, _dunder(_name))


def _plain(value, function, path):
    """A JSON-shaped copy of an argument; a placeholder inside means a result is used."""
    if isinstance(value, ToolResult):
        _use(object.__getattribute__(value, "_function"))
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, BaseModel):
        for item in value.__dict__.values():
            _plain(item, function, path)
        return value.model_dump(mode="json", by_alias=True, exclude_unset=True)
    if isinstance(value, dict):
        out = {}
        for key, item in value.items():
            if not isinstance(key, str):
                raise TypeError(
                    f"{function}(): argument {path!r}: dict keys must be strings, got {key!r}"
                )
            out[key] = _plain(item, function, f"{path}.{key}")
        return out
    if isinstance(value, (list, tuple, set, frozenset)):
        return [_plain(item, function, f"{path}[{i}]") for i, item in enumerate(value)]
    try:
        return to_jsonable_python(value)
    except Exception:
        raise TypeError(
            f"{function}(): argument {path!r}: a {type(value).__name__} has no JSON form"
        ) from None


class _Tool:
    """A tool in here: calling it records a call. Reading an attribute of the tool itself
    (``find_flight.price`` after ``find_flight(...)``) is how models often write "its result",
    so it counts as a use of that result, like an attribute of what the call returned."""

    __slots__ = ("__signature__", "__wrapped__", "_name", "_record")

    def __init__(self, name, record):
        object.__setattr__(self, "_name", name)
        object.__setattr__(self, "_record", record)
        object.__setattr__(self, "__signature__", record.__signature__)
        object.__setattr__(self, "__wrapped__", record)

    def __call__(self, *args, **kwargs):
        return object.__getattribute__(self, "_record")(*args, **kwargs)

    def __getattr__(self, attribute):
        if attribute.startswith("__"):  # __name__, __module__, ...: the function's own
            return getattr(object.__getattribute__(self, "_record"), attribute)
        _use(object.__getattribute__(self, "_name"))


def _respell(name, kwargs, spellings):
    """Keyword arguments under the stub's parameter names (the client's own names, `from_` for
    `from`, ...: ``spellings`` maps each to (parameter, None) or (None, why it is ambiguous))."""
    out = {}
    for key, value in kwargs.items():
        param, ambiguous = spellings.get(key, (key, None))
        if ambiguous is not None:
            raise TypeError(f"{name}(): {ambiguous}")
        if param in out:
            raise TypeError(f"{name}(): argument {key!r} is given twice")
        out[param] = value
    return out


def _recorder(name, stub, model, var_kw, spellings, originals):
    signature = inspect.signature(stub)

    @functools.wraps(stub)
    def record(*args, **kwargs):
        state = _state
        if state.used is not None:
            raise ResultNeeded("stopped at an earlier tool result")
        if spellings:
            kwargs = _respell(name, kwargs, spellings)
        arguments = {}
        for key, value in signature.bind(*args, **kwargs).arguments.items():
            arguments[key] = _plain(value, name, key)
        data = {originals.get(key, key): value for key, value in arguments.items()}
        if var_kw is not None and isinstance(data.get(var_kw), dict):
            data.update(data.pop(var_kw))
        model.model_validate(data)  # errors surface at the call, with the model's message
        if len(state.calls) >= state.max_calls:
            raise RuntimeError(f"too many tool calls (more than {state.max_calls})")
        state.calls.append({"function": name, "arguments": arguments})
        return ToolResult(name)

    record.__signature__ = signature
    return _Tool(name, record)


class _Namespace:
    """``math`` in a client tool named ``math.factorial``; ``import math`` replaces it."""


def _or_builtin(tool, builtin):
    """A tool the client named like a builtin (``sum``): a call that fits the tool is the tool
    (what the client offered), anything else is still the builtin (``sum(range(3))``)."""

    def call(*args, **kwargs):
        try:
            return tool(*args, **kwargs)
        except (TypeError, ValueError):  # before anything is recorded: not the tool's arguments
            return builtin(*args, **kwargs)

    return call


def _ambiguous(message):
    def call(*args, **kwargs):
        raise NameError(message)

    return call


def _alias(namespace, written, tool):
    """Bind a client spelling of a tool (``sum``, ``math.factorial``) next to its stub."""
    *path, last = parts = written.split(".")
    if not all(p.isidentifier() for p in parts) or parts[0] in namespace:
        return  # `get-weather` cannot be written; never replace a stub or a model class
    if not path:
        builtin = getattr(builtins, written, None)
        namespace[written] = tool if builtin is None else _or_builtin(tool, builtin)
        return
    if hasattr(builtins, path[0]):
        return  # `str.upper` as a tool: `str` stays the builtin
    holder = namespace[path[0]] = _Namespace()
    for part in path[1:]:
        if not isinstance(holder, _Namespace):
            return
        if not hasattr(holder, part):
            setattr(holder, part, _Namespace())
        holder = getattr(holder, part)
    if isinstance(holder, _Namespace):
        setattr(holder, last, tool)


def _error(exc):
    line = None
    for frame in traceback.extract_tb(exc.__traceback__):
        if frame.filename == _FILENAME:
            line = frame.lineno
    text = f"{type(exc).__name__}: {exc}"
    return {"line": line, "message": text[:2000]}


def run(source, code, tools, max_calls, aliases=None):
    """``tools``: stub -> (model, **kwargs name, argument spellings, parameter -> client name
    where they differ); ``aliases``: other names of tools -> (stub, None) or (None, why the
    name is ambiguous)."""
    global _state
    _state = state = _State(max_calls)
    report = {"calls": state.calls, "used": None, "error": None}
    try:
        namespace = {"__name__": "__main__", "__builtins__": builtins}
        exec(compile(source, "<tools>", "exec"), namespace)
        for name, (model_name, var_kw, spellings, originals) in tools.items():
            stub, model = namespace[name], namespace[model_name]
            namespace[name] = _recorder(name, stub, model, var_kw, spellings, originals)
        for written, (name, ambiguous) in (aliases or {}).items():
            tool = _ambiguous(ambiguous) if ambiguous is not None else namespace[name]
            _alias(namespace, written, tool)
        compiled = compile(code, _FILENAME, "exec")
    except BaseException as exc:
        report["error"] = _error(exc)
        report["error"]["setup"] = True
    else:
        try:
            exec(compiled, namespace)
        except ResultNeeded:
            pass
        except BaseException as exc:
            report["error"] = _error(exc)
    report["used"] = state.used
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    except BaseException:
        pass
    _publish({_REPORT_TYPE: report})


get_ipython().user_ns["__toolcode_run"] = run  # type: ignore[name-defined]  # noqa: F821
_publish({_REPORT_TYPE: {"ready": True}})
