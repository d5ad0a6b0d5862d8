"""Thread settings: a number is used as given; 0 picks by the machine's load, once per process."""

import pytest

from rag import threads
from rag.config import Config
from rag.errors import ConfigError


@pytest.fixture
def machine(monkeypatch):
    def set_machine(cores: int, load: float) -> None:
        monkeypatch.setattr(threads, "cores", lambda: cores)
        monkeypatch.setattr(threads.os, "getloadavg", lambda: (load, load, load))
        threads._quiet_threads.cache_clear()

    yield set_machine
    threads._quiet_threads.cache_clear()


def test_a_set_number_is_used_as_given(machine):
    machine(cores=2, load=9.0)
    assert threads.model_threads(2) == 2 and threads.prompt_threads(1) == 1


def test_auto_uses_every_core_on_a_quiet_machine_and_one_on_a_busy_one(machine):
    machine(cores=2, load=0.3)
    assert threads.model_threads(0) == 2
    machine(cores=2, load=2.5)
    assert threads.model_threads(0) == 1
    assert threads.prompt_threads(0) == 2  # prompt processing gains from every core even when busy


def test_auto_is_decided_once_so_the_generator_and_judge_share_one_engine(machine):
    machine(cores=2, load=0.1)
    first = threads.model_threads(0)
    threads.os.getloadavg = lambda: (5.0, 5.0, 5.0)  # the load rises after the first model loaded
    assert threads.model_threads(0) == first == 2


def test_auto_is_capped_on_big_machines(machine):
    machine(cores=64, load=0.0)
    assert threads.model_threads(0) == threads.prompt_threads(0) == threads.AUTO_CAP


@pytest.mark.parametrize("name", ["embed_threads", "llm_threads", "llm_prompt_threads"])
def test_negative_thread_counts_are_refused_in_one_line(name):
    with pytest.raises(ConfigError, match=name):
        Config(**{name: -1}).validate()
