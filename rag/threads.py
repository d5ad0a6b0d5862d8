"""CPU threads for the models. A setting of 0 means every core of this machine (capped).

Measured with bench/threads.py on a 2-core machine (see README, "Threads"): with the cores free,
2 threads made the 1.5B model about 2x faster and the embedders about 1.5x; with two other busy
processes, 2 generation threads made token generation slower, while prompt processing still gained
from every core. Every model uses every core (capped) by default all the same: llama.cpp's logits
depend on the number of generation threads, so a default that followed the machine's load made
the same run give other answers (the sample's auto_merging sick-leave answer: 10 days with one
thread, 25 with two). A run repeats on the same machine; on a busy one set the threads to 1.
"""

from __future__ import annotations

import os

AUTO_CAP = 8  # beyond this, CPU inference is bound by memory bandwidth, not cores


def cores() -> int:
    """Cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def model_threads(setting: int) -> int:
    """Threads for token generation or embedding: the setting, or (0) every core (not the load: see above)."""
    return int(setting) if setting else min(cores(), AUTO_CAP)


def prompt_threads(setting: int) -> int:
    """Threads for llama.cpp's prompt processing: the setting, or (0) every core."""
    return model_threads(setting)
