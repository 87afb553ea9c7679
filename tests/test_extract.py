"""Table-driven tests for extract.split_answer: where the tool code is in a model's answer."""

from __future__ import annotations

import ast

import pytest

from litellm_toolcode.extract import Answer, split_answer, start_in_thought

NAMES = frozenset({"get_weather", "get_time", "book_table"})

F = "```"  # keeps the tables readable

# (id, text, code, content, reasoning)
CASES: list[tuple[str, str | None, str | None, str | None, str | None]] = [
    # --- nothing to find ---
    ("none", None, None, None, None),
    ("empty", "", None, None, None),
    ("blank", "  \n\n ", None, None, None),
    ("prose", "The capital of France is Paris.", None, "The capital of France is Paris.", None),
    (
        "prose-mentions-call",
        "You could use get_weather(city) for that, but it only knows Europe.",
        None,
        "You could use get_weather(city) for that, but it only knows Europe.",
        None,
    ),
    ("prose-assignment-not-call", "x = 1", None, "x = 1", None),
    # --- a stray closing fence after unfenced code is not prose ---
    (
        "unfenced-then-lone-fence",
        f"# tool: get_weather\nget_weather(city='Paris')\n{F}",
        "# tool: get_weather\nget_weather(city='Paris')",
        None,
        None,
    ),
    (
        "prose-then-lone-fence",
        f"No tool needed: it is sunny.\n{F}",
        None,
        "No tool needed: it is sunny.",
        None,
    ),
    (
        "lone-fence-with-code-after-is-a-block",
        f"Here:\n{F}\nget_time()",
        "get_time()",
        "Here:",
        None,
    ),
    # --- fence styles ---
    (
        "python-marker",
        f"{F}python\n# tool: get_weather\nget_weather(city='Paris')\n{F}",
        "# tool: get_weather\nget_weather(city='Paris')",
        None,
        None,
    ),
    ("py", f"{F}py\nget_weather(city='Paris')\n{F}", "get_weather(city='Paris')", None, None),
    ("Python", f"{F}Python\nget_time()\n{F}", "get_time()", None, None),
    ("python3", f"{F}python3\nget_time()\n{F}", "get_time()", None, None),
    ("bare", f"{F}\nget_time()\n{F}", "get_time()", None, None),
    ("tilde", "~~~python\nget_time()\n~~~", "get_time()", None, None),
    ("tool_code", f"{F}tool_code\nget_time()\n{F}", "get_time()", None, None),
    ("info-string", f"{F}python title=x\nget_time()\n{F}", "get_time()", None, None),
    ("crlf", f"{F}python\r\nget_time()\r\n{F}\r\nDone.", "get_time()", "Done.", None),
    (
        "indented-fence",
        f"1. Checking:\n   {F}python\n   get_weather(\n       city='Paris',\n   )\n   {F}",
        "get_weather(\n    city='Paris',\n)",
        "1. Checking:",
        None,
    ),
    (
        "four-backticks-hold-three",
        "````python\nget_weather(city='```')\n```\n````",
        "get_weather(city='```')\n```",
        None,
        None,
    ),
    (
        "closing-fence-on-code-line",
        f"{F}python\nget_weather(city='Paris'){F}\nThanks.",
        "get_weather(city='Paris')",
        "Thanks.",
        None,
    ),
    (
        "unclosed-fence-truncated",
        f"Let me check.\n{F}python\nget_weather(city='Paris')",
        "get_weather(city='Paris')",
        "Let me check.",
        None,
    ),
    (
        "unclosed-fence-broken",
        f"{F}python\n# tool: get_weather\nget_weather(city='Pa",
        "# tool: get_weather\nget_weather(city='Pa",
        None,
        None,
    ),
    # --- what counts as tool code ---
    (
        "broken-block-regex-fallback",
        f"{F}python\nget_weather(city='Paris'\n{F}",
        "get_weather(city='Paris'",
        None,
        None,
    ),
    (
        "marker-overrides-unknown-call",
        f"{F}python\n# tool: get_news\nget_news(topic='x')\n{F}",
        "# tool: get_news\nget_news(topic='x')",
        None,
        None,
    ),
    (
        "marker-case-and-spacing",
        f"{F}python\n#Tool:get_time\nget_time()\n{F}",
        "#Tool:get_time\nget_time()",
        None,
        None,
    ),
    (
        "namespaced-call",
        f"{F}python\ntools.get_time()\n{F}",
        "tools.get_time()",
        None,
        None,
    ),
    (
        "user-asked-snippet",
        f"Here you go:\n{F}python\nimport math\n\n\nprint(math.pi)\n{F}",
        None,
        f"Here you go:\n{F}python\nimport math\n\n\nprint(math.pi)\n{F}",
        None,
    ),
    (
        "snippet-defines-the-name",
        f"{F}python\ndef get_time():\n    return 1\n\nget_time()\n{F}",
        None,
        f"{F}python\ndef get_time():\n    return 1\n\nget_time()\n{F}",
        None,
    ),
    (
        "json-block-is-prose",
        f'{F}json\n{{"call": "get_time()"}}\n{F}',
        None,
        f'{F}json\n{{"call": "get_time()"}}\n{F}',
        None,
    ),
    (
        "unfenced-js-block-no-known-call",
        f"{F}\nconsole.log(1)\n{F}",
        None,
        f"{F}\nconsole.log(1)\n{F}",
        None,
    ),
    # --- "# tool: none" ---
    (
        "tool-none-then-prose",
        f"{F}python\n# tool: none\n{F}\nParis is the capital of France.",
        None,
        "Paris is the capital of France.",
        None,
    ),
    ("tool-none-alone", f"{F}python\n# tool: none\n{F}", None, None, None),
    (
        "tool-none-keeps-rest-of-block",
        f"{F}python\n# tool: none\nprint('hello')\n{F}",
        None,
        f"{F}python\nprint('hello')\n{F}",
        None,
    ),
    (
        "tool-none-wins-over-call",
        f"{F}python\n# tool: none\nget_time()\n{F}",
        None,
        f"{F}python\nget_time()\n{F}",
        None,
    ),
    (
        "tool-none-quoted",
        f"{F}python\n# tool: `None`.\n{F}\nNo tool fits.",
        None,
        "No tool fits.",
        None,
    ),
    ("tool-none-unfenced", "# tool: none\nThe answer is 4.", None, "The answer is 4.", None),
    # --- prose around and several blocks ---
    (
        "prose-before-and-after",
        f"Sure.\n\n\n{F}python\nget_time()\n{F}\n\n\nI'll report back.",
        "get_time()",
        "Sure.\n\nI'll report back.",
        None,
    ),
    (
        "several-blocks",
        f"First:\n{F}python\nget_time()\n{F}\nThen:\n{F}py\nget_weather(city='Oslo')\n{F}\nEnd.",
        "get_time()\nget_weather(city='Oslo')",
        "First:\n\nThen:\n\nEnd.",
        None,
    ),
    (
        "tool-block-and-snippet",
        f"{F}bash\nls -l\n{F}\n{F}python\nget_time()\n{F}",
        "get_time()",
        f"{F}bash\nls -l\n{F}",
        None,
    ),
    # --- thoughts ---
    (
        "think-then-block",
        f"<think>I will call get_weather(city='Rome')</think>\n{F}python\nget_time()\n{F}",
        "get_time()",
        None,
        "I will call get_weather(city='Rome')",
    ),
    (
        "think-code-is-not-read",
        f"<think>\n{F}python\nget_weather(city='Rome')\n{F}\n</think>\nNo tool needed: it is noon.",
        None,
        "No tool needed: it is noon.",
        f"{F}python\nget_weather(city='Rome')\n{F}",
    ),
    (
        "several-thinks",
        "<think>a</think>Hello <THINK>b</THINK>\nworld",
        None,
        "Hello\n\nworld",
        "a\n\nb",
    ),
    (
        "unclosed-think",
        "Answer first.\n<think>maybe get_weather(city='x')",
        None,
        "Answer first.",
        "maybe get_weather(city='x')",
    ),
    (
        "prefilled-think",
        "I should call get_weather(city='x')\n</think>\n\nget_time()",
        "get_time()",
        None,
        "I should call get_weather(city='x')",
    ),
    (
        "prefilled-think-then-think",
        "t1</think>mid<think>t2</think>end",
        None,
        "mid\n\nend",
        "t1\n\nt2",
    ),
    ("stray-close-think", "<think>a</think>x</think>y", None, "xy", "a"),
    # A tag counts only outside an open fence: in a code block it is code.
    (
        "think-tag-in-fenced-string",
        f'{F}python\n# tool: get_weather\nget_weather(city="what does <think> mean")\n{F}',
        '# tool: get_weather\nget_weather(city="what does <think> mean")',
        None,
        None,
    ),
    (
        "close-tag-in-fenced-string",
        f"Sure.\n{F}python\nget_weather(city='a </think> b')\n{F}\nDone.",
        "get_weather(city='a </think> b')",
        "Sure.\n\nDone.",
        None,
    ),
    (
        "both-tags-in-fence-after-call",
        f"{F}python\nget_time()\nget_weather(city='<think>x</think>')\n{F}",
        "get_time()\nget_weather(city='<think>x</think>')",
        None,
        None,
    ),
    (
        "tags-in-snippet-for-user",
        f"An HTML tag:\n{F}html\n<think>\n</think>\n{F}",
        None,
        f"An HTML tag:\n{F}html\n<think>\n</think>\n{F}",
        None,
    ),
    (
        "tag-on-fence-closing-code-line",
        f"{F}python\nget_weather(city='<think>'){F}\n<think>real</think>ok",
        "get_weather(city='<think>')",
        "ok",
        "real",
    ),
    (
        "think-around-fence-with-tag",
        f"<think>t1</think>\n{F}python\nget_weather(city='</think>')\n{F}\n<think>t2</think>",
        "get_weather(city='</think>')",
        None,
        "t1\n\nt2",
    ),
    (
        "think-after-unclosed-fence-is-code",
        f"{F}python\nget_weather(city='Pa\n<think>",
        "get_weather(city='Pa\n<think>",
        None,
        None,
    ),
    (
        "prefilled-think-then-fence-with-tag",
        f"Plan get_time()</think>\n{F}python\nget_weather(city='</think>')\n{F}",
        "get_weather(city='</think>')",
        None,
        "Plan get_time()",
    ),
    (
        "close-tag-in-fence-is-not-prefill",
        f"{F}python\nget_weather(city='</think>')\n{F}\nreal thought</think>Hi.",
        None,
        "Hi.",
        f"{F}python\nget_weather(city='</think>')\n{F}\nreal thought",
    ),
    (
        "fence-in-thought-does-not-matter",
        f"<think>\n{F}python\n</think>\n{F}python\nget_time()\n{F}",
        "get_time()",
        None,
        f"{F}python",
    ),
    (
        "fence-opened-before-think-on-its-line",
        f"{F}python<think>t</think>\nget_time('<think>')\n{F}",
        "get_time('<think>')",
        None,
        "t",
    ),
    (
        "stray-close-then-fence-line",
        f"<think>a</think>x\n</think>{F}python\nget_time('</think>')\n{F}",
        "get_time('</think>')",
        "x",
        "a",
    ),
    ("empty-think", "<think>\n\n</think>\nHi.", None, "Hi.", None),
    # --- no fence ---
    (
        "unfenced-calls-only",
        "get_weather(city='Paris')\nget_time(tz='UTC')",
        "get_weather(city='Paris')\nget_time(tz='UTC')",
        None,
        None,
    ),
    (
        "unfenced-prose-before-vllm-22917",
        "Sure, let me check.\nget_weather(city='Paris')",
        "get_weather(city='Paris')",
        "Sure, let me check.",
        None,
    ),
    (
        "unfenced-prose-before-several-calls",
        "I'll look both up (in order).\nget_weather(city='Paris')\nget_time(tz='CET')",
        "get_weather(city='Paris')\nget_time(tz='CET')",
        "I'll look both up (in order).",
        None,
    ),
    (
        "unfenced-prose-after",
        "get_time()\nI'll let you know (soon).",
        "get_time()",
        "I'll let you know (soon).",
        None,
    ),
    (
        "unfenced-assign-print-await",
        "w = get_weather(city='Paris')\nprint(get_time())\nawait get_time()",
        "w = get_weather(city='Paris')\nprint(get_time())\nawait get_time()",
        None,
        None,
    ),
    (
        "unfenced-multiline-call",
        "Booking now:\nbook_table(\n    guests=[{'name': 'Ann'}],\n    notes=None,\n)",
        "book_table(\n    guests=[{'name': 'Ann'}],\n    notes=None,\n)",
        "Booking now:",
        None,
    ),
    (
        "unfenced-marker",
        "# tool: get_time\nget_time()",
        "# tool: get_time\nget_time()",
        None,
        None,
    ),
    (
        "unfenced-marker-broken",
        "# tool: get_time\nget_time(tz=",
        "# tool: get_time\nget_time(tz=",
        None,
        None,
    ),
    (
        "unfenced-truncated-call",
        "Let me check.\nget_weather(city='Pa",
        "get_weather(city='Pa",
        "Let me check.",
        None,
    ),
    (
        "unfenced-namespaced",
        "functions.get_time()",
        "functions.get_time()",
        None,
        None,
    ),
    (
        "unfenced-unknown-call-is-prose",
        "get_news(topic='x')",
        None,
        "get_news(topic='x')",
        None,
    ),
    (
        "unfenced-after-prose-block",
        f"Example:\n{F}bash\nls\n{F}\nget_time()",
        "get_time()",
        f"Example:\n{F}bash\nls\n{F}",
        None,
    ),
]


@pytest.mark.parametrize(
    ("text", "code", "content", "reasoning"),
    [case[1:] for case in CASES],
    ids=[case[0] for case in CASES],
)
def test_split_answer(
    text: str | None, code: str | None, content: str | None, reasoning: str | None
) -> None:
    assert split_answer(text, NAMES) == Answer(code=code, content=content, reasoning=reasoning)


@pytest.mark.parametrize(
    ("text", "code", "content"),
    [
        (f"{F}python\n# tool: get_time\nget_time()\n{F}", "# tool: get_time\nget_time()", None),
        (f"{F}python\nget_time()\n{F}", None, f"{F}python\nget_time()\n{F}"),
        ("get_time()", None, "get_time()"),
    ],
    ids=["marker-still-counts", "call-needs-known-name", "unfenced-needs-known-name"],
)
def test_without_function_names(text: str, code: str | None, content: str | None) -> None:
    answer = split_answer(text, [])
    assert (answer.code, answer.content) == (code, content)


def test_code_from_several_blocks_parses() -> None:
    text = f"{F}python\nx = get_time()\n{F}\ntext\n{F}python\nget_weather(city='a')\n{F}"
    code = split_answer(text, NAMES).code
    assert code is not None
    assert [type(s).__name__ for s in ast.parse(code).body] == ["Assign", "Expr"]


def test_long_prose_stays_fast() -> None:
    # Many lines that look like calls but are prose: the unfenced search is bounded.
    text = "\n".join(f"Note ({i}) about get_weather (city)" for i in range(2000))
    assert split_answer(text, NAMES) == Answer(code=None, content=text, reasoning=None)


# start_in_thought: the chat template opened <think> (alias setting think_prefilled).
IN_THOUGHT = [
    ("plan</think>Hi.", "plan", "Hi."),
    ("plan, get_weather(x=1)?</think>\n```python\nf()\n```", "plan, get_weather(x=1)?", None),
    ("cut off while thinking", "cut off while thinking", None),
    ("\n<think>own tag</think>Hi.", "own tag", "Hi."),  # no empty thought in front
    ("<THINK>upper</THINK>Hi.", "upper", "Hi."),
    ("", None, None),
]


@pytest.mark.parametrize(("text", "reasoning", "content"), IN_THOUGHT)
def test_start_in_thought(text: str, reasoning: str | None, content: str | None) -> None:
    answer = split_answer(start_in_thought(text), ["f"])
    assert (answer.reasoning, answer.content) == (reasoning, content)
    assert start_in_thought(None) is None
