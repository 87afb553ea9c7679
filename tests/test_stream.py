"""The streaming assembler: what the client sees streamed equals the non-streaming answer.

For every answer in the table (and many generated ones), cut into many random chunkings: the
content and reasoning sent while streaming, plus what ``finish`` adds, equal ``interpret`` on the
whole text; what was sent before the end is always a prefix of that (nothing is ever taken back);
and prose before any code is released before the answer ends.
"""

from __future__ import annotations

import json
import random
from collections.abc import Iterator

import pytest

from litellm_toolcode.answer import interpret
from litellm_toolcode.errors import ModelOutputError
from litellm_toolcode.extract import split_answer, start_in_thought
from litellm_toolcode.schema_code import Toolset, build_toolset
from litellm_toolcode.stream import StreamAssembler, StreamEvent
from tests.test_proxy import TIME, WEATHER

TOOLS = [WEATHER, TIME]
TOOLSET: Toolset = build_toolset(TOOLS)
NAMES = tuple(TOOLSET.signatures)


def fence(*lines: str, lang: str = "python") -> str:
    return f"```{lang}\n" + "\n".join(lines) + "\n```"


# (answer, what must have been sent before the end: a prefix of the final content)
TABLE: list[tuple[str, str]] = [
    ("The capital of France is Paris.", "The capital of France is Paris."),
    ("  \n\nLeading blank lines and spaces go.  \n", "Leading blank lines and spaces go."),
    ("Line one.\nLine two.\n\n\nLine three.", "Line one.\nLine two.\n\n\nLine three."),
    ("Windows\r\nline\r\nends.", "Windows\nline"),  # "ends." may yet be "ends.f("
    (
        "Let me check.\n\n"
        + fence("# tool: get_weather", "get_weather(location='Rome')")
        + "\n\nI will report back.",
        "Let me check.\n\nI will report back.",
    ),
    ("Here is how:\n\n" + fence("def add(a, b):", "    return a + b"), "Here is how:"),
    (
        "Here is how:\n\n" + fence("def add(a, b):", "    return a + b") + "\nUse it well.",
        "Here is how:\n\n```python\ndef add(a, b):\n    return a + b\n```\nUse it well.",
    ),
    ("Sure.\nget_weather(location='Lima')", "Sure."),
    ("get_weather(location='Lima')", ""),
    ("Sure.\nget_weather(location='Lima')\nLet me know.", "Sure."),
    ("Sure.\nresult = get_weather('Lima')\nprint(result)", "Sure."),
    ("Checking:\nprint(get_time(timezone='UTC'))", "Checking:"),
    ("Checking:\nawait get_time(timezone='UTC')", "Checking:"),
    ("Checking:\ntools.get_time(timezone='UTC')", "Checking:"),
    ("Checking:\nget_weather(\n    location='Lima',\n)", "Checking:"),
    ("Checking:\nx = \\\n    get_weather('Lima')", "Checking:"),
    ("# tool: get_weather\nget_weather(location='Lima')", ""),
    ("# tool: none\nParis is the capital.", ""),
    (fence("# tool: none") + "\n\nParis is the capital.", "Paris is the capital."),
    # A Title-case first word is no name code would assign to or call through: sent at once.
    (fence("# tool: none", "print('hi')") + "\nDone.", "```python\nprint('hi')\n```\nDone."),
    (
        "get_weather(location='A') is what I would call.\n"
        + fence("get_weather(location='B')")
        + "\nThen.",
        "get_weather(location='A') is what I would call.\n\nThen.",
    ),
    (
        "Maybe:\nget_weather(location='A')\n" + fence("get_weather(location='B')") + "\nEnd.",
        "Maybe:\nget_weather(location='A')\n\nEnd.",
    ),
    (
        "A JSON example:\n" + fence('{"a": 1}', lang="json") + "\nok",
        'A JSON example:\n```json\n{"a": 1}\n```',  # "ok" may yet be "ok = f("
    ),
    (
        "Paris (France) is lovely.\nx = 5 is a number.",
        "Paris (France) is lovely.\nx = 5 is a number.",
    ),
    ("get_weather is the tool I would use.", "get_weather is the tool I would use."),
    ("<think>The user wants Rome.</think>\nIt is sunny in Rome.", "It is sunny in Rome."),
    (
        "<think>Maybe get_weather(location='Wrong')? No.</think>\n"
        + fence("# tool: get_weather", "get_weather(location='Madrid')"),
        "",
    ),
    ("<think>cut off while thinking get_weather(", ""),
    ("Answer first <think>then a thought</think> then more.", "Answer first\n\n then more."),
    ("a < b and c <thinking> d", "a < b and c <thinking> d"),
    ("Broken:\n" + fence("# tool: get_weather", "get_weather(location='Oslo'"), "Broken:"),
    ("Truncated:\n```python\nget_weather(location='Os", "Truncated:"),
    ("Loop:\n" + fence("for c in ['A']:", "    get_weather(location=c)"), "Loop:"),
    ("~~~python\nget_time(timezone='UTC')\n~~~\nThere.", "There."),
    ("Unknown:\n" + fence("# tool: get_stock", "get_stock(symbol='X')"), "Unknown:"),
    ("Indented:\n    ```python\n    get_time(timezone='UTC')\n    ```", "Indented:"),
    # A think tag inside an open fence is code; streaming goes on after the fence.
    (
        "Let me search.\n"
        + fence("# tool: get_weather", 'get_weather(location="what does <think> mean")')
        + "\nDone.",
        "Let me search.\n\nDone.",
    ),
    (fence("get_weather(location='</think>')") + "\nAfter.", "After."),
    (
        "<think>Plan.</think>\n"
        + fence("get_time(timezone='<think>')")
        + "\n<think>More.</think>\nOk.",
        "Ok.",
    ),
    (
        "HTML:\n" + fence("<think>", "</think>", lang="html") + "\nEnd.",
        "HTML:\n```html\n<think>\n</think>\n```\nEnd.",
    ),
    ("Checking:\n```python\nget_weather(location='<think>", "Checking:"),
    # Rare shapes that wait for the end: a tag on a fence's opening line, after held code.
    ("```python<think>t</think>\nget_time(timezone='UTC')\n```\nok", ""),
    ("Sure.\nget_weather(location='A')\n<think>hm</think>\nok", "Sure."),
]
# The chat template pre-filled "<think>": the text before "</think>" was sent as content
# before the closing tag showed it was thought. Sent text is never taken back.
PREFILLED = "thinking about get_weather</think>It is sunny."

# Pieces for generated answers.
PROSE = [
    "The weather is fine.",
    "Sure, here you go:",
    "x = 5 is the answer",
    "Paris (France) is lovely.",
    "Note: get_weather is a tool.",
    "   indented prose",
    "",
    "",
    "trailing spaces   ",
    "a < b > c",
    "Done.",
    "print is a builtin",
    "tools.get_time is namespaced",
]
CODE = [
    fence("# tool: get_weather", "get_weather(location='Rome')"),
    fence("get_time(timezone='UTC')", lang="py"),
    fence("# tool: none"),
    fence("def f():", "    return 1"),
    fence('{"a": 1}', lang="json"),
    fence("get_weather(location='A')", "get_weather(location='B', unit='celsius')", lang=""),
    "get_weather(location='Lima')",
    "print(get_time('UTC'))",
    "# tool: get_time\nget_time(timezone='UTC')",
    "# tool: none",
    "<think>hmm get_weather(location='X')\n```python\n</think>",
    "<think>short</think>",
    "```python\nget_weather(location='Os",
    "get_weather(location=",
    "x = (\n    get_weather('A'))",
    "print(\n    get_time('UTC'))",
    "  get_weather(location='indented')",
    "~~~\nget_time('UTC')\n~~~",
    "````python\nget_time('UTC')\n````",
    "```python\nget_time('UTC')```",
    "default_api.get_time(timezone='UTC')",
    "result = get_weather('A')\nprint(result)",
    "get_weather('A'); get_time('UTC')",
    "```bash\nls -l\n```",
    "<THINK>upper case get_time('x')</THINK>",
    "text with ``` in the middle",
    "x = 5\nx =",
    "await get_time('UTC')",
    "# tool: get_weather",
    "```python\n<think>odd</think>\nget_time('UTC')\n```",
    # No piece with a think tag starts with a bare fence line: it could close an open fence
    # and leave its "</think>" outside, a pre-filled shape the generated test skips.
    "```python\nget_weather(location='<think> x')\n```",
    "```py\nget_time('</think>')\n```",
    "```html\n<think>\n</think>\n```",
    "```python<think>t</think>\nget_time('UTC')\n```",
]


def generated(count: int, seed: int) -> Iterator[str]:
    rnd = random.Random(seed)
    for _ in range(count):
        pieces = [
            rnd.choice(PROSE if rnd.random() < 0.6 else CODE) for _ in range(rnd.randint(1, 6))
        ]
        newline = rnd.choice(["\n", "\n\n", "\r\n"])
        yield newline.join(pieces) + rnd.choice(["", "\n", "  "])


def chunkings(text: str, seed: int, count: int) -> Iterator[list[str]]:
    rnd = random.Random(seed)
    yield [text]
    yield list(text)  # one character at a time
    for _ in range(count if len(text) > 1 else 0):
        cuts = sorted(rnd.sample(range(1, len(text)), min(len(text) - 1, rnd.randint(1, 40))))
        yield [text[a:b] for a, b in zip([0, *cuts], [*cuts, len(text)], strict=True)]


def joined(events: list[StreamEvent], kind: str) -> str:
    return "".join(e.text for e in events if e.kind == kind)


def stream(
    chunks: list[str], names: tuple[str, ...] = NAMES, *, in_thought: bool = False
) -> tuple[StreamAssembler, list]:
    assembler = StreamAssembler(names, in_thought=in_thought)
    events: list[StreamEvent] = []
    for chunk in chunks:
        events += assembler.feed(chunk)
    return assembler, events


def check_against_non_streaming(
    text: str, seed: int, count: int = 12, *, in_thought: bool = False
) -> str:
    """Assert the streaming invariants for ``text``; return what was sent before the end."""
    answer = split_answer(start_in_thought(text) if in_thought else text, NAMES)
    before_end = None
    for chunks in chunkings(text, seed, count):
        assembler, early = stream(chunks, in_thought=in_thought)
        assert assembler.text == text
        sent = joined(early, "content")
        thought = joined(early, "reasoning")
        assert (answer.content or "").startswith(sent), (chunks, sent)
        assert (answer.reasoning or "").startswith(thought), (chunks, thought)
        rest = assembler.finish(answer.content, answer.reasoning)
        assert ((sent + joined(rest, "content")) or None) == answer.content
        assert ((thought + joined(rest, "reasoning")) or None) == answer.reasoning
        if before_end is None or len(sent) < len(before_end):
            before_end = sent  # the least any chunking released early
    assert before_end is not None
    return before_end


@pytest.mark.parametrize(("text", "early"), TABLE, ids=[t[:30] for t, _ in TABLE])
def test_table(text: str, early: str) -> None:
    released = check_against_non_streaming(text, seed=len(text))
    assert released == early


@pytest.mark.parametrize("seed", range(8))
def test_generated_answers_stream_as_they_would_answer_whole(seed: int) -> None:
    for text in generated(40, seed):
        if "</think>" in text and "<think>" not in text.split("</think>")[0]:
            continue  # pre-filled thinking: see test_prefilled_think_never_takes_back
        check_against_non_streaming(text, seed, count=4)


def test_client_view_equals_interpret_with_tool_calls() -> None:
    """Content and tool calls the client ends with equal ``interpret`` on the whole text."""
    for seed in range(4):
        for text in generated(40, 100 + seed):
            try:
                whole = interpret(text, TOOLSET)
            except ModelOutputError:
                continue  # the same error either way: the hook settles the same text
            for chunks in chunkings(text, seed, 3):
                assembler, early = stream(chunks)
                settled = interpret(assembler.text, TOOLSET)
                rest = assembler.finish(settled.content, settled.reasoning)
                events = early + rest
                assert (joined(events, "content") or None) == whole.content
                assert (joined(events, "reasoning") or None) == whole.reasoning
                assert [(c.name, json.loads(c.arguments)) for c in settled.tool_calls] == [
                    (c.name, json.loads(c.arguments)) for c in whole.tool_calls
                ]


def test_prose_streams_before_the_answer_ends() -> None:
    assembler = StreamAssembler(NAMES)
    assert assembler.feed("The capital ") == [StreamEvent("content", "The capital")]
    assert assembler.feed("of France") == [StreamEvent("content", " of France")]
    assert assembler.feed(" is Paris.\n") == [StreamEvent("content", " is Paris.")]
    assert assembler.feed("\n") == []  # trailing blank lines wait: they may be the end
    assert assembler.feed("More text.") == [StreamEvent("content", "\n\nMore text.")]


def test_code_is_held_until_known() -> None:
    assembler = StreamAssembler(NAMES)
    assert joined(assembler.feed("Let me check.\n```py"), "content") == "Let me check."
    assert assembler.feed("thon\nget_weather(location='Rome')\n") == []
    assert assembler.held.startswith("```python")
    # The fence closes: tool code, removed; the prose after it streams again.
    assert assembler.feed("```\n\nI will report") == [StreamEvent("content", "\n\nI will report")]


def test_a_snippet_for_the_user_is_released_when_its_fence_closes() -> None:
    assembler = StreamAssembler(NAMES)
    assembler.feed("Here:\n```python\ndef add(a, b):\n    return a + b\n")
    assert assembler.content == "Here:"
    assembler.feed("```\n")
    assert assembler.content == "Here:\n```python\ndef add(a, b):\n    return a + b\n```"


def test_a_bare_call_holds_the_rest_until_the_end() -> None:
    assembler = StreamAssembler(NAMES)
    assembler.feed("Sure.\nget_weather(location='Lima')\nMore prose that waits.\n")
    assert assembler.content == "Sure."
    # ... unless a fenced tool-code block shows the bare line was prose after all.
    assembler.feed(fence("get_weather(location='B')") + "\nAfter.")
    assert assembler.content == (
        "Sure.\nget_weather(location='Lima')\nMore prose that waits.\n\nAfter."
    )


def test_first_word_waits_only_until_it_cannot_start_a_call() -> None:
    assembler = StreamAssembler(NAMES)
    assert assembler.feed("get") == []
    assert assembler.feed("_weather") == []
    assert assembler.feed(" is a tool") == [StreamEvent("content", "get_weather is a tool")]


@pytest.mark.parametrize(
    ("first", "sent"),
    [
        ("The ", "The"),  # a Title-case word names no variable or namespace in model code
        ("Sure", "Sure"),
        ("Let me", "Let me"),
        ("Paris.", "Paris."),
        ("the ", None),  # may yet be `the = get_weather(`
        ("result", None),
        ("tools", None),  # may yet be `tools.get_weather(`
        ("I ", None),  # one capital is no Title-case word: `I = get_weather(`
        ("get_w", None),
        ("x = (", None),  # a statement continued on the next line
    ],
)
def test_a_first_delta_goes_out_at_once_unless_it_may_begin_code(
    first: str, sent: str | None
) -> None:
    assembler = StreamAssembler(NAMES)
    assert assembler.feed(first) == ([StreamEvent("content", sent)] if sent else [])


def test_think_streams_as_reasoning_and_is_never_code() -> None:
    assembler = StreamAssembler(NAMES)
    assert assembler.feed("<thi") == []
    assert assembler.feed("nk>Maybe get_weather(") == [
        StreamEvent("reasoning", "Maybe get_weather(")
    ]
    assert assembler.feed("'X')? No.</th") == [StreamEvent("reasoning", "'X')? No.")]
    assert assembler.feed("ink>\nIt is sunny.") == [StreamEvent("content", "It is sunny.")]


def test_a_think_tag_in_a_fence_is_code_even_split_across_chunks() -> None:
    assembler = StreamAssembler(NAMES)
    assert assembler.feed("Searching.\n```python\nget_weather(location='a <th") == [
        StreamEvent("content", "Searching.")
    ]
    assert assembler.feed("ink> b')\n```\n\nAfter the fence") == [
        StreamEvent("content", "\n\nAfter the fence")
    ]
    assert assembler.reasoning == ""
    assert split_answer(assembler.text, NAMES).code == "get_weather(location='a <think> b')"


def test_without_tools_only_markers_and_fences_hold() -> None:
    # tool_choice "none": no function names; a "# tool:" marker line still marks code.
    text = "Plain get_weather(location='A') text.\n" + fence("get_weather(location='B')")
    assembler, early = stream(list(text), names=())
    answer = split_answer(text, ())
    assert joined(early, "content") == "Plain get_weather(location='A') text."
    rest = assembler.finish(answer.content, answer.reasoning)
    assert joined(early + rest, "content") == answer.content


def test_hold_all_sends_nothing_before_the_end() -> None:
    assembler = StreamAssembler(NAMES, hold_all=True)
    assert assembler.feed("Plain prose.\nMore.") == []
    assert assembler.finish("Plain prose.\nMore.", None) == [
        StreamEvent("content", "Plain prose.\nMore.")
    ]


def test_prefilled_think_never_takes_back_what_was_sent() -> None:
    answer = split_answer(PREFILLED, NAMES)
    assert answer.reasoning == "thinking about get_weather"
    assembler, early = stream([PREFILLED[:10], PREFILLED[10:]])
    assert joined(early, "content") == "thinking a"  # sent before "</think>" was seen
    assert joined(early, "reasoning") == "thinking about get_weather"
    rest = assembler.finish(answer.content, answer.reasoning)
    assert rest == [StreamEvent("content", "\n\nIt is sunny.")]


def test_a_replaced_answer_follows_what_was_sent() -> None:
    # A repair round replaced the first answer: its prose was sent; the new one follows it.
    assembler = StreamAssembler(NAMES)
    assembler.feed("Let me look.\n" + fence("get_stock(symbol='X')"))
    assert assembler.finish("Checking now.", None) == [StreamEvent("content", "\n\nChecking now.")]


@pytest.mark.parametrize("seed", range(4))
def test_a_prefilled_thought_streams_as_reasoning_from_the_first_delta(seed: int) -> None:
    # `think_prefilled`: the answer starts inside a thought (the template opened it), so what
    # the stream sends is never taken back, pre-filled answers included.
    texts = [PREFILLED, "\n<think>own tag</think>Hi.", "<thi", " ", *generated(30, 200 + seed)]
    for text in texts:
        check_against_non_streaming(text, seed, count=4, in_thought=True)
    _, early = stream([PREFILLED[:10]], in_thought=True)
    assert early == [StreamEvent("reasoning", "thinking a")]  # before "</think>" is seen
