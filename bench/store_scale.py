"""Local (FAISS) vs PostgreSQL + pgvector store: ingest, query latency, scale, concurrency.

    .venv/bin/python bench/store_scale.py                          # every part, defaults below
    .venv/bin/python bench/store_scale.py --part scale --chunks 200000 --markdown
    .venv/bin/python bench/store_scale.py --part concurrency --seconds 120
    PYTHONPATH=/tmp/pgvs .venv/bin/python bench/store_scale.py --part llamaindex   # see below

Parts (``--part``, repeatable; default all but ``llamaindex``):

* ``sec10q``: ingest the first ``--files`` SEC 10-Q filings (read in place from shared/datasets)
  into a fresh local store and a fresh PostgreSQL database, then ``rag store migrate`` the local
  one into another database; wall time, CPU-seconds of this process and of the server, chunks/s.
  Then ``app.retrieve`` p50/p95 per retriever kind (default first stage) over ``--questions``
  questions, the two stores taking turns question by question (one warm-up each).
* ``scale``: ``--chunks`` unit vectors (384-d, clustered like embeddings: 2,000 centres plus
  noise; the vector-only part, no text), ``--queries`` queries near the centres. FAISS flat
  (exact), FAISS HNSW (M=16, efConstruction=64, efSearch=100) and pgvector HNSW (m=16,
  ef_construction=64, ef_search=100): build time, recall@10 against flat, query p50/p95 at 1, 4
  and 16 concurrent clients (threads; pgvector: one connection each, loopback), memory.
* ``concurrency``: 2 writers (each rewrites its own PDF and ingests the folder, in a loop) and
  8 readers (``retrieve`` with every kind and first stage, in a loop) for ``--seconds`` on one
  PostgreSQL store; counts operations, errors, reads that saw two versions of one file, then
  checks that every file's nodes are there exactly once at its current version, no orphans.
* ``llamaindex``: LlamaIndex's ``PGVectorStore`` against our direct SQL on the same table size:
  insert and query time. ``llama-index-vector-stores-postgres`` needs SQLAlchemy < 2.1 (we use
  2.1), so it is not a dependency: install it aside (``pip install --target /tmp/pgvs
  llama-index-vector-stores-postgres 'sqlalchemy<2.1' asyncpg``) and put that first on PYTHONPATH.

The server is a throw-away one on 127.0.0.1 (tests/pg_server.py; fsync on, shared_buffers 1GB)
unless ``--url`` names one. Numbers go to stdout as a table and to bench/results/store_scale.json.
"""

from __future__ import annotations

import argparse
import csv
import os
import random
import resource
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any, Callable

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import ROOT, log, machine_state, sec10q_paths, write_results  # noqa: E402

sys.path.insert(0, str(ROOT / "tests"))
KINDS = ("basic", "sentence_window", "auto_merging")
MODES = ("dense", "bm25", "hybrid")
DIM = 384
SERVER_OPTIONS = ("-c fsync=on -c synchronous_commit=on -c full_page_writes=on -c shared_buffers=1GB "
                  "-c maintenance_work_mem=1GB -c max_connections=100")


# ---------------------------------------------------------------- measuring

def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q / 100 * (len(ordered) - 1))))] if ordered else float("nan")


def cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def rss_mb() -> float:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


class Server:
    """The PostgreSQL server: CPU-seconds and memory (PSS) of all its processes."""

    def __init__(self, url: str | None):
        self.handle = None
        if url:
            self.base = url.rsplit("/", 1)[0]
            self.pid = None
            return
        from pg_server import PostgresServer, postgres_bin_dir

        bin_dir = postgres_bin_dir(vector=True)
        if bin_dir is None:
            sys.exit("no PostgreSQL with pgvector found: run scripts/setup.sh --test, or pass --url")
        self.handle = PostgresServer(bin_dir, options=SERVER_OPTIONS)
        self.handle.start()
        self.base = self.handle.url("").rstrip("/")
        self.pid = int((self.handle.data / "postmaster.pid").read_text().split()[0])

    def database(self, name: str) -> str:
        import psycopg

        with psycopg.connect(self.base + "/postgres", autocommit=True) as connection:
            connection.execute(f'DROP DATABASE IF EXISTS "{name}"')
            connection.execute(f'CREATE DATABASE "{name}"')
        return f"{self.base}/{name}"

    def cpu_s(self) -> float:
        if self.pid is None:
            return float("nan")
        import psutil

        root = psutil.Process(self.pid)
        total = sum(root.cpu_times()[:4])  # user, system, and those of exited children (backends)
        for child in root.children(recursive=True):
            try:
                total += sum(child.cpu_times()[:2])
            except psutil.Error:
                pass
        return total

    def pss_mb(self) -> float:
        if self.pid is None:
            return float("nan")
        import psutil

        total = 0.0
        for process in [psutil.Process(self.pid), *psutil.Process(self.pid).children(recursive=True)]:
            try:
                total += process.memory_full_info().pss / 2**20
            except psutil.Error:
                pass
        return total

    def stop(self) -> None:
        if self.handle is not None:
            self.handle.stop()


class Clock:
    """Wall time, CPU-seconds of this process and of the server over a block."""

    def __init__(self, server: Server):
        self.server = server

    def __enter__(self):
        self.t, self.c, self.s = time.perf_counter(), cpu_s(), self.server.cpu_s()
        return self

    def __exit__(self, *exc):
        self.wall = time.perf_counter() - self.t
        self.cpu = cpu_s() - self.c
        self.server_cpu = self.server.cpu_s() - self.s


# ---------------------------------------------------------------- part: SEC 10-Q

def part_sec10q(server: Server, args: argparse.Namespace, tmp: Path) -> dict[str, Any]:
    from rag import RAG, Config

    pdf_dir, questions_csv = sec10q_paths(args.pdfs, None)
    files = sorted(pdf_dir.glob("*.pdf"))[: args.files]
    folder = tmp / "sec10q"
    folder.mkdir()
    for pdf in files:  # read in place
        (folder / pdf.name).symlink_to(pdf)
    with open(questions_csv, newline="") as fh:
        questions = [row["Question"] for row in csv.DictReader(fh)][: args.questions]
    stores = {"local": Config(storage_dir=tmp / "local"),
              "postgresql": Config(storage_dir=tmp / "pg", store=server.database("sec10q"))}
    out: dict[str, Any] = {"files": [f.name for f in files], "ingest": {}, "retrieve": {}}
    apps = {}
    for name, config in stores.items():
        log(f"sec10q: ingest {len(files)} filing(s) into {name}")
        app = apps[name] = RAG(config, progress=False)
        with Clock(server) as clock:
            report = app.ingest(folder, progress=False)
        out["ingest"][name] = {"pages": report.pages, "chunks": report.embedded, "wall_s": clock.wall,
                               "cpu_s": clock.cpu, "server_cpu_s": clock.server_cpu if name != "local" else 0.0}
        with Clock(server) as clock:
            again = app.ingest(folder, progress=False)
        out["ingest"][name]["reingest_s"] = clock.wall
        assert again.embedded == 0
    log("sec10q: migrate local -> postgresql")
    with Clock(server) as clock:
        done = RAG(stores["local"], progress=False).migrate(server.database("sec10q_migrated"))
    out["ingest"]["migrate"] = {"pages": out["ingest"]["local"]["pages"],
                                "chunks": sum(e["vectors"] for e in done["indexes"].values()),
                                "wall_s": clock.wall, "cpu_s": clock.cpu, "server_cpu_s": clock.server_cpu,
                                "reingest_s": float("nan")}
    for kind in KINDS:  # the stores take turns question by question, so both see the same machine load
        times: dict[str, list[float]] = {name: [] for name in apps}
        for app in apps.values():
            app.retrieve(questions[0], kind)  # warm-up: loads the index
        for question in questions:
            for name, app in apps.items():
                started = time.perf_counter()
                app.retrieve(question, kind)
                times[name].append(time.perf_counter() - started)
        for name, values in times.items():
            out["retrieve"][f"{name}/{kind}"] = {"n": len(values), "p50_ms": 1000 * pct(values, 50),
                                                  "p95_ms": 1000 * pct(values, 95)}
            log(f"sec10q: {name} {kind} p50 {1000 * pct(values, 50):.0f} ms")
    return out


# ---------------------------------------------------------------- part: scale (vectors only)

def clustered_unit_vectors(n: int, centres: Any, rng: Any, noise: float) -> Any:
    import numpy as np

    picks = rng.integers(0, len(centres), size=n)
    vectors = centres[picks] + noise * rng.standard_normal((n, centres.shape[1])).astype("float32")
    return (vectors / np.linalg.norm(vectors, axis=1, keepdims=True)).astype("float32")


def run_clients(clients: int, queries: Any, search: Callable[[Any, Any], Any], make_state: Callable[[], Any]):
    """Each client answers its share of ``queries`` one at a time; per-query latencies and QPS."""
    shares = [queries[i::clients] for i in range(clients)]
    latencies: list[float] = []
    lock = threading.Lock()

    def client(share):
        state = make_state()
        mine = []
        for q in share:
            started = time.perf_counter()
            search(state, q)
            mine.append(time.perf_counter() - started)
        with lock:
            latencies.extend(mine)

    threads = [threading.Thread(target=client, args=(s,)) for s in shares]
    started = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - started
    return {"p50_ms": 1000 * pct(latencies, 50), "p95_ms": 1000 * pct(latencies, 95), "qps": len(latencies) / wall}


def recall_at_10(found: list[list[int]], exact: Any) -> float:
    return sum(len(set(f) & set(e[:10].tolist())) for f, e in zip(found, exact)) / (10 * len(found))


def part_scale(server: Server, args: argparse.Namespace, tmp: Path) -> dict[str, Any]:
    import faiss
    import numpy as np
    import psycopg
    from pgvector.psycopg import register_vector

    faiss.omp_set_num_threads(1)
    rng = np.random.default_rng(7)
    centres = rng.standard_normal((2000, DIM)).astype("float32")
    log(f"scale: {args.chunks:,} vectors")
    data = clustered_unit_vectors(args.chunks, centres, rng, noise=0.35)
    queries = clustered_unit_vectors(args.queries, centres, rng, noise=0.35)
    out: dict[str, Any] = {"chunks": args.chunks, "queries": args.queries, "indexes": {}}

    def faiss_index(name: str, make: Callable[[], Any]):
        before = rss_mb()
        with Clock(server) as clock:
            index = make()
            index.add(data)
        entry = {"build_s": clock.wall, "build_cpu_s": clock.cpu, "query_rss_mb": rss_mb() - before}
        out["indexes"][name] = entry
        log(f"scale: {name} built in {clock.wall:.1f}s")
        return index, entry

    flat, flat_entry = faiss_index("faiss flat", lambda: faiss.IndexFlatIP(DIM))
    exact = flat.search(queries, 10)[1]
    flat_entry["recall@10"] = 1.0

    def make_hnsw():
        index = faiss.IndexHNSWFlat(DIM, 16, faiss.METRIC_INNER_PRODUCT)
        index.hnsw.efConstruction = 64
        return index

    hnsw, hnsw_entry = faiss_index("faiss hnsw", make_hnsw)
    hnsw.hnsw.efSearch = 100
    hnsw_entry["recall@10"] = recall_at_10([r.tolist() for r in hnsw.search(queries, 10)[1]], exact)

    for name, index, entry in (("faiss flat", flat, flat_entry), ("faiss hnsw", hnsw, hnsw_entry)):
        for clients in (1, 4, 16):
            entry[f"c{clients}"] = run_clients(clients, queries, lambda _, q, i=index: i.search(q[None, :], 10),
                                               lambda: None)
        log(f"scale: {name} {entry['c1']['p50_ms']:.2f} ms at 1 client")
    del flat, hnsw

    url = server.database("scale")
    with psycopg.connect(url, autocommit=True) as connection:
        connection.execute("CREATE EXTENSION IF NOT EXISTS vector")
        register_vector(connection)
        connection.execute(f"CREATE TABLE vectors (id int PRIMARY KEY, embedding vector({DIM}))")
        with Clock(server) as load:
            with connection.cursor().copy("COPY vectors (id, embedding) FROM STDIN WITH (FORMAT BINARY)") as copy:
                copy.set_types(["int4", "vector"])
                for i, vector in enumerate(data):
                    copy.write_row((i, vector))
        log(f"scale: pgvector loaded in {load.wall:.1f}s")
        with Clock(server) as build:
            connection.execute("SET max_parallel_maintenance_workers = 1")
            connection.execute("CREATE INDEX ON vectors USING hnsw (embedding vector_ip_ops) "
                               "WITH (m = 16, ef_construction = 64)")
        size = connection.execute("SELECT pg_total_relation_size('vectors')").fetchone()[0] / 2**20
        log(f"scale: pgvector HNSW built in {build.wall:.1f}s")

    def pg_state():
        connection = psycopg.connect(url, autocommit=True)
        register_vector(connection)
        connection.execute("SET hnsw.ef_search = 100")
        return connection

    def pg_search(connection, q):
        return [i for (i,) in connection.execute(
            "SELECT id FROM vectors ORDER BY embedding <#> %s LIMIT 10", (q,)).fetchall()]

    connection = pg_state()
    pg_search(connection, queries[0])  # warm the cache
    found = [pg_search(connection, q) for q in queries]
    connection.close()
    before = rss_mb()
    entry = out["indexes"]["pgvector hnsw"] = {
        "load_s": load.wall, "build_s": build.wall, "build_cpu_s": build.cpu + build.server_cpu,
        "recall@10": recall_at_10(found, exact), "table_and_index_mb": size}
    for clients in (1, 4, 16):
        entry[f"c{clients}"] = run_clients(clients, queries, pg_search, pg_state)
    entry["query_rss_mb"] = rss_mb() - before
    entry["server_pss_mb"] = server.pss_mb()
    log(f"scale: pgvector {entry['c1']['p50_ms']:.2f} ms at 1 client, recall {entry['recall@10']:.3f}")
    return out


# ---------------------------------------------------------------- part: 2 writers, 8 readers

def edition_pdf(path: Path, writer: int, edition: int) -> None:
    """A PDF whose every sentence names its writer and edition, written atomically."""
    from pdfs import make_pdf

    tag = f"w{writer}e{edition}"
    pages = [" ".join(f"Record {tag} line {p}.{i}: the pump of station {writer} moved {edition + i} litres."
                      for i in range(12)) for p in range(2)]
    tmp = path.parent.parent / f".{path.name}.{edition}.tmp"
    make_pdf(tmp, pages)
    os.replace(tmp, path)


def part_concurrency(server: Server, args: argparse.Namespace, tmp: Path) -> dict[str, Any]:
    import re

    import psycopg

    from rag import RAG, Config

    folder = tmp / "shared_pdfs"
    folder.mkdir()
    editions = {0: 1, 1: 1}
    for writer in editions:
        edition_pdf(folder / f"station{writer}.pdf", writer, 1)
    config = Config(storage_dir=tmp / "conc", store=server.database("concurrency"), lock_timeout=600)
    RAG(config, progress=False).ingest(folder, progress=False)
    deadline = time.monotonic() + args.seconds
    counts = {"ingests": 0, "reads": 0, "errors": 0, "mixed_reads": 0}
    errors: list[str] = []
    lock = threading.Lock()

    def count(key: str, error: str | None = None) -> None:
        with lock:
            counts[key] += 1
            if error and len(errors) < 5:
                errors.append(error)

    def writer(w: int) -> None:
        app = RAG(config, progress=False)
        while time.monotonic() < deadline:
            try:
                with lock:
                    editions[w] += 1
                    edition = editions[w]
                edition_pdf(folder / f"station{w}.pdf", w, edition)
                app.ingest(folder, progress=False)
                count("ingests")
            except Exception as exc:  # counted and shown, never hidden
                count("errors", f"writer {w}: {type(exc).__name__}: {exc}")

    def reader(r: int) -> None:
        app = RAG(config, progress=False)
        rng = random.Random(r)
        while time.monotonic() < deadline:
            spec = f"{rng.choice(KINDS)}:mode={rng.choice(MODES)}"
            try:
                sources = app.retrieve(f"how many litres did the pump of station {rng.randint(0, 1)} move", spec)
                seen: dict[str, set[str]] = {}
                for s in sources:
                    seen.setdefault(s.file, set()).update(re.findall(r"w\de(\d+)", s.text))
                count("reads")
                if any(len(v) > 1 for v in seen.values()):
                    count("mixed_reads", f"reader {r} {spec}: {seen}")
            except Exception as exc:
                count("errors", f"reader {r} {spec}: {type(exc).__name__}: {exc}")

    threads = [threading.Thread(target=writer, args=(w,)) for w in (0, 1)]
    threads += [threading.Thread(target=reader, args=(r,)) for r in range(8)]
    log(f"concurrency: 2 writers, 8 readers for {args.seconds}s")
    with Clock(server) as clock:
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    final = RAG(config, progress=False)
    final.ingest(folder, progress=False)  # the last edition each writer wrote
    manifest = final.store.manifest()
    problems = []
    with psycopg.connect(config.store) as connection:
        files = dict(connection.execute("SELECT name, sha256 FROM rag_files").fetchall())
        if set(files) != {"station0.pdf", "station1.pdf"}:
            problems.append(f"files {sorted(files)}")
        for key, entry in manifest["indexes"].items():
            tab = entry["table"]
            rows = connection.execute(f"SELECT file, position, node->'__data__'->>'text' FROM {tab}").fetchall()
            orphans = {f for f, _, _ in rows} - set(files)
            if orphans:
                problems.append(f"{key}: rows of files not indexed {orphans}")
            for name in files:
                positions = sorted(p for f, p, _ in rows if f == name)
                if positions != list(range(len(positions))) or not positions:
                    problems.append(f"{key}: {name} positions not 0..n-1 exactly once")
                tags = {t for f, _, text in rows if f == name for t in re.findall(r"w\de(\d+)", text)}
                writer_no = int(name[len("station")])
                if tags != {str(editions[writer_no])}:
                    problems.append(f"{key}: {name} editions {sorted(tags)} != current {editions[writer_no]}")
            missing_vectors = connection.execute(
                f"SELECT count(*) FROM {tab} WHERE embedding IS NULL").fetchone()[0]
            entry_vectors = entry["vectors"]
            if entry_vectors + missing_vectors != entry["nodes"]:
                problems.append(f"{key}: vector count mismatch")
    return {"seconds": args.seconds, "wall_s": clock.wall, "cpu_s": clock.cpu, "server_cpu_s": clock.server_cpu,
            **counts, "first_errors": errors, "consistency_problems": problems,
            "consistent": not problems}


# ---------------------------------------------------------------- part: LlamaIndex PGVectorStore vs ours

def part_llamaindex(server: Server, args: argparse.Namespace, tmp: Path) -> dict[str, Any]:
    import numpy as np
    import psycopg
    from llama_index.core.schema import TextNode
    from llama_index.core.vector_stores.types import VectorStoreQuery
    from llama_index.vector_stores.postgres import PGVectorStore
    from pgvector.psycopg import register_vector
    from sqlalchemy.engine import make_url

    rng = np.random.default_rng(3)
    n = args.li_nodes
    vectors = rng.standard_normal((n, DIM)).astype("float32")
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    queries = vectors[rng.integers(0, n, size=100)]
    texts = [f"passage {i} " + "lorem ipsum " * 30 for i in range(n)]
    out: dict[str, Any] = {"nodes": n}

    url = make_url(server.database("li_pgvectorstore"))
    store = PGVectorStore.from_params(host=url.host, port=str(url.port), user=url.username, password=url.password or "",
                                      database=url.database, table_name="bench", embed_dim=DIM,
                                      # cosine: the distance its queries order by (so they use the index)
                                      hnsw_kwargs={"hnsw_m": 16, "hnsw_ef_construction": 64, "hnsw_ef_search": 100,
                                                   "hnsw_dist_method": "vector_cosine_ops"})
    nodes = [TextNode(id_=f"n{i}", text=t, embedding=v.tolist()) for i, (t, v) in enumerate(zip(texts, vectors))]
    with Clock(server) as clock:
        store.add(nodes)
    out["PGVectorStore"] = {"insert_s": clock.wall, "insert_cpu_s": clock.cpu, "server_cpu_s": clock.server_cpu}
    times = []
    for q in queries:
        started = time.perf_counter()
        store.query(VectorStoreQuery(query_embedding=q.tolist(), similarity_top_k=10))
        times.append(time.perf_counter() - started)
    out["PGVectorStore"].update(p50_ms=1000 * pct(times, 50), p95_ms=1000 * pct(times, 95))

    ours = server.database("li_direct")
    with psycopg.connect(ours, autocommit=True) as connection:
        connection.execute("CREATE EXTENSION IF NOT EXISTS vector")
        register_vector(connection)
        connection.execute(f"CREATE TABLE bench (node_id text PRIMARY KEY, node jsonb, embedding vector({DIM}))")
        connection.execute("CREATE INDEX ON bench USING hnsw (embedding vector_ip_ops) WITH (m = 16, ef_construction = 64)")
        import json as _json

        with Clock(server) as clock:
            with connection.transaction(), connection.cursor().copy(
                    "COPY bench (node_id, node, embedding) FROM STDIN") as copy:
                for i, (t, v) in enumerate(zip(texts, vectors)):
                    copy.write_row((f"n{i}", _json.dumps({"text": t}), v))
        out["direct SQL (ours)"] = {"insert_s": clock.wall, "insert_cpu_s": clock.cpu, "server_cpu_s": clock.server_cpu}
        connection.execute("SET hnsw.ef_search = 100")
        times = []
        for q in queries:
            started = time.perf_counter()
            connection.execute("SELECT node, -(embedding <#> %s) FROM bench ORDER BY embedding <#> %s LIMIT 10",
                               (q, q)).fetchall()
            times.append(time.perf_counter() - started)
        out["direct SQL (ours)"].update(p50_ms=1000 * pct(times, 50), p95_ms=1000 * pct(times, 95))
    return out


# ---------------------------------------------------------------- tables

def table(headers: list[str], rows: list[list[Any]], markdown: bool) -> str:
    cells = [[f"{c:,.2f}" if isinstance(c, float) else str(c) for c in row] for row in rows]
    if markdown:
        lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
        return "\n".join(lines + ["| " + " | ".join(r) + " |" for r in cells])
    widths = [max(len(h), *(len(r[i]) for r in cells)) for i, h in enumerate(headers)]
    fmt = "  ".join(f"{{:>{w}}}" for w in widths)
    return "\n".join([fmt.format(*headers)] + [fmt.format(*r) for r in cells])


def report(results: dict[str, Any], markdown: bool) -> str:
    parts = []
    if "sec10q" in results:
        r = results["sec10q"]
        parts.append(f"SEC 10-Q, {len(r['files'])} filing(s): ingest")
        parts.append(table(["store", "pages", "chunks", "wall s", "CPU s (client)", "CPU s (server)", "chunks/s",
                            "re-ingest s"],
                           [[k, e["pages"], e["chunks"], e["wall_s"], e["cpu_s"], e["server_cpu_s"],
                             e["chunks"] / e["wall_s"], e["reingest_s"]] for k, e in r["ingest"].items()], markdown))
        parts.append("retrieve (default first stage, embedding rerank), ms")
        parts.append(table(["store/kind", "n", "p50", "p95"],
                           [[k, e["n"], e["p50_ms"], e["p95_ms"]] for k, e in r["retrieve"].items()], markdown))
    if "scale" in results:
        r = results["scale"]
        parts.append(f"Scale: {r['chunks']:,} vectors x {DIM}, {r['queries']} queries, top 10, ms per query")
        rows = []
        for name, e in r["indexes"].items():
            rows.append([name, e["build_s"], e["recall@10"], *(e[f"c{c}"][k] for c in (1, 4, 16)
                                                                for k in ("p50_ms", "p95_ms", "qps")),
                         e["query_rss_mb"], e.get("server_pss_mb", 0.0)])
        parts.append(table(["index", "build s", "recall@10", "1: p50", "p95", "qps", "4: p50", "p95", "qps",
                            "16: p50", "p95", "qps", "client RSS MB", "server PSS MB"], rows, markdown))
    if "concurrency" in results:
        r = results["concurrency"]
        parts.append(f"Concurrency: 2 writers + 8 readers for {r['seconds']}s on one PostgreSQL store")
        parts.append(table(["ingests", "reads", "errors", "mixed reads", "consistent", "CPU s (client)",
                            "CPU s (server)"],
                           [[r["ingests"], r["reads"], r["errors"], r["mixed_reads"], r["consistent"], r["cpu_s"],
                             r["server_cpu_s"]]], markdown))
        for line in r["first_errors"] + r["consistency_problems"]:
            parts.append(f"  {line}")
    if "llamaindex" in results:
        r = results["llamaindex"]
        parts.append(f"LlamaIndex PGVectorStore vs direct SQL, {r['nodes']:,} nodes (HNSW, top 10)")
        parts.append(table(["writer", "insert s", "CPU s (client)", "CPU s (server)", "query p50 ms", "p95 ms"],
                           [[k, e["insert_s"], e["insert_cpu_s"], e["server_cpu_s"], e["p50_ms"], e["p95_ms"]]
                            for k, e in r.items() if isinstance(e, dict)], markdown))
    return "\n\n".join(parts)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--part", action="append", choices=["sec10q", "scale", "concurrency", "llamaindex"])
    parser.add_argument("--url", help="an existing server: postgresql://user@host:port (databases are created)")
    parser.add_argument("--pdfs", help="SEC 10-Q PDF folder (default: shared/datasets/sec10q/pdfs)")
    parser.add_argument("--files", type=int, default=1, help="SEC filings to ingest (default 1)")
    parser.add_argument("--questions", type=int, default=20, help="retrievals per kind and store (default 20)")
    parser.add_argument("--chunks", type=int, default=200_000, help="synthetic vectors (default 200,000)")
    parser.add_argument("--queries", type=int, default=400, help="synthetic queries (default 400)")
    parser.add_argument("--seconds", type=int, default=120, help="concurrency run length (default 120)")
    parser.add_argument("--li-nodes", type=int, default=20_000, help="nodes for the PGVectorStore comparison")
    parser.add_argument("--markdown", action="store_true")
    parser.add_argument("--json", default=str(ROOT / "bench" / "results" / "store_scale.json"))
    args = parser.parse_args()
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    import torch

    torch.set_num_threads(1)
    parts = args.part or ["sec10q", "scale", "concurrency"]
    server = Server(args.url)
    results: dict[str, Any] = {"machine_start": machine_state(), "args": vars(args)}
    try:
        with tempfile.TemporaryDirectory(prefix="store-scale-") as tmp:
            for part in parts:
                started = time.perf_counter()
                results[part] = globals()[f"part_{part}"](server, args, Path(tmp))
                results[part]["part_wall_s"] = time.perf_counter() - started
                write_results(args.json, results)
    finally:
        server.stop()
    results["machine_end"] = machine_state()
    write_results(args.json, results)
    print(report(results, args.markdown))
    print(f"\nload: {results['machine_start']['uptime']}  ->  {results['machine_end']['uptime']}")


if __name__ == "__main__":
    main()
