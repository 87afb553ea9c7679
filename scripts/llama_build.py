"""How ``make run`` builds the embedded llama.cpp server: its instruction sets, when to rebuild.

The build is portable, not ``-march=native``: ``GGML_NATIVE=ON`` compiles in every instruction
set the CPU *reports*, and cloud VMs report AMX (``amx_tile``) without granting its register
state, so the first matrix multiply faults (``ldtilecfg``, issue 16). Instead the build names its
instruction sets: on x86-64 the AVX family (AVX, AVX2, FMA, F16C, BMI2, SSE4.2) that
``/proc/cpuinfo`` lists, else the SSE2 baseline; never AMX, no AVX-512; elsewhere a plain
non-native build. The kernel lists AVX only when it has enabled the AVX register state, so the
flag line is the probe. The choice is kept in a marker in the venv and checked at every start:
a venv without it (built by an earlier ``serve.py`` with native flags), built with other flags,
or copied to a CPU that lacks one of its instruction sets is rebuilt.

Standard library only (it runs before anything else is installed).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass
from pathlib import Path

PACKAGE = "llama-cpp-python"
VERSION = "0.3.36"
REQUIREMENT = f"{PACKAGE}[server]=={VERSION}"
MARKER_NAME = ".llama-cpp-build.json"

COMMON_CMAKE_ARGS = (
    "-DGGML_CUDA=OFF",
    "-DGGML_METAL=OFF",
    "-DLLAMA_CURL=OFF",
    "-DLLAMA_BUILD_TESTS=OFF",
    "-DLLAMA_BUILD_EXAMPLES=OFF",
)
# (cpuinfo flag, ggml option): used when the CPU lists the flag. These need only the SSE/AVX
# register state, which every OS that lists them grants to every process.
X86_FEATURES = (
    ("sse4_2", "GGML_SSE42"),
    ("avx", "GGML_AVX"),
    ("avx2", "GGML_AVX2"),
    ("fma", "GGML_FMA"),
    ("f16c", "GGML_F16C"),
    ("bmi2", "GGML_BMI2"),
)
NEEDS_AVX = frozenset({"avx2", "fma", "f16c"})  # VEX-encoded: useless without AVX itself
# Always off. AMX needs a per-process grant from the OS (arch_prctl) that VMs may refuse even
# though the CPU reports it; AVX-512 (and AVX-VNNI) would need a real probe, which we lack.
X86_NEVER = (
    "GGML_AVX_VNNI",
    "GGML_AVX512",
    "GGML_AVX512_VBMI",
    "GGML_AVX512_VNNI",
    "GGML_AVX512_BF16",
    "GGML_AMX_TILE",
    "GGML_AMX_INT8",
    "GGML_AMX_BF16",
)
X86_MACHINES = frozenset({"x86_64", "amd64", "i386", "i686"})


@dataclass(frozen=True)
class Build:
    """One way to build llama-cpp-python; stored as the venv's marker once built."""

    requirement: str
    machine: str
    cpu_features: tuple[str, ...]  # cpuinfo flags the built code needs
    cmake_args: tuple[str, ...]
    safest: bool  # the SSE2 baseline chosen after a build-caused crash

    def describe(self) -> str:
        if self.machine.lower() not in X86_MACHINES:
            return f"portable {self.machine} build (GGML_NATIVE=OFF)"
        if not self.cpu_features:
            return "x86-64 SSE2 baseline (no AVX)"
        return "x86-64 with " + " ".join(self.cpu_features) + " (no AMX, no AVX-512)"

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2) + "\n"

    @classmethod
    def from_json(cls, text: str) -> Build | None:
        """The marker's build, or None if the text is not one (corrupt or foreign)."""
        try:
            data = json.loads(text)
            return cls(
                requirement=str(data["requirement"]),
                machine=str(data["machine"]),
                cpu_features=tuple(str(f) for f in data["cpu_features"]),
                cmake_args=tuple(str(a) for a in data["cmake_args"]),
                safest=bool(data["safest"]),
            )
        except (ValueError, KeyError, TypeError):
            return None


def parse_cpu_flags(cpuinfo: str) -> frozenset[str]:
    """The first processor's ``flags`` (x86) or ``Features`` (ARM) from /proc/cpuinfo text."""
    for line in cpuinfo.splitlines():
        key, sep, value = line.partition(":")
        if sep and key.strip() in ("flags", "Features"):
            return frozenset(value.split())
    return frozenset()


def cpu_flags(path: Path = Path("/proc/cpuinfo")) -> frozenset[str]:
    try:
        return parse_cpu_flags(path.read_text())
    except OSError:  # not Linux: no flags known, so the x86 build is the baseline
        return frozenset()


def wanted_build(machine: str, flags: Iterable[str], safest: bool = False) -> Build:
    """The build this machine should use: the instruction sets its CPU lists, or the baseline."""
    listed = frozenset(flags)
    if machine.lower() not in X86_MACHINES:
        return Build(REQUIREMENT, machine, (), ("-DGGML_NATIVE=OFF", *COMMON_CMAKE_ARGS), safest)
    used: list[str] = []
    args = ["-DGGML_NATIVE=OFF"]
    for flag, option in X86_FEATURES:
        on = not safest and flag in listed and (flag not in NEEDS_AVX or "avx" in listed)
        if on:
            used.append(flag)
        args.append(f"-D{option}={'ON' if on else 'OFF'}")
    args += [f"-D{option}=OFF" for option in X86_NEVER]
    return Build(REQUIREMENT, machine, tuple(used), (*args, *COMMON_CMAKE_ARGS), safest)


def rebuild_reason(
    installed: bool, built: Build | None, wanted: Build, flags: Iterable[str]
) -> str | None:
    """Why this venv's llama-cpp-python must be (re)built, or None to keep it.

    ``built`` is the venv's marker (None: missing or unreadable). A baseline chosen after a
    build-caused crash is kept although this CPU could use more: it runs anywhere, and
    rebuilding would bring the crash back (delete the marker to try again).
    """
    if not installed:
        return f"{PACKAGE} is not installed in this venv"
    if built is None:
        return (
            f"this venv's {PACKAGE} has no build marker (an earlier serve.py built it with "
            "-DGGML_NATIVE=ON, which can crash on CPUs that report AMX)"
        )
    if built.requirement != wanted.requirement:
        return f"it was built as {built.requirement}, this script wants {wanted.requirement}"
    if built.machine != wanted.machine:
        return f"it was built for {built.machine}, this machine is {wanted.machine}"
    missing = [f for f in built.cpu_features if f not in frozenset(flags)]
    if missing:
        return f"it was built for {' '.join(missing)}, which this CPU does not list"
    if built.safest:
        return None
    if built.cmake_args != wanted.cmake_args:
        return f"it was built as {built.describe()}, this CPU should use {wanted.describe()}"
    return None


def marker_path(prefix: Path | str = sys.prefix) -> Path:
    return Path(prefix) / MARKER_NAME


def read_marker(path: Path) -> Build | None:
    try:
        return Build.from_json(path.read_text())
    except OSError:
        return None


# ---------------------------------------------------------------- running pip quietly

# pip here warns once per package about find-links locations that do not exist; noise.
_PIP_NOISE = re.compile(r"^WARNING: Location '.*' is ignored")


def pip_noise(line: str) -> bool:
    return bool(_PIP_NOISE.match(line))


def run_logged(
    cmd: list[str],
    log: Path,
    env: dict[str, str] | None = None,
    show: Callable[[str], None] | None = None,
) -> int:
    """Run ``cmd``, all output to ``log`` (appended); each line also goes to ``show``."""
    with log.open("a") as out:
        out.write(f"$ {' '.join(cmd)}\n")
        out.flush()
        # Own process group: stopping this script (Ctrl-C, kill) stops pip's whole build too,
        # not just pip, which would leave cmake and the compilers running.
        process = subprocess.Popen(
            cmd,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
        )
        assert process.stdout is not None
        try:
            for line in process.stdout:
                out.write(line)
                if show is not None:
                    show(line)
            return process.wait()
        except BaseException:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGTERM)
            process.wait()
            raise


def log_tail(log: Path, lines: int = 60) -> str:
    """The end of a log without pip's noise: where pip and compilers put their errors."""
    text = log.read_text(errors="replace").splitlines()
    return "\n".join([line for line in text if not pip_noise(line)][-lines:])


def compile_progress(say: Callable[[str], None]) -> Callable[[str], None]:
    """A ``show`` for ``run_logged``: one line per 10% of the compile, pip's errors in full."""
    step = re.compile(r"\[(\d+)/(\d+)\]")
    shown = [-1]

    def show(line: str) -> None:
        match = step.search(line)
        if match:
            done, total = int(match[1]), int(match[2])
            percent = 100 * done // total
            if percent // 10 != shown[0] // 10:
                shown[0] = percent
                say(f"  compiling llama.cpp: {done}/{total} ({percent}%)")
        elif line.startswith("ERROR"):
            say("  " + line.rstrip())

    return show


def build(
    build: Build,
    python: str,
    marker: Path,
    log: Path,
    say: Callable[[str], None],
    constraints: Path | None = None,
) -> None:
    """Compile llama-cpp-python with ``build``'s flags and install it into ``python``'s venv.

    ``--no-cache-dir``: pip's wheel cache is keyed by the sdist, not by CMAKE_ARGS, so it
    would hand back a wheel built with other flags (e.g. the old native one).
    """
    marker.unlink(missing_ok=True)  # an interrupted build is rebuilt next time
    log.parent.mkdir(parents=True, exist_ok=True)
    log.write_text("")
    pip = [python, "-m", "pip"]
    limit = ["-c", str(constraints)] if constraints is not None and constraints.exists() else []
    env = {
        **os.environ,
        "CMAKE_ARGS": " ".join(build.cmake_args),
        "CMAKE_BUILD_PARALLEL_LEVEL": str(os.cpu_count() or 2),
    }
    show = compile_progress(say)

    def run(cmd: list[str]) -> None:
        code = run_logged(cmd, log, env, show)
        if code != 0:
            print(log_tail(log), file=sys.stderr, flush=True)
            raise SystemExit(f"building {PACKAGE} failed (pip exit {code}); log: {log}")

    with tempfile.TemporaryDirectory(prefix="llama-wheel-") as wheel_dir:
        run(
            [
                *pip,
                "wheel",
                "-v",
                "--no-deps",
                "--no-cache-dir",
                "--no-binary",
                PACKAGE,
                "-w",
                wheel_dir,
                f"{PACKAGE}=={VERSION}",
            ]
        )
        (wheel,) = Path(wheel_dir).glob("*.whl")
        run([*pip, "install", "--force-reinstall", "--no-deps", str(wheel)])
    # The [server] extra's dependencies; the package itself is installed now.
    run([*pip, "install", *limit, REQUIREMENT])
    marker.write_text(build.to_json())
