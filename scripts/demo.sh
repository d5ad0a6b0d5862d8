#!/usr/bin/env bash
# The main job on the local defaults: ingest the sample PDFs, answer the eval questions with
# each retriever (answers with sources; a retriever clearly worse than the leader stops early),
# score them with the RAG triad, show the comparison.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
.venv/bin/rag ingest data/
.venv/bin/rag eval --questions "${QUESTIONS:-eval_questions/sample.jsonl}" ${LIMIT:+--limit "$LIMIT"} --show-answers \
  -r basic -r sentence_window -r auto_merging --early-stop
.venv/bin/rag leaderboard
