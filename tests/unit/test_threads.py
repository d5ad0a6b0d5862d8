"""Thread settings: a number is used as given; 0 is every core of the machine, whatever its load, so
that a run repeats (llama.cpp's answers depend on the number of generation threads)."""

import pytest

from rag import threads
from rag.config import Config
from rag.errors import ConfigError


@pytest.fixture
def machine(monkeypatch):
    def set_machine(cores: int, load: float) -> None:
        monkeypatch.setattr(threads, "cores", lambda: cores)
        monkeypatch.setattr(threads.os, "getloadavg", lambda: (load, load, load))

    return set_machine


def test_a_set_number_is_used_as_given(machine):
    machine(cores=2, load=9.0)
    assert threads.model_threads(2) == 2 and threads.prompt_threads(1) == 1


def test_auto_is_every_core_whatever_the_load(machine):
    machine(cores=2, load=0.3)
    quiet = (threads.model_threads(0), threads.prompt_threads(0))
    machine(cores=2, load=7.5)
    assert (threads.model_threads(0), threads.prompt_threads(0)) == quiet == (2, 2)


def test_auto_is_capped_on_big_machines(machine):
    machine(cores=64, load=0.0)
    assert threads.model_threads(0) == threads.prompt_threads(0) == threads.AUTO_CAP


@pytest.mark.parametrize("name", ["embed_threads", "llm_threads", "llm_prompt_threads"])
def test_negative_thread_counts_are_refused_in_one_line(name):
    with pytest.raises(ConfigError, match=name):
        Config(**{name: -1}).validate()
