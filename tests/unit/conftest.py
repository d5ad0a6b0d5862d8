import pytest
from fakes import EchoLLM, HashEmbedding

from rag.embedding import EMBEDDERS, Embedder
from rag.generation import GENERATORS, Generator


@pytest.fixture(scope="session", autouse=True)
def fake_models():
    """Register the fakes under their own names: the package's registries are the real ones."""
    if "fake-hash" not in EMBEDDERS:
        EMBEDDERS.register("fake-hash", Embedder(name="fake-hash", help="test", description="test",
                                                 model_path=lambda: "-", load=lambda config: HashEmbedding()))
    if "fake-echo" not in GENERATORS:
        GENERATORS.register("fake-echo", Generator(name="fake-echo", help="test", make=lambda config: EchoLLM()))


@pytest.fixture
def fake_config(tmp_path):
    from rag import Config

    return Config(storage_dir=tmp_path / "storage", embed_model="fake-hash", llm_provider="fake-echo",
                  reranker="embedding")
