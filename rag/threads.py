"""CPU threads for the models. A setting of 0 means "choose for this machine", once per process.

Measured with bench/threads.py on a 2-core machine (see README, "Threads"): with the cores free,
2 threads made the 1.5B model about 2x faster and the embedders about 1.5x; with two other busy
processes, 2 generation threads made token generation slower (and torch embedding 3x slower),
while prompt processing still gained from every core. So: prompt processing uses every core;
generation and embedding use every core only when the machine is quiet when the model loads.
"""

from __future__ import annotations

import functools
import os

AUTO_CAP = 8  # beyond this, CPU inference is bound by memory bandwidth, not cores


def cores() -> int:
    """Cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


@functools.cache
def _quiet_threads() -> int:
    # Decided once: the generator and the judges must ask for the same engine, or it loads twice.
    try:
        load = os.getloadavg()[0]
    except OSError:
        return 1
    return min(cores(), AUTO_CAP) if load <= cores() - 1 else 1


def model_threads(setting: int) -> int:
    """Threads for token generation or embedding: the setting, or (0) all cores when the machine is quiet."""
    return int(setting) if setting else _quiet_threads()


def prompt_threads(setting: int) -> int:
    """Threads for llama.cpp's prompt processing: the setting, or (0) every core."""
    return int(setting) if setting else min(cores(), AUTO_CAP)
