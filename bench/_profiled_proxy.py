"""Run the LiteLLM proxy (``litellm`` CLI, same arguments) with a cProfile switch on signals.

SIGUSR1 clears and starts profiling of the main thread (the event loop, where every hook and
logging handler runs), SIGUSR2 stops and writes pstats to ``$TOOLCODE_PROFILE_OUT``. Used by
bench/callback_cost.py to count, per request, what LiteLLM calls; not a benchmark by itself.

    python bench/_profiled_proxy.py /path/to/litellm --config config.yaml --port N
"""

from __future__ import annotations

import cProfile
import os
import signal
import sys
from types import FrameType

_profile: cProfile.Profile | None = None


def _start(_signum: int, _frame: FrameType | None) -> None:
    global _profile
    _profile = cProfile.Profile()
    _profile.enable()


def _stop(_signum: int, _frame: FrameType | None) -> None:
    global _profile
    if _profile is not None:
        _profile.disable()
        _profile.dump_stats(os.environ["TOOLCODE_PROFILE_OUT"])
        _profile = None


def main() -> None:
    signal.signal(signal.SIGUSR1, _start)
    signal.signal(signal.SIGUSR2, _stop)
    sys.argv = sys.argv[1:]
    from litellm import run_server

    sys.exit(run_server())


if __name__ == "__main__":
    main()
