"""Ingest and evaluation on a real Ray cluster: a head node and two worker nodes on this machine
(``ray.cluster_utils.Cluster``), a real PostgreSQL + pgvector server, the bundled embedder, and a
deterministic fake OpenAI-compatible server for the answers (the issue allows one for identity).

Skipped only where Ray is not installed (``pip install -e ".[ray]"``; ``scripts/setup.sh --test``
installs it). The cluster starts once for the module; the test that kills a worker node runs last.
"""

from __future__ import annotations

import hashlib
import threading
import time
from pathlib import Path

import pytest
from conftest import TEST_GENERATOR
from fake_openai import FakeOpenAIServer
from pg_server import running_server

from rag import RAG, Config
from rag.evaluation.questions import load_questions
from rag.retrieval.spec import RetrieverSpec
from rag.stores.base import FileVersion

ray = pytest.importorskip("ray", reason='the Ray executor needs the ray extra: pip install -e ".[ray]"')

ROOT = Path(__file__).resolve().parents[2]
QUESTIONS = load_questions(ROOT / "eval_questions" / "sample.jsonl")[:2]
VERSIONS = ["basic", "sentence_window"]
KINDS = ("basic", "sentence_window", "auto_merging")
NODE_MEMORY = 100 * 2**20  # object store per node: small, this is a 2-core machine
COMPARED = ["version", "question", "answer", "contexts", "sources", "context_relevance", "groundedness",
            "answer_relevance", "correctness", "citation_faithfulness", "hit_rate", "mrr", "error", "diagnosis"]


class ShortAnswers:
    """A greedy model in spirit: the same prompt always gets the same answer; optionally slow, and counted."""

    def __init__(self, delay_s: float = 0.0):
        self.delay_s, self.calls, self.lock = delay_s, 0, threading.Lock()

    def __call__(self, body: dict) -> str:
        with self.lock:
            self.calls += 1
        time.sleep(self.delay_s)
        prompt = body["messages"][-1]["content"]
        return f"From the context [1]: reference {hashlib.sha256(prompt.encode()).hexdigest()[:8]}."


@pytest.fixture(scope="module")
def cluster():
    from ray.cluster_utils import Cluster

    # The head takes no tasks: every task runs on one of the two worker nodes, which a test may kill.
    head = Cluster(initialize_head=True, head_node_args={"num_cpus": 0, "object_store_memory": NODE_MEMORY,
                                                          "include_dashboard": False})
    workers = [head.add_node(num_cpus=1, object_store_memory=NODE_MEMORY) for _ in range(2)]
    try:
        head.wait_for_nodes()
        ray.init(address=head.address, log_to_driver=False,
                 runtime_env={"env_vars": {"HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}})
        yield head, workers
    finally:
        ray.shutdown()
        head.shutdown()


@pytest.fixture(scope="module")
def pg():
    yield from running_server(vector=True)


@pytest.fixture(scope="module")
def ray_ingested(cluster, pg, sample_pdfs, tmp_path_factory):
    """The sample PDFs ingested into PostgreSQL through the Ray executor."""
    config = Config(store=pg.create_database("ray_ingest"), storage_dir=tmp_path_factory.mktemp("ray_storage"),
                    llm_model=TEST_GENERATOR, executor="ray")
    app = RAG(config, progress=False)
    report = app.ingest(sample_pdfs, progress=False)
    return app, report


def test_ray_ingest_stores_the_nodes_and_vectors_of_a_local_ingest(ray_ingested, sample_app, cluster):
    app, report = ray_ingested
    assert not report.failed and sorted(report.added) == sorted(sample_app.sources()["files"])
    summary = report.messages[-1]
    workers = [node.node_id[:8] for node in cluster[1]]
    assert summary.startswith("ray: ") and all(node in summary for node in workers), summary  # both nodes worked
    local_manifest, ray_manifest = sample_app.sources(), app.sources()
    for name, entry in local_manifest["files"].items():
        assert ray_manifest["files"][name]["sha256"] == entry["sha256"]
        for kind in KINDS:
            spec = RetrieverSpec.parse(kind, sample_app.config).parser_spec
            document = FileVersion(name, entry["sha256"], entry["pages"])
            local = sample_app.store.stored_nodes(spec, document)
            remote = app.store.stored_nodes(spec, document)
            # Node ids are LlamaIndex's random uuids in every ingest, local or not: compare what they hold.
            assert len(remote.parsed.nodes) == len(local.parsed.nodes), (name, kind)
            for i, (mine, theirs) in enumerate(zip(remote.parsed.nodes, local.parsed.nodes)):
                assert mine.text == theirs.text, (name, kind, i, mine.text[:300], theirs.text[:300])
                assert mine.metadata == theirs.metadata, (name, kind, i, mine.metadata, theirs.metadata)
            assert remote.parsed.embed == local.parsed.embed
            assert remote.vectors.dtype == local.vectors.dtype and remote.vectors.tobytes() == local.vectors.tobytes()
    assert app.retrieve(QUESTIONS[0].question, "basic") == sample_app.retrieve(QUESTIONS[0].question, "basic")


def _settled(answers: ShortAnswers, quiet_s: float = 3.0) -> int:
    """The number of calls once none has come for ``quiet_s`` seconds."""
    seen, since = answers.calls, time.monotonic()
    while time.monotonic() - since < quiet_s:
        time.sleep(0.2)
        if answers.calls != seen:
            seen, since = answers.calls, time.monotonic()
    return seen


def _app(ingested: RAG, server: FakeOpenAIServer, folder: Path, executor: str) -> RAG:
    return RAG(ingested.config.replace(llm_provider="openai_like", llm_base_url=server.base_url, llm_model="fake",
                                       judge="lexical", executor=executor, storage_dir=folder,
                                       database_url=f"sqlite:///{folder / 'trulens.sqlite'}"), progress=False)


def _evaluate(app: RAG, folder: Path):
    return app.evaluate(QUESTIONS, retrievers=VERSIONS, judge="lexical", progress=False, output_dir=folder / "out")


def _rows(results) -> list[dict]:
    return results.rows[COMPARED].to_dict(orient="records")


def test_ray_eval_gives_the_rows_of_a_local_run_and_resumes_after_an_interruption(ray_ingested, tmp_path,
                                                                                monkeypatch):
    ingested, _ = ray_ingested
    pairs = len(QUESTIONS) * len(VERSIONS)
    with FakeOpenAIServer(ShortAnswers()) as server:
        local = _evaluate(_app(ingested, server, tmp_path / "local", "local"), tmp_path / "local")
        assert server.reply.calls == pairs and not local.executor

        # A first Ray run stops (Ctrl-C) once two pairs are in; the second sends only the others.
        from rag.evaluation import cluster
        from rag.evaluation.cache import EvaluationCache

        put, done = EvaluationCache.put, []

        def put_then_interrupt(self, kind, key, value):
            put(self, kind, key, value)
            if kind == cluster.ROW_DONE:
                done.append(key)
                if len(done) == 2:
                    raise KeyboardInterrupt

        app = _app(ingested, server, tmp_path / "ray", "ray")
        monkeypatch.setattr(EvaluationCache, "put", put_then_interrupt)
        with pytest.raises(KeyboardInterrupt):
            _evaluate(app, tmp_path / "ray")
        monkeypatch.setattr(EvaluationCache, "put", put)
        calls = _settled(server.reply)  # requests of the cancelled tasks that were already on their way
        resumed = _evaluate(app, tmp_path / "ray")

    assert resumed.executor.startswith(f"{pairs - 2} of {pairs} answers and judgements on the ray executor, "
                                       "2 resumed"), resumed.executor
    assert "done here instead" not in resumed.executor, resumed.executor
    assert server.reply.calls - calls == pairs - 2  # the workers asked for the missing answers only ...
    assert resumed.cache.startswith(f"answers {pairs} of {pairs} from cache"), resumed.cache  # ... and this process none
    assert _rows(resumed) == _rows(local)
    assert resumed.rows["record_id"].notna().all() and resumed.rows["record_id"].nunique() == pairs
    assert resumed.leaderboard[["version", "triad"]].equals(local.leaderboard[["version", "triad"]])


def test_a_killed_worker_nodes_tasks_are_retried_and_every_row_is_recorded_once(ray_ingested, cluster, tmp_path):
    ingested, _ = ray_ingested
    _, workers = cluster
    pairs = len(QUESTIONS) * len(VERSIONS)
    slow = ShortAnswers(delay_s=1.5)
    with FakeOpenAIServer(slow) as server:
        app = _app(ingested, server, tmp_path, "ray")
        victim = workers[0]

        def kill_when_busy():
            while slow.calls < 2:  # both nodes are answering: each has a task in flight
                time.sleep(0.05)
            cluster[0].remove_node(victim, allow_graceful=False)

        killer = threading.Thread(target=kill_when_busy, daemon=True)
        killer.start()
        results = _evaluate(app, tmp_path)
        killer.join(timeout=5)

    rows = results.rows
    assert len(rows) == pairs and not rows.duplicated(["version", "question"]).any()
    assert rows["error"].isna().all() and rows["record_id"].nunique() == pairs
    assert f"of {pairs} answers and judgements on the ray executor" in results.executor
    assert "retried after a worker stopped" in results.executor and victim.node_id[:8] in results.executor, \
        results.executor
    from rag.evaluation import leaderboard

    board = leaderboard(app.config)
    assert sorted(board["records"]) == [len(QUESTIONS)] * len(VERSIONS)  # one TruLens record per row
