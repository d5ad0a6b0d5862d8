"""Config is read the same way however it is made, and a bad setting fails at load, by name."""

import tomllib
import warnings

import pytest

from rag.config import Config, ConfigWarning
from rag.errors import ConfigError


@pytest.fixture
def workdir(tmp_path, monkeypatch):
    """An empty working directory and no RAG_* variables from the caller's shell."""
    monkeypatch.chdir(tmp_path)
    for key in [k for k in __import__("os").environ if k.startswith("RAG_")]:
        monkeypatch.delenv(key)
    return tmp_path


def test_config_reads_rag_toml_then_environment_then_arguments(workdir, monkeypatch):
    (workdir / "rag.toml").write_text('top_k = 7\nwindow_size = 2\nreranker = "none"\n')
    assert (Config().top_k, Config().window_size, Config().reranker) == (7, 2, "none")
    monkeypatch.setenv("RAG_TOP_K", "5")
    config = Config(window_size=1)
    assert (config.top_k, config.window_size, config.reranker) == (5, 1, "none")
    assert config.origins == {"top_k": "RAG_TOP_K", "window_size": "argument", "reranker": "rag.toml"}
    # RAG_CONFIG names another file, which replaces ./rag.toml
    (workdir / "other.toml").write_text("[rag]\ntop_k = 9\n")
    monkeypatch.delenv("RAG_TOP_K")
    monkeypatch.setenv("RAG_CONFIG", str(workdir / "other.toml"))
    assert Config().top_k == 9 and Config().reranker == "fused"


def test_the_api_reads_the_same_layers(workdir, monkeypatch):
    from rag import RAG

    (workdir / "rag.toml").write_text('storage_dir = "from_toml"\n')
    monkeypatch.setenv("RAG_MERGE_TOP_K", "3")
    app = RAG(top_k=2)
    assert (str(app.config.storage_dir), app.config.merge_top_k, app.config.top_k) == ("from_toml", 3, 2)
    assert RAG(Config(top_k=2)).config == app.config
    assert not (workdir / "from_toml").exists()  # making an app writes nothing


def test_unknown_variables_are_warned_about_once_with_a_suggestion(workdir, monkeypatch):
    import rag.config

    monkeypatch.setattr(rag.config, "_warned", set())
    monkeypatch.setenv("RAG_TOPK", "3")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        Config()
        Config()
    messages = [str(w.message) for w in caught if issubclass(w.category, ConfigWarning)]
    assert messages == ["RAG_TOPK is not a setting (did you mean RAG_TOP_K?); ignored."]
    with pytest.raises(ConfigError, match="unknown setting 'topk'. Did you mean top_k"):
        Config(topk=3)
    (workdir / "rag.toml").write_text("chunk_sise = 3\n")
    with pytest.raises(ConfigError, match="rag.toml: unknown setting 'chunk_sise'. Did you mean chunk_size"):
        Config()


@pytest.mark.parametrize("variable, value, message", [
    ("RAG_TOP_K", "-5", "invalid setting top_k=-5 (from RAG_TOP_K): it must be a whole number of at least 1"),
    ("RAG_WINDOW_TOP_K", "0", "invalid setting window_top_k=0 (from RAG_WINDOW_TOP_K)"),
    ("RAG_EMBED_BATCH_SIZE", "0", "invalid setting embed_batch_size=0 (from RAG_EMBED_BATCH_SIZE)"),
    ("RAG_CHUNK_OVERLAP", "300", r"basic retriever \(from RAG_CHUNK_OVERLAP\): chunk_overlap \(300\) must be "
                                 r"smaller than chunk_size \(256\)"),
    ("RAG_WINDOW_SIZE", "-1", "invalid setting window_size=-1 (from RAG_WINDOW_SIZE)"),
    ("RAG_MERGE_RATIO", "7", "invalid setting merge_ratio=7.0 (from RAG_MERGE_RATIO): it must be a number from 0 to 1"),
    ("RAG_CHUNK_SIZES", "128,512,2048", "chunk_sizes=128,512,2048 (from RAG_CHUNK_SIZES): it must be chunk sizes "
                                        "from largest to smallest"),
    ("RAG_TEMPERATURE", "-1", "invalid setting temperature=-1.0"),
    ("RAG_STORAGE_DIR", "", "storage_dir (from RAG_STORAGE_DIR) is empty"),
])
def test_bad_settings_fail_at_load_naming_the_setting_and_the_fix(workdir, monkeypatch, variable, value, message):
    monkeypatch.setenv(variable, value)
    with pytest.raises(ConfigError) as caught:
        Config()
    text = str(caught.value)
    assert message.replace("\\", "") in text or __import__("re").search(message, text), text
    assert "\n" not in text and f"unset {variable}" in text


def test_bad_settings_from_a_file_or_an_argument_say_where_to_fix_them(workdir):
    (workdir / "rag.toml").write_text("merge_top_k = 0\n")
    with pytest.raises(ConfigError, match=r"merge_top_k=0 \(from rag.toml\).*fix merge_top_k in rag.toml"):
        Config()
    (workdir / "rag.toml").unlink()
    with pytest.raises(ConfigError, match="invalid setting merge_ratio=1.5: it must be a number from 0 to 1"):
        Config(merge_ratio=1.5)
    with pytest.raises(ConfigError, match="top_k=0"):
        Config().replace(top_k=0)


def test_a_storage_path_that_is_a_file_is_refused(workdir):
    (workdir / "notes.txt").write_text("mine")
    with pytest.raises(ConfigError, match="setting storage_dir='notes.txt' is a file, not a folder"):
        Config(storage_dir="notes.txt")
    assert (workdir / "notes.txt").read_text() == "mine"


def test_rag_config_toml_reads_back_to_the_same_settings(workdir, monkeypatch):
    monkeypatch.setenv("RAG_WINDOW_SIZE", "2")
    config = Config(top_k=3, chunk_sizes=(1024, 256), llm_api_key="sk-secret",
                    database_url="postgresql://me:pw@127.0.0.1/db")
    text = config.to_toml()
    assert "sk-secret" not in text and ":pw@" not in text and "me:***@" in text
    assert "top_k = 3  # from argument" in text and "window_size = 2  # from RAG_WINDOW_SIZE" in text
    (workdir / "shown.toml").write_text(text)
    again = Config.load(workdir / "shown.toml", env={})
    assert (again.top_k, again.window_size, again.chunk_sizes) == (3, 2, (1024, 256))
    assert again.llm_model == "qwen2.5-coder-1.5b"  # resolved: the provider's default, not null
    template = tomllib.loads(config.to_toml(template=True))
    assert template == {}  # everything commented out
    assert "# top_k = 4" in config.to_toml(template=True)
