"""Ingest and evaluation throughput: the local executor against Ray with 1 and 2 worker nodes, one machine.

    .venv/bin/python bench/ray_throughput.py                       # data/ PDFs, 4 questions, basic, local judge
    .venv/bin/python bench/ray_throughput.py --questions 2 --judge lexical --configs local,ray2
    .venv/bin/python bench/ray_throughput.py --pdfs ../shared/datasets/sec10q/pdfs --questions 0

Each configuration runs in a fresh process (models load cold in every one, as in a real run) and
does the same work: ingest the PDFs into an empty PostgreSQL database (a throw-away server on
127.0.0.1, tests/pg_server.py; the store workers on other machines would share), then evaluate the
first ``--questions`` of ``eval_questions/sample.jsonl`` through one retriever with the 1.5B
generator and ``--judge``. Ray configurations start a cluster on this machine the way the tests do
(``ray.cluster_utils.Cluster``): a head node that takes no tasks and 1 or 2 worker nodes of 1 CPU.

CPU seconds are sampled every half second from the process tree (the driver, and Ray's daemons
and workers under it) and the PostgreSQL server's processes: a Ray worker's CPU is otherwise
invisible to ``getrusage``. A process that exits between two samples loses at most half a second.
Every process runs ``--threads`` threads (llama.cpp and the embedder), so one worker node is one
local process's worth of CPU. The Ray cluster's start is timed apart; the first tasks on each
worker still import rag and load the models, and that stays in the stage it delays.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import ROOT, log, machine_state, remove_unless_kept, write_results  # noqa: E402

CONFIGS = {"local": 0, "ray1": 1, "ray2": 2}  # name -> Ray worker nodes (0: the local executor, no Ray)
NODE_MEMORY = 150 * 2**20  # object store per Ray node: PDFs, vectors and rows are small; this machine is not


# ---------------------------------------------------------------- CPU accounting

class CpuSampler:
    """CPU seconds (user + system) of this process, its descendants, and a server's processes.

    Each process's last reading is kept by (pid, start time), so a process that exits still counts
    with what it had used at its last sample.
    """

    def __init__(self, server_pid: int | None, period_s: float = 0.5):
        import psutil

        self.psutil = psutil
        self.me = psutil.Process()
        self.server = psutil.Process(server_pid) if server_pid else None
        self.seen: dict[tuple[int, float], tuple[str, float]] = {}
        self.lock = threading.Lock()
        self.period_s = period_s
        self.stopped = threading.Event()
        self.thread = threading.Thread(target=self._loop, daemon=True)
        self.thread.start()

    def _read(self, process: Any, group: str) -> None:
        try:
            times = process.cpu_times()
            key = (process.pid, process.create_time())
        except (self.psutil.NoSuchProcess, self.psutil.AccessDenied, self.psutil.ZombieProcess):
            return
        if key in self.seen and self.seen[key][0] == "workers":  # a worker on its way out loses its title
            group = "workers"
        self.seen[key] = (group, times.user + times.system)

    def _ray_group(self, process: Any) -> str:
        """Ray names its worker processes ``ray::...`` (setproctitle); the rest are its daemons."""
        try:
            title = " ".join(process.cmdline()[:1])
        except (self.psutil.NoSuchProcess, self.psutil.AccessDenied, self.psutil.ZombieProcess):
            return "daemons"
        return "workers" if title.startswith("ray::") else "daemons"

    def sample(self) -> None:
        with self.lock:
            self._read(self.me, "driver")
            for child in self.me.children(recursive=True):
                self._read(child, self._ray_group(child))  # everything under the driver is Ray's (local runs start none)
            if self.server is not None:
                for process in [self.server, *self.server.children(recursive=True)]:
                    self._read(process, "postgres")

    def totals(self) -> dict[str, float]:
        self.sample()
        sums = {"driver": 0.0, "workers": 0.0, "daemons": 0.0, "postgres": 0.0}
        with self.lock:
            for group, seconds in self.seen.values():
                sums[group] += seconds
        return sums

    def _loop(self) -> None:
        while not self.stopped.wait(self.period_s):
            self.sample()

    def stop(self) -> None:
        self.stopped.set()
        self.thread.join(timeout=5)


def stage(sampler: CpuSampler, work: Any) -> tuple[Any, dict[str, float]]:
    """Run ``work()``; its result and wall / CPU seconds by group."""
    before, start = sampler.totals(), time.perf_counter()
    result = work()
    wall, after = time.perf_counter() - start, sampler.totals()
    return result, {"wall_s": wall, **{f"cpu_{k}_s": after[k] - before[k] for k in before}}


# ---------------------------------------------------------------- one configuration (a child process)

def start_cluster(workers: int, threads: int) -> Any:
    import ray
    from ray.cluster_utils import Cluster

    # The head (this machine's driver node) takes no tasks: all work goes to the worker nodes, as on a real cluster.
    head = Cluster(initialize_head=True, head_node_args={"num_cpus": 0, "object_store_memory": NODE_MEMORY,
                                                          "include_dashboard": False})
    for _ in range(workers):
        head.add_node(num_cpus=1, object_store_memory=NODE_MEMORY)
    head.wait_for_nodes()
    ray.init(address=head.address, log_to_driver=False,
             runtime_env={"env_vars": {"HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": str(threads)}})
    return head


def run_one(args: argparse.Namespace) -> dict[str, Any]:
    workers = CONFIGS[args.child]
    sampler = CpuSampler(args.server_pid)
    out: dict[str, Any] = {"config": args.child, "workers": workers}
    cluster = None
    try:
        if workers:
            cluster, timing = stage(sampler, lambda: start_cluster(workers, args.threads))
            out["cluster_start"] = timing
        from rag import RAG, Config
        from rag.evaluation.questions import load_questions

        storage = Path(args.storage)
        config = Config(store=args.store, storage_dir=storage, executor="ray" if workers else "local",
                        llm_model=args.model, judge=args.judge, embed_threads=args.threads,
                        llm_threads=args.threads, llm_prompt_threads=args.threads)
        app = RAG(config, progress=False)
        report, out["ingest"] = stage(sampler, lambda: app.ingest(args.pdfs, progress=False))
        if report.failed:
            raise SystemExit(f"ingest failed: {report.failed}")
        out["ingest"].update(pdfs=len(report.added), pages=report.pages, nodes=report.embedded,
                             note=report.messages[-1] if workers and report.messages else "")
        questions = load_questions(args.questions_file)[:args.questions]
        if questions:
            results, out["eval"] = stage(sampler, lambda: app.evaluate(
                questions, retrievers=[args.retriever], judge=args.judge, progress=False,
                output_dir=storage / "eval"))
            rows = results.rows
            # The cache line says whether this process answered or judged anything itself after the workers.
            out["eval"].update(rows=len(rows), errors=int(rows["error"].notna().sum()),
                               note=f"{results.executor} | driver's evaluation cache: {results.cache}",
                               answers=rows["answer"].tolist())
    finally:
        if cluster is not None:
            import ray

            ray.shutdown()
            cluster.shutdown()
        sampler.stop()
    return out


# ---------------------------------------------------------------- the whole run

def run_config(name: str, args: argparse.Namespace, server: Any, work: Path) -> dict[str, Any]:
    url = server.create_database(f"bench_{name}")
    storage = work / f"storage-{name}"
    logfile = work / f"{name}.log"
    command = [sys.executable, __file__, "--child", name, "--store", url, "--storage", str(storage),
               "--server-pid", str(server_pid(server)), "--pdfs", str(args.pdfs), "--questions", str(args.questions),
               "--questions-file", str(args.questions_file), "--retriever", args.retriever, "--judge", args.judge,
               "--model", args.model, "--threads", str(args.threads)]
    log(f"{name}: running (log {logfile})")
    with open(logfile, "w") as handle:  # llama.cpp and Ray write a lot: keep it out of the table
        done = subprocess.run(command, stdout=subprocess.PIPE, stderr=handle, text=True,
                              env={**os.environ, "RAG_LLAMACPP_VERBOSITY": os.environ.get("RAG_LLAMACPP_VERBOSITY", "0")})
    if done.returncode != 0:
        tail = logfile.read_text(errors="replace")[-3000:]
        log(f"{name} failed ({done.returncode}):\n{tail}")
        return {"config": name, "workers": CONFIGS[name], "failed": tail.strip().splitlines()[-1:]}
    return json.loads(done.stdout.strip().splitlines()[-1])


def server_pid(server: Any) -> int:
    """The postmaster's pid (pg_ctl starts it detached, so it is not under this process)."""
    return int((server.data / "postmaster.pid").read_text().splitlines()[0])


def cpu_total(timing: dict[str, float]) -> float:
    return timing["cpu_driver_s"] + timing["cpu_workers_s"] + timing["cpu_daemons_s"] + timing["cpu_postgres_s"]


def print_table(results: list[dict[str, Any]], markdown: bool) -> None:
    header = ["config", "stage", "work", "wall s", "rate", "CPU s driver", "Ray workers", "Ray daemons", "PostgreSQL",
              "CPU s total", "per CPU s"]
    lines = []
    for r in results:
        if "failed" in r:
            lines.append([r["config"], "failed", " ".join(r["failed"])[:60], *[""] * 8])
            continue
        stages = [("ingest", r["ingest"])] + ([("eval", r["eval"])] if "eval" in r else [])
        for name, t in stages:
            cpu = cpu_total(t)
            if name == "ingest":
                work = f"{t['pdfs']} PDFs, {t['pages']} pages, {t['nodes']} nodes"
                rate = f"{t['pages'] / t['wall_s']:.2f} pages/s, {t['pdfs'] / t['wall_s']:.3f} PDFs/s"
                per = f"{t['pages'] / cpu:.2f} pages"
            else:
                work = f"{t['rows']} rows" + (f" ({t['errors']} errors)" if t["errors"] else "")
                rate = f"{t['rows'] / t['wall_s']:.4f} rows/s"
                per = f"{t['rows'] / cpu:.4f} rows"
            lines.append([r["config"], name, work, f"{t['wall_s']:.1f}", rate, f"{t['cpu_driver_s']:.1f}",
                          f"{t['cpu_workers_s']:.1f}", f"{t['cpu_daemons_s']:.1f}", f"{t['cpu_postgres_s']:.1f}", f"{cpu:.1f}", per])
    if markdown:
        print("| " + " | ".join(header) + " |")
        print("|" + "---|" * len(header))
        for line in lines:
            print("| " + " | ".join(line) + " |")
        return
    widths = [max(len(h), *(len(line[i]) for line in lines)) for i, h in enumerate(header)]
    print("  ".join(h.ljust(w) for h, w in zip(header, widths)))
    for line in lines:
        print("  ".join(c.ljust(w) for c, w in zip(line, widths)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--configs", default="local,ray1,ray2", help="which of local, ray1, ray2 to run, in order")
    parser.add_argument("--pdfs", default=str(ROOT / "data"), help="folder of PDFs to ingest (default: data/)")
    # 2 by default: with the 1.5B answering and judging (~1 CPU-minute a row on one thread) and three
    # configurations, more does not fit ~12 minutes on 2 shared cores.
    parser.add_argument("--questions", type=int, default=2,
                        help="first N questions of --questions-file to evaluate (0: ingest only; default 2)")
    parser.add_argument("--questions-file", default=str(ROOT / "eval_questions" / "sample.jsonl"))
    parser.add_argument("--retriever", default="basic")
    parser.add_argument("--judge", default="local", help="evaluation judge (default: local, the 1.5B model)")
    parser.add_argument("--model", default="qwen2.5-coder-1.5b", help="generator (llm_model)")
    parser.add_argument("--threads", type=int, default=1,
                        help="llama.cpp and embedding threads of every process (default 1: one per worker node's CPU)")
    parser.add_argument("--markdown", action="store_true", help="print a Markdown table")
    parser.add_argument("--json", default=str(ROOT / "bench" / "results" / "ray_throughput.json"))
    parser.add_argument("--tmp", help="parent folder for storage and logs (default: system temp)")
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder (logs of each configuration)")
    # One configuration, in a child process (internal).
    parser.add_argument("--child", choices=sorted(CONFIGS), help=argparse.SUPPRESS)
    parser.add_argument("--store", help=argparse.SUPPRESS)
    parser.add_argument("--storage", help=argparse.SUPPRESS)
    parser.add_argument("--server-pid", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.child:
        print(json.dumps(run_one(args), default=str))
        return

    names = [n.strip() for n in args.configs.split(",") if n.strip()]
    unknown = [n for n in names if n not in CONFIGS]
    if unknown:
        parser.error(f"unknown configuration(s) {unknown}: choose from {', '.join(CONFIGS)}")
    start_state = machine_state()
    print(f"start: {start_state['uptime']}", flush=True)
    sys.path.insert(0, str(ROOT / "tests"))
    from pg_server import PostgresServer, postgres_bin_dir

    bin_dir = postgres_bin_dir(vector=True)
    if bin_dir is None:
        raise SystemExit("no PostgreSQL with pgvector found: run scripts/setup.sh --test")
    work = Path(tempfile.mkdtemp(prefix="rag-bench-ray-", dir=args.tmp))
    server = PostgresServer(bin_dir)
    server.start()
    results = []
    try:
        for name in names:
            results.append(run_config(name, args, server, work))
    finally:
        server.stop()
        remove_unless_kept(work, args.keep)
    end_state = machine_state()

    print(f"\nPDFs: {args.pdfs}; eval: first {args.questions} question(s) of {Path(args.questions_file).name}, "
          f"retriever {args.retriever}, generator {args.model}, judge {args.judge}; {args.threads} thread(s) per "
          f"process; PostgreSQL store on 127.0.0.1; {os.cpu_count()} CPUs")
    print("Each row includes its workers' cold start (importing rag, loading the models); the Ray cluster's own "
          "start is listed below the table.")
    if args.questions and args.questions < 4:
        print(f"Only {args.questions} question(s): each row costs about a CPU-minute with the 1.5B answering and "
              "judging on one thread, so more do not fit the default run's ~12 minutes (--questions N).")
    print()
    print_table(results, args.markdown)
    print()
    for r in results:
        if "cluster_start" in r:
            t = r["cluster_start"]
            print(f"{r['config']}: Ray cluster start (head + {r['workers']} worker node(s)) {t['wall_s']:.1f} s wall, "
                  f"{cpu_total(t):.1f} CPU s, not in the rows above")
        for name in ("ingest", "eval"):
            if r.get(name, {}).get("note"):
                print(f"{r['config']} {name}: {r[name]['note']}")
    answers = {r["config"]: r["eval"]["answers"] for r in results if "eval" in r}
    if len(answers) > 1:
        same = len({json.dumps(a) for a in answers.values()}) == 1
        print(f"answers identical across configurations: {'yes' if same else 'no'}")
    print(f"\nstart: {start_state['uptime']}\nend:   {end_state['uptime']}")
    write_results(args.json, {"machine_start": start_state, "machine_end": end_state, "args": vars(args),
                              "results": results})


if __name__ == "__main__":
    main()
