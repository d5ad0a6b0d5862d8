"""Counters and latency histograms of ``rag serve``, written in the Prometheus text format (``GET /metrics``)."""

from __future__ import annotations

import threading
from collections import defaultdict
from typing import Callable

# Seconds: retrieval is tens of milliseconds, a local answer tens of seconds.
LATENCY_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0)


class Metrics:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.requests: dict[tuple[str, str, int], int] = defaultdict(int)  # (route, method, status) -> count
        self.latency: dict[str, list[int]] = {}  # route -> count per bucket (+Inf last)
        self.latency_sum: dict[str, float] = defaultdict(float)
        self.tokens: dict[str, int] = defaultdict(int)  # prompt / completion
        self.rejected: dict[str, int] = defaultdict(int)  # queue -> 429s
        self.reloads = 0
        self.gauges: dict[str, Callable[[], float]] = {}  # name -> current value, read when scraped

    def observe(self, route: str, method: str, status: int, seconds: float) -> None:
        with self._lock:
            self.requests[(route, method, status)] += 1
            counts = self.latency.setdefault(route, [0] * (len(LATENCY_BUCKETS) + 1))
            for i, bound in enumerate(LATENCY_BUCKETS):
                if seconds <= bound:
                    counts[i] += 1
            counts[-1] += 1
            self.latency_sum[route] += seconds

    def count_tokens(self, prompt: int, completion: int) -> None:
        with self._lock:
            self.tokens["prompt"] += prompt
            self.tokens["completion"] += completion

    def count_rejected(self, queue: str) -> None:
        with self._lock:
            self.rejected[queue] += 1

    def count_reload(self) -> None:
        with self._lock:
            self.reloads += 1

    def render(self) -> str:
        with self._lock:
            lines = ["# HELP rag_requests_total HTTP requests by route, method and status.",
                     "# TYPE rag_requests_total counter"]
            lines += [f'rag_requests_total{{route="{r}",method="{m}",status="{s}"}} {n}'
                      for (r, m, s), n in sorted(self.requests.items())]
            lines += ["# HELP rag_request_seconds Time from request to the end of the response.",
                      "# TYPE rag_request_seconds histogram"]
            for route, counts in sorted(self.latency.items()):
                for bound, n in zip((*map(str, LATENCY_BUCKETS), "+Inf"), counts):
                    lines.append(f'rag_request_seconds_bucket{{route="{route}",le="{bound}"}} {n}')
                lines.append(f'rag_request_seconds_sum{{route="{route}"}} {self.latency_sum[route]:.6f}')
                lines.append(f'rag_request_seconds_count{{route="{route}"}} {counts[-1]}')
            lines += ["# HELP rag_tokens_total Tokens the generator read (prompt) and wrote (completion).",
                      "# TYPE rag_tokens_total counter"]
            lines += [f'rag_tokens_total{{kind="{k}"}} {self.tokens[k]}' for k in ("prompt", "completion")]
            lines += ["# HELP rag_rejected_total Requests refused with 429 because a queue was full.",
                      "# TYPE rag_rejected_total counter"]
            lines += [f'rag_rejected_total{{queue="{q}"}} {n}' for q, n in sorted(self.rejected.items())]
            lines += ["# HELP rag_index_reloads_total Index reloads after an ingest.",
                      "# TYPE rag_index_reloads_total counter", f"rag_index_reloads_total {self.reloads}"]
            gauges = dict(self.gauges)
        for name, read in sorted(gauges.items()):
            lines += [f"# TYPE {name} gauge", f"{name} {read():g}"]
        return "\n".join(lines) + "\n"
