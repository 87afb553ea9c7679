# mypy: ignore-errors
"""Kernel-side runtime: sent as source to each spare kernel while it warms up; never imported by
the proxy. Defines ``__toolcode_run(source, code, tools, max_calls, known, aliases)`` in the
kernel.

The run executes the request's generated module (Pydantic models + stubs with body ``...``),
replaces each stub by a recorder, runs the model's code, and publishes one report as a display
message of type ``application/vnd.toolcode.report+json``. A recorder binds the arguments with the
stub's signature, validates them with the tool's model, records them as plain JSON values and
returns a placeholder. Any use of a placeholder (reading it, testing it, printing it, passing it
to another tool) means the code needs the tool's real answer, which only the client can produce:
the run stops there and reports the calls made before (design.md section 4). A call answered
earlier in the conversation (its key in ``known``, JSON text from the proxy) returns that
result instead. Each recorded call says whether it was ``bare`` (a statement of its own, its
value unused: an AST pass marks those before the code runs) and whether its result was
``needed`` (the run stopped at it); the proxy decides from those which calls go out
(``results.resolve``), exactly as for the literal path.

Nothing here is trusted by the proxy: the model's code runs in this same process and may replace
any of it. The proxy caps the report's size, parses it as JSON and validates every call again.
"""

import ast
import builtins
import contextlib
import functools
import inspect
import json
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
    def __init__(self, max_calls, known):
        self.max_calls = max_calls
        self.known = known  # call key -> the result as JSON text
        self.calls = []
        self.used = None  # {"function", "calls_before", "line"} at the first use of a result


_state = None


def _line():
    for frame in reversed(traceback.extract_stack()):
        if frame.filename == _FILENAME:
            return frame.lineno
    return None


def _use(function, index=None):
    """``index``: the recorded call whose result is used (None: a tool attribute)."""
    if _state is not None and _state.used is None:
        _state.used = {
            "function": function,
            "calls_before": len(_state.calls),
            "line": _line(),
        }
        if index is not None and index < len(_state.calls):
            _state.calls[index]["needed"] = True
    raise ResultNeeded(f"the result of {function}() is only known once the client has run it")


def _use_result(result):
    get = object.__getattribute__
    _use(get(result, "_function"), get(result, "_index"))


class ToolResult:
    """What a tool call returns in here: a stand-in for the answer the client will produce."""

    __slots__ = ("_function", "_index")

    def __init__(self, function, index):
        object.__setattr__(self, "_function", function)
        object.__setattr__(self, "_index", index)

    def __getattr__(self, name):
        _use_result(self)


def _dunder(name):
    def method(self, *args, **kwargs):
        _use_result(self)

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
        _use_result(value)
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


def _canonical(value):
    # the proxy's results._canonical: 1 == 1.0, true is not 1, None entries left out
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, (list, tuple)):
        return [_canonical(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _canonical(v) for k, v in value.items() if v is not None}
    return value


def _key(name, instance):
    """The proxy's results.call_key, from the validated arguments model."""
    validated = instance.model_dump(mode="json", by_alias=True, exclude_unset=True)
    return json.dumps(
        [name, _canonical(validated)],
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=False,
        allow_nan=False,
    )


class _Tool:
    """A tool in here: calling it records a call. Reading an attribute of the tool itself
    (``find_flight.price`` after ``find_flight(...)``) is how models often write "its result",
    so it counts as a use of that result, like an attribute of what the call returned."""

    __slots__ = ("__signature__", "__wrapped__", "_bare", "_name", "_record")

    def __init__(self, name, record):
        object.__setattr__(self, "_name", name)
        object.__setattr__(self, "_record", record)
        object.__setattr__(self, "_bare", record.bare_call)
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
        return _record(False, args, kwargs)

    def bare_call(*args, **kwargs):
        return _record(True, args, kwargs)

    def _record(bare, args, kwargs):
        state = _state
        if state.used is not None:
            raise ResultNeeded("stopped at an earlier tool result")
        if spellings:
            kwargs = _respell(name, kwargs, spellings)
        try:
            bound = signature.bind(*args, **kwargs)
        except TypeError as error:
            # a result passed to a call that does not fit is still a use of the result: the run
            # stops here, as on the literal path (check.py), and the model writes the call again
            # (_plain stops at a placeholder at any depth; a value that is not JSON-shaped
            # leaves the binding error below as the one to report)
            for value in (*args, *kwargs.values()):
                with contextlib.suppress(TypeError):
                    _plain(value, name, "")
            # named as the literal path names it: the repair round shows the model the stub
            raise TypeError(f"{name}(): {error}. The signature is {name}{signature}.") from None
        arguments = {}
        for key, value in bound.arguments.items():
            arguments[key] = _plain(value, name, key)
        data = {originals.get(key, key): value for key, value in arguments.items()}
        if var_kw is not None and isinstance(data.get(var_kw), dict):
            data.update(data.pop(var_kw))
        instance = model.model_validate(data)  # errors surface at the call, with its message
        if len(state.calls) >= state.max_calls:
            raise RuntimeError(f"too many tool calls (more than {state.max_calls})")
        state.calls.append({"function": name, "arguments": arguments, "bare": bare})
        if state.known:
            try:
                known = state.known.get(_key(name, instance))
            except (TypeError, ValueError):
                known = None
            if known is not None:
                return json.loads(known)  # a fresh copy each time: the code may change it
        return ToolResult(name, len(state.calls) - 1)

    record.__signature__ = signature
    record.bare_call = bare_call
    return _Tool(name, record)


def _bare(function):
    """What a bare statement ``f(...)`` calls: the tool's recorder that says so."""
    if isinstance(function, _Tool):
        return object.__getattribute__(function, "_bare")
    return getattr(function, "toolcode_bare", function)  # a builtin-named tool's fallback


class _MarkBare(ast.NodeTransformer):
    """``f(...)``, ``await f(...)``, ``print(f(...))`` as statements (at any depth) call
    ``__toolcode_bare(f)(...)``: the same calls the literal path reads as bare. The print goes,
    as there: printing a call is how models show it (stdout reaches no one)."""

    def __init__(self, tools):
        self.tools = tools

    def _is_tool(self, call):
        func = call.func
        name = func.id if isinstance(func, ast.Name) else getattr(func, "attr", None)
        return name in self.tools or _dotted(func) in self.tools

    def visit_Expr(self, node):
        self.generic_visit(node)
        if isinstance(node.value, ast.Name) and node.value.id in self.tools:
            # `ls` on a line of its own is that tool called without arguments (check.py)
            node.value = ast.copy_location(
                ast.Call(func=node.value, args=[], keywords=[]), node.value
            )
        target = node.value.value if isinstance(node.value, ast.Await) else node.value
        if (
            isinstance(target, ast.Call)
            and isinstance(target.func, ast.Name)
            and target.func.id == "print"
            and "print" not in self.tools
        ):
            inner = target.args[0] if len(target.args) == 1 and not target.keywords else None
            call = inner.value if isinstance(inner, ast.Await) else inner
            if not (isinstance(call, ast.Call) and self._is_tool(call)):
                return node
            node.value, target = inner, call
        if isinstance(target, ast.Call):
            marker = ast.Name(id="__toolcode_bare", ctx=ast.Load())
            target.func = ast.copy_location(
                ast.Call(func=marker, args=[target.func], keywords=[]), target.func
            )
        return node


def _dotted(node):
    """``a.b.c`` for attributes on a name (``math.factorial``), ``a`` for a name, else None."""
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        base = _dotted(node.value)
        return None if base is None else f"{base}.{node.attr}"
    return None


def _compile(code, tools):
    tree = _MarkBare(frozenset(tools)).visit(ast.parse(code, _FILENAME, "exec"))
    return compile(ast.fix_missing_locations(tree), _FILENAME, "exec")


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

    if isinstance(tool, _Tool):  # `sum(...)` as a statement is a bare call, as for the stub
        call.toolcode_bare = _or_builtin(object.__getattribute__(tool, "_bare"), builtin)
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


def run(source, code, tools, max_calls, known="{}", aliases=None):
    """``tools``: stub -> (model, **kwargs name, argument spellings, parameter -> client name
    where they differ); ``known``: the conversation's results by call key, as JSON text;
    ``aliases``: other names of tools -> (stub, None) or (None, why the name is ambiguous)."""
    global _state
    _state = state = _State(max_calls, json.loads(known))
    report = {"calls": state.calls, "used": None, "error": None}
    try:
        namespace = {"__name__": "__main__", "__builtins__": builtins, "__toolcode_bare": _bare}
        exec(compile(source, "<tools>", "exec"), namespace)
        for name, (model_name, var_kw, spellings, originals) in tools.items():
            stub, model = namespace[name], namespace[model_name]
            namespace[name] = _recorder(name, stub, model, var_kw, spellings, originals)
        for written, (name, ambiguous) in (aliases or {}).items():
            tool = _ambiguous(ambiguous) if ambiguous is not None else namespace[name]
            _alias(namespace, written, tool)
        compiled = _compile(code, {*tools, *(aliases or {})})
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
