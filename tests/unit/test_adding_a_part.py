"""Adding a part is one registration by name (README, "Architecture"): an in-process judge, registered
here as a plugin file's ``PLUGIN = Judge(...)`` line would register it, is then used by its name
through the library API and the command line, with nothing else changed."""

import json

from rag.evaluation.judges import JUDGES, Judge


class KeywordJudge:
    """Scores 1 when the answer or context shares a word with what it is checked against, else 0."""

    def _overlap(self, a: str, b: str) -> tuple[float, str]:
        shared = set(a.lower().split()) & set(b.lower().split())
        return (1.0, f"shares {sorted(shared)[0]!r}") if shared else (0.0, "no shared word")

    def context_relevance(self, question: str, context: str) -> tuple[float, str]:
        return self._overlap(question, context)

    def groundedness(self, contexts: list[str], answer: str) -> tuple[float, str]:
        return self._overlap(" ".join(contexts), answer)

    def answer_relevance(self, question: str, answer: str) -> tuple[float, str]:
        return self._overlap(question, answer)


def test_a_judge_registered_by_name_is_used_by_the_api_and_the_cli(fake_config, tmp_path, capsys):
    from rag import RAG
    from rag.cli import main

    rows = tmp_path / "rows.jsonl"
    rows.write_text(json.dumps({"context": "leave is ten days", "answer": "ten days", "label": 1}) + "\n"
                    + json.dumps({"context": "leave is ten days", "answer": "a blue car", "label": 0}) + "\n")
    JUDGES.register("keyword_test", Judge(name="keyword_test", help="shared words",
                                          make=lambda config, embed: KeywordJudge()))
    try:
        done = RAG(fake_config).judge_file("groundedness", rows, judge="keyword_test", progress=False)
        assert done["judge"] == "keyword_test" and [s["score"] for s in done["scores"]] == [1.0, 0.0]
        assert done["agreement"]["auc"] == 1.0

        code = main(["judge", "groundedness", str(rows), "--judge", "keyword_test", "--json",
                     "--storage-dir", str(fake_config.storage_dir)])
        assert code == 0 and json.loads(capsys.readouterr().out)["agreement"]["balanced_accuracy"] == 1.0
    finally:
        JUDGES.unregister("keyword_test")
    assert "keyword_test" not in JUDGES
