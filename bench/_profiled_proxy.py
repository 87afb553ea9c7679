"""Run the LiteLLM proxy (``litellm`` CLI, same arguments) with a cProfile switch on signals.

SIGUSR1 clears and starts profiling of the main thread (the event loop, where every hook and
async logging handler runs), SIGUSR2 stops and writes pstats to ``$TOOLCODE_PROFILE_OUT``. The
other threads (LiteLLM's thread pool runs its sync success handler there) get a counting
profile function from the start (``threading.setprofile``), active between the same signals:
their Python calls go to ``$TOOLCODE_PROFILE_OUT.threads.json`` as ``{"file:line function":
calls}``. Used by bench/callback_cost.py to count, per request, what LiteLLM calls; not a
benchmark by itself.

    python bench/_profiled_proxy.py /path/to/litellm --config config.yaml --port N
"""

from __future__ import annotations

import collections
import cProfile
import json
import os
import signal
import sys
import threading
from types import FrameType
from typing import Any

_profile: cProfile.Profile | None = None
_thread_calls: collections.Counter[tuple[str, int, str]] = collections.Counter()
_counting = False


def _count(frame: FrameType, event: str, _arg: Any) -> None:
    if _counting and event == "call":
        code = frame.f_code
        _thread_calls[code.co_filename, code.co_firstlineno, code.co_name] += 1


def _start(_signum: int, _frame: FrameType | None) -> None:
    global _profile, _counting
    _thread_calls.clear()
    _counting = True
    _profile = cProfile.Profile()
    _profile.enable()


def _stop(_signum: int, _frame: FrameType | None) -> None:
    global _profile, _counting
    if _profile is not None:
        _profile.disable()
        _counting = False
        out = os.environ["TOOLCODE_PROFILE_OUT"]
        calls = {f"{path}:{line} {name}": n for (path, line, name), n in _thread_calls.items()}
        with open(f"{out}.threads.json", "w") as handle:
            json.dump(calls, handle)
        _profile.dump_stats(out)  # last: its file's presence says both are written
        _profile = None


def main() -> None:
    threading.setprofile(_count)
    signal.signal(signal.SIGUSR1, _start)
    signal.signal(signal.SIGUSR2, _stop)
    sys.argv = sys.argv[1:]
    from litellm import run_server

    sys.exit(run_server())


if __name__ == "__main__":
    main()
