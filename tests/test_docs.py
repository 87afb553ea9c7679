"""The README and docs/*.md: every fenced example runs, every link resolves, and the settings
the docs name are the ones ``config.py`` has.

Every fenced block must say its language, and is checked by it:

- ``python``: executed, the blocks of one page in order in one namespace, against the real
  proxy started on the README's switch-on config (its upstream pointed at a fake upstream that
  plays the model's answer to each example's question, ``ANSWERS``), with
  ``http://127.0.0.1:4000`` replaced by that proxy's URL and ``"sk-..."`` and
  ``.data/master_key`` holding its key. Each block must reach the upstream, in code mode.
- ``yaml``: parsed; each alias's ``model_info.toolcode`` must be accepted by ``AliasSettings``
  and each ``litellm_toolcode`` callback must exist.
- ``json``: parsed. ``bash``: each command names a real make target, script or module, test
  file, pytest marker, option and environment variable.
- ``text``: shown, never run (model answers, prompts, the module map); the model answers the
  README, how-it-works.md and sandbox.md show must be ones the examples' upstream plays.
"""

from __future__ import annotations

import contextlib
import io
import json
import re
import shlex
import threading
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

import litellm_toolcode
from litellm_toolcode.config import AliasSettings, settings_for
from tests.conftest import MASTER_KEY, UPSTREAM_KEY, Proxy, start_proxy, stop_proxy
from tests.fake_upstream import FakeUpstream, Scripted
from tests.test_proxy import WEATHER

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
DOCS = ROOT / "docs"
PAGES = [README, *sorted(DOCS.glob("*.md"))]
LANGUAGES = {"python", "yaml", "bash", "json", "text"}
README_MAX_LINES = 150


def rel(path: Path) -> str:
    return str(path.relative_to(ROOT))


# --- reading markdown -------------------------------------------------------------------------


@dataclass(frozen=True)
class Block:
    page: Path
    line: int  # 1-based line of the opening fence
    lang: str
    body: str

    @property
    def where(self) -> str:
        return f"{rel(self.page)}:{self.line}"


_FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,})\s*([^`\s]*)[^`]*$")


def split_page(page: Path) -> tuple[list[Block], str]:
    """The page's fenced blocks, and its text outside them (fenced lines blanked)."""
    blocks: list[Block] = []
    prose: list[str] = []
    lines = page.read_text().splitlines()
    i = 0
    while i < len(lines):
        match = _FENCE.match(lines[i])
        if not match:
            prose.append(lines[i])
            i += 1
            continue
        fence, lang = match.group(1), match.group(2)
        indent = len(lines[i]) - len(lines[i].lstrip(" "))
        start = i
        body: list[str] = []
        i += 1
        while i < len(lines):
            stripped = lines[i].strip()
            if stripped and set(stripped) == {fence[0]} and len(stripped) >= len(fence):
                break
            body.append(lines[i][indent:] if lines[i][:indent].isspace() else lines[i])
            i += 1
        else:
            raise AssertionError(f"{rel(page)}:{start + 1}: fence never closed")
        blocks.append(Block(page, start + 1, lang, "\n".join(body) + "\n"))
        prose.extend([""] * (i - start + 1))
        i += 1
    return blocks, "\n".join(prose)


ALL_BLOCKS = [block for page in PAGES for block in split_page(page)[0]]


def blocks(lang: str) -> list[Block]:
    return [b for b in ALL_BLOCKS if b.lang == lang]


def ids(items: list[Block]) -> list[str]:
    return [b.where for b in items]


def section(text: str, heading: str) -> str:
    """The text under ``heading`` (a whole heading line) up to the next heading of its level."""
    level = heading.split(" ")[0]
    start = text.index(heading + "\n") + len(heading) + 1
    following = re.search(rf"(?m)^{level} ", text[start:])
    return text[start : start + following.start()] if following else text[start:]


def table_rows(text: str) -> list[list[str]]:
    """The body rows of the first markdown table in ``text``, as stripped cells."""
    rows = [line for line in text.splitlines() if line.startswith("|")]
    return [[cell.strip() for cell in row.strip().strip("|").split("|")] for row in rows[2:]]


# --- every block is marked --------------------------------------------------------------------


def test_the_docs_have_the_pages_the_readme_promises() -> None:
    assert len(PAGES) > 10
    assert len(README.read_text().splitlines()) < README_MAX_LINES


@pytest.mark.parametrize("block", ALL_BLOCKS, ids=ids(ALL_BLOCKS))
def test_every_block_says_how_it_is_checked(block: Block) -> None:
    assert block.lang in LANGUAGES, (
        f"{block.where}: fence language {block.lang!r}; use one of {sorted(LANGUAGES)} "
        "(text: shown, never run)"
    )


# --- yaml and json ----------------------------------------------------------------------------


def toolcode_entries(config: Any) -> list[tuple[str, Any]]:
    """(alias, model_info) of every model entry in a proxy config or config fragment."""
    found: list[tuple[str, Any]] = []
    if isinstance(config, dict):
        for entry in config.get("model_list") or []:
            found.append((str(entry.get("model_name")), entry.get("model_info")))
        if "toolcode" in config and "model_list" not in config:
            found.append(("<fragment>", config))
        for key, value in config.items():
            if key != "model_list":
                found += toolcode_entries(value)
    return found


@pytest.mark.parametrize("block", blocks("yaml"), ids=ids(blocks("yaml")))
def test_yaml_examples_are_configs_the_plugin_accepts(block: Block) -> None:
    config = yaml.safe_load(block.body)
    assert isinstance(config, dict), block.where
    for alias, model_info in toolcode_entries(config):
        settings_for(alias, model_info)  # raises ConfigError naming the alias and key
    callbacks = (config.get("litellm_settings") or {}).get("callbacks") or []
    for callback in callbacks:
        module, _, name = str(callback).partition(".")
        if module == "litellm_toolcode":
            assert hasattr(litellm_toolcode, name), f"{block.where}: no {callback}"


def test_a_yaml_example_with_an_unknown_setting_fails() -> None:
    """The check above is not vacuous: a misspelt key is refused."""
    bad = yaml.safe_load("model_list:\n  - model_name: x\n    model_info: {toolcode: {enable: 1}}")
    with pytest.raises(litellm_toolcode.ConfigError, match="enable"):
        for alias, model_info in toolcode_entries(bad):
            settings_for(alias, model_info)


@pytest.mark.parametrize("block", blocks("json"), ids=ids(blocks("json")))
def test_json_examples_parse(block: Block) -> None:
    json.loads(block.body)


# --- bash -------------------------------------------------------------------------------------


def _source_texts() -> str:
    files = [
        *ROOT.glob("litellm_toolcode/**/*.py"),
        *ROOT.glob("scripts/*.py"),
        *ROOT.glob("bench/*.py"),
        *(p for p in ROOT.glob("tests/*.py") if p.name != "test_docs.py"),
        ROOT / "Makefile",
        ROOT / "config.yaml",
    ]
    return "\n".join(p.read_text() for p in files)


KNOWN_VARIABLES = set(re.findall(r"\b(?:TOOLCODE|LITELLM)_[A-Z0-9_]*[A-Z0-9]\b", _source_texts()))
MAKE_TARGETS = set(re.findall(r"(?m)^([A-Za-z][\w-]*):", (ROOT / "Makefile").read_text()))
MARKERS = {
    marker.split(":")[0].strip()
    for marker in tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["pytest"][
        "ini_options"
    ]["markers"]
}


def _litellm_options() -> set[str]:
    from litellm.proxy.proxy_cli import run_server

    return {opt for param in run_server.params for opt in param.opts}


def commands(body: str) -> Iterator[list[str]]:
    for line in body.replace("\\\n", " ").splitlines():
        words = shlex.split(line, comments=True)
        if words:
            yield words


def check_script_options(script: Path, args: list[str], where: str) -> None:
    assert script.is_file(), f"{where}: no {rel(script)}"
    source = script.read_text()
    for arg in args:
        if arg.startswith("--"):
            option = arg.split("=")[0]
            assert f'"{option}"' in source, f"{where}: {rel(script)} has no {option}"


def check_command(words: list[str], where: str) -> None:
    while words and re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*=.*", words[0]):
        name = words.pop(0).split("=")[0]
        assert name in KNOWN_VARIABLES, f"{where}: no code reads {name}"
    command, args = words[0], words[1:]
    if command == "make":
        for target in args:
            assert target in MAKE_TARGETS, f"{where}: no make target {target!r}"
    elif command == ".venv/bin/python":
        if args[0] == "-m":
            check_script_options(ROOT / (args[1].replace(".", "/") + ".py"), args[2:], where)
        else:
            check_script_options(ROOT / args[0], args[1:], where)
    elif command == ".venv/bin/pytest":
        rest = iter(args)
        for arg in rest:
            if arg == "-m":
                words_of = set(re.findall(r"\w+", next(rest))) - {"and", "or", "not"}
                assert words_of <= MARKERS, f"{where}: unknown marker in {words_of}"
            elif arg == "-k":
                next(rest)
            elif not arg.startswith("-"):
                assert (ROOT / arg.split("::")[0]).exists(), f"{where}: no {arg}"
    elif command == "litellm":
        options = _litellm_options()
        for arg in args:
            if arg.startswith("--"):
                assert arg in options, f"{where}: litellm has no option {arg}"
    else:
        raise AssertionError(f"{where}: unknown command {command!r} (add a check for it)")


@pytest.mark.parametrize("block", blocks("bash"), ids=ids(blocks("bash")))
def test_bash_examples_name_real_targets_scripts_and_variables(block: Block) -> None:
    for words in commands(block.body):
        check_command(words, block.where)


def test_a_bash_example_with_a_wrong_name_fails() -> None:
    for bad in ("make serve", "TOOLCODE_NO_SUCH=1 make run", ".venv/bin/python -m bench.nope"):
        with pytest.raises(AssertionError):
            check_command(shlex.split(bad), "example")


def test_variables_and_make_targets_named_in_the_prose_exist() -> None:
    for page in PAGES:
        text = page.read_text()
        for name in re.findall(r"\b(?:TOOLCODE)_[A-Z0-9_]*[A-Z0-9]\b(?!_\*)", text):
            assert name in KNOWN_VARIABLES, f"{rel(page)} names {name}, which no code reads"
        for prefix in re.findall(r"\b(TOOLCODE_[A-Z0-9_]*_)\*", text):
            assert any(v.startswith(prefix) for v in KNOWN_VARIABLES), f"{rel(page)}: {prefix}*"
        for target in re.findall(r"`make ([\w-]+)`", text):
            assert target in MAKE_TARGETS, f"{rel(page)} names `make {target}`"


# --- links ------------------------------------------------------------------------------------


_LINK = re.compile(r"(?<!!)\[(?:[^\]\[]|\[[^\]]*\])*\]\(([^)\s]+)\)")


def slugs(page: Path) -> set[str]:
    """GitHub's heading anchors of a page."""
    found: set[str] = set()
    for line in split_page(page)[1].splitlines():
        heading = re.match(r"^#{1,6} (.+)$", line)
        if heading:
            text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", heading.group(1)).replace("`", "")
            slug = re.sub(r"[^\w\- ]", "", text.strip().lower()).replace(" ", "-")
            n, base = 1, slug
            while slug in found:
                slug, n = f"{base}-{n}", n + 1
            found.add(slug)
    return found


def links(page: Path) -> list[str]:
    return _LINK.findall(split_page(page)[1])


@pytest.mark.parametrize("page", PAGES, ids=[rel(p) for p in PAGES])
def test_relative_links_and_anchors_resolve(page: Path) -> None:
    for target in links(page):
        if re.match(r"[a-z]+:", target):
            continue  # https:, mailto:
        path, _, anchor = target.partition("#")
        resolved = (page.parent / path).resolve() if path else page
        assert resolved.exists(), f"{rel(page)}: link to {target}: no such file"
        if anchor:
            assert anchor in slugs(resolved), f"{rel(page)}: link to {target}: no such heading"


def test_each_readme_section_links_into_docs_and_every_page_is_linked() -> None:
    text = split_page(README)[1]
    for part in re.split(r"(?m)^(?=## )", text)[1:]:
        title = part.splitlines()[0]
        assert any(t.startswith("docs/") for t in _LINK.findall(part)), f"README {title}"
    linked = {(ROOT / t.split("#")[0]).resolve() for t in links(README)}
    for page in DOCS.glob("*.md"):
        assert page.resolve() in linked, f"README does not link {rel(page)}"


# --- settings ---------------------------------------------------------------------------------


def shown_default(value: Any) -> str:
    return str(value).lower() if isinstance(value, bool) else str(value)


def settings_table(page: Path, heading: str) -> dict[str, str]:
    rows = table_rows(section(split_page(page)[1], heading))
    return {row[0].strip("`"): row[1].strip("`") for row in rows}


def test_the_configuration_reference_lists_every_setting_with_its_default() -> None:
    table = settings_table(DOCS / "configuration.md", "## Per-alias settings")
    fields = AliasSettings.model_fields
    assert sorted(table) == sorted(fields)
    for name, field in fields.items():
        assert table[name] == shown_default(field.default), name


def test_the_readme_settings_are_real_with_their_defaults() -> None:
    table = settings_table(README, "## Settings")
    assert table
    for name, default in table.items():
        assert name in AliasSettings.model_fields, name
        assert default == shown_default(AliasSettings.model_fields[name].default), name


# --- python: run against the real proxy -------------------------------------------------------


def code(*lines: str, prose: str = "") -> str:
    return (prose + "\n\n" if prose else "") + "```python\n" + "\n".join(lines) + "\n```"


# The model's answers to each example's question, by turn (the number of assistant messages in
# the request). Token counts are the upstream's to report (the README shows them).
ANSWERS: dict[str, list[Scripted]] = {
    "What's the weather in London?": [
        Scripted(
            content=code(
                "# tool: get_weather",
                'get_weather(location="London", unit="celsius")',
                prose="I will look that up.",
            ),
            prompt_tokens=412,
            completion_tokens=31,
        )
    ],
    "Weather in Paris and in Oslo?": [
        Scripted(
            content=code(
                "# tool: get_weather",
                'get_weather(location="Paris")',
                'get_weather(location="Oslo")',
                prose="Let me check both cities.",
            )
        )
    ],
    "Is it warm in Lisbon today?": [
        Scripted(content=code("# tool: get_weather", 'get_weather(location="Lisbon")')),
        Scripted(content="Not really: 14 degrees celsius in Lisbon, take a jacket."),
    ],
    "Weather in Paris, Oslo and Rome?": [
        Scripted(
            content=code(
                "# tool: get_weather",
                'for city in ["Paris", "Oslo", "Rome"]:',
                "    get_weather(location=city)",
            )
        )
    ],
    "London, please.": [Scripted(content=code("# tool: get_weather", "get_weather('London')"))],
    "Temperature in Paris and Oslo?": [
        Scripted(
            content=code(
                "# tool: get_weather",
                "get_weather(city='Paris')",
                "get_weather(city='Oslo', unit='celsius')",
                prose="I'll look both up.",
            )
        ),
        Scripted(content="Paris is at 18 degrees and Oslo at -3 degrees."),
    ],
    "Cheapest Paris-Tokyo flight, price in USD?": [
        Scripted(content=code("# tool: find_flight", "find_flight('Paris', 'Tokyo')")),
        Scripted(content=code("# tool: convert_currency", "convert_currency(420, 'USD')")),
        Scripted(content="The cheapest flight is AF1234 for 420 EUR, which is 453.6 USD."),
    ],
    "Plan 3 days in Paris": [
        Scripted(content=code("# tool: daily_cost", "daily_cost(city='Paris', nights=3)")),
        Scripted(
            content=code(
                "# tool: final_result",
                "final_result(city='Paris', days=3, budget_eur=450.0,"
                " highlights=['Louvre', 'Orsay'])",
            )
        ),
    ],
    "Jason is 25 years old": [Scripted(content=code("# tool: UserInfo", "UserInfo('Jason', 25)"))],
}


class DocsUpstream:
    """Answers each example's question by its turn, and records what it was sent."""

    def __init__(self) -> None:
        self.seen: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        self.server = FakeUpstream(default=self.answer)

    def answer(self, body: dict[str, Any]) -> Scripted:
        with self._lock:
            self.seen.append(body)
        messages = body.get("messages") or []
        text = json.dumps([m for m in messages if m.get("role") == "user"])
        question = next((q for q in ANSWERS if json.dumps(q)[1:-1] in text), None)
        if question is None:
            return Scripted(status=500, content=f"docs upstream: no answer for {text[:300]}")
        turn = sum(1 for m in messages if m.get("role") == "assistant")
        answers = ANSWERS[question]
        if turn >= len(answers):
            return Scripted(status=500, content=f"docs upstream: no turn {turn} for {question}")
        return answers[turn]


@pytest.fixture(scope="module")
def docs_upstream() -> Iterator[DocsUpstream]:
    upstream = DocsUpstream()
    upstream.server.start()
    yield upstream
    upstream.server.stop()


def readme_config(upstream_url: str) -> str:
    """The README's switch-on block, its upstream pointed at the docs upstream."""
    block = next(b for b in blocks("yaml") if b.page == README)
    config = yaml.safe_load(block.body)
    for entry in config["model_list"]:
        entry["litellm_params"].update(
            model="openai/fake-docs", api_base=upstream_url, api_key=UPSTREAM_KEY
        )
    return yaml.safe_dump(config)


@pytest.fixture(scope="module")
def docs_proxy(
    docs_upstream: DocsUpstream, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Proxy]:
    running = start_proxy(
        readme_config(docs_upstream.server.url),
        tmp_path_factory.mktemp("docs-proxy"),
        env={"LITELLM_MASTER_KEY": MASTER_KEY},
    )
    yield running
    stop_proxy(running)


def runnable(block: Block, proxy: Proxy) -> str:
    return block.body.replace("http://127.0.0.1:4000", proxy.url).replace(
        '"sk-..."', repr(MASTER_KEY)
    )


def assert_code_mode(body: dict[str, Any], where: str) -> None:
    for name in ("tools", "tool_choice", "parallel_tool_calls"):
        assert name not in body, f"{where}: the upstream got {name}"
    system = body["messages"][0]
    assert system["role"] == "system" and "def " in str(system["content"]), where


def model_answers(page: Path) -> list[str]:
    """The model answers a page shows: its ``text`` blocks holding a ``# tool:`` code block
    (not the system prompt, which shows one as its own example)."""
    return [
        b.body.rstrip("\n")
        for b in blocks("text")
        if b.page == page and "# tool:" in b.body and not b.body.startswith("# Tools")
    ]


def test_the_model_answers_shown_are_the_ones_the_examples_get() -> None:
    """What the docs say the model wrote is what the docs upstream plays to the examples."""
    played = {str(a.content) for answers in ANSWERS.values() for a in answers}
    for page in (README, DOCS / "how-it-works.md", DOCS / "sandbox.md"):
        shown = model_answers(page)
        assert shown, rel(page)
        for answer in shown:
            assert answer in played, f"{rel(page)} shows an answer no example gets:\n{answer}"


def check_readme_example(namespace: dict[str, Any]) -> None:
    """The README's example sends the tests' weather tool and gets the output it shows."""
    (json_block,) = [b for b in blocks("json") if b.page == README]
    shown = json.loads(json_block.body)
    response = namespace["response"]
    assert namespace["weather"] == WEATHER["function"]
    got = response.model_dump(mode="json", exclude_none=True)
    choice = got["choices"][0]
    assert choice["finish_reason"] == shown["finish_reason"]
    message = {k: choice["message"][k] for k in shown["message"]}
    assert all(call.pop("id").startswith("call_") for call in message["tool_calls"])
    for call in shown["message"]["tool_calls"]:
        call.pop("id")
    assert message == shown["message"]
    assert {k: got["usage"][k] for k in shown["usage"]} == shown["usage"]


PYTHON_PAGES = sorted({b.page for b in blocks("python")})


@pytest.mark.parametrize("page", PYTHON_PAGES, ids=[rel(p) for p in PYTHON_PAGES])
def test_python_examples_run_through_the_proxy(
    page: Path,
    docs_proxy: Proxy,
    docs_upstream: DocsUpstream,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    (tmp_path / ".data").mkdir()
    (tmp_path / ".data" / "master_key").write_text(MASTER_KEY + "\n")
    monkeypatch.chdir(tmp_path)
    namespace: dict[str, Any] = {"__name__": f"docs_{page.stem.replace('-', '_')}"}
    for block in (b for b in blocks("python") if b.page == page):
        before = len(docs_upstream.seen)
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            exec(compile(runnable(block, docs_proxy), block.where, "exec"), namespace)
        sent = docs_upstream.seen[before:]
        assert sent, f"{block.where}: the example never reached the upstream"
        for body in sent:
            assert_code_mode(body, block.where)
        assert out.getvalue().strip(), f"{block.where}: printed nothing"
    if page == README:
        check_readme_example(namespace)
