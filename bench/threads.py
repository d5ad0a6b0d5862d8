"""Model threads, 1 vs 2, on this machine as it is and with two CPU burners beside it.

    .venv/bin/python bench/threads.py [--texts 256] [--embedders minilm,minilm-int8]
        [--llms qwen2.5-coder-1.5b] [--prompt-words 600] [--generate 48]

Each cell runs in a fresh process (torch's and llama.cpp's thread pools are per process).
Embedders: load with ``embed_threads=N``, embed one warm-up batch, then ``--texts`` texts of ~25
words in batches of 16; texts per wall second. LLMs (llama.cpp): load with N threads, one short
warm-up chat, then one chat with a ~``--prompt-words`` prompt (a fresh prefix, so no prompt cache)
generating ``--generate`` tokens; prompt and generated tokens per second from llama.cpp's timings.
"busy" adds two processes that spin on the CPU for the whole cell, like other jobs on a shared
2-core machine. Every cell reports wall and CPU seconds.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import ROOT, log, machine_state, write_results  # noqa: E402

EMBED_CHILD = """
import json, sys, time
from rag.config import Config
from rag.embedding import embed_texts
name, threads, n = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
config = Config(embed_model=name, embed_threads=threads)
texts = [f"Item {i}: the quarterly report lists revenue, operating costs and the outlook for the next "
         f"period, with figures for each region and a note on currency effects and supply." for i in range(n)]
embed_texts(config, texts[:16])
start, cpu = time.perf_counter(), time.process_time()
for i in range(0, n, 16):
    embed_texts(config, texts[i:i + 16])
print(json.dumps({"wall": time.perf_counter() - start, "cpu": time.process_time() - cpu, "rate": n}))
"""

LLM_CHILD = """
import json, sys, time
from pathlib import Path
from rag.config import Config
from rag.generation.catalogue import resolve_gguf
from rag.generation.llamacpp_engine import get_engine
name, threads, words, generate = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
gen, _, batch = threads.partition("/")
config = Config()
engine = get_engine(resolve_gguf(name, Path(config.model_cache_dir), fetch=False, progress=False),
                    threads=int(gen), batch_threads=int(batch or gen), context_window=4096)
engine.chat([{"role": "user", "content": "Say hello."}], max_tokens=4)
text = " ".join(f"In quarter {i % 9} region {i % 13} sold {i * 7 % 101} units." for i in range(words // 8))
messages = [{"role": "user", "content": f"{time.time()} {text}\\nSummarise the sales above in detail."}]
start, cpu = time.perf_counter(), time.process_time()
reply = engine.chat(messages, max_tokens=generate)
t = reply.get("timings", {})
print(json.dumps({"wall": time.perf_counter() - start, "cpu": time.process_time() - cpu,
                  "prompt_tok_s": t.get("prompt_per_second"), "gen_tok_s": t.get("predicted_per_second"),
                  "prompt_n": t.get("prompt_n"), "gen_n": t.get("predicted_n")}))
"""


def burn() -> None:
    while True:
        pass


def cell(child: str, *args: object) -> dict:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
    done = subprocess.run([sys.executable, "-c", child, *map(str, args)], env=env,
                          capture_output=True, text=True, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--texts", type=int, default=256)
    parser.add_argument("--embedders", default="minilm,minilm-int8", help="comma-separated; '' for none")
    parser.add_argument("--llms", default="qwen2.5-coder-1.5b", help="catalogue names or GGUF paths; '' for none")
    parser.add_argument("--prompt-words", type=int, default=600)
    parser.add_argument("--generate", type=int, default=48)
    parser.add_argument("--llm-threads", default="1,2,1/2",
                        help="LLM cells: N, or GEN/PROMPT for separate generation and prompt threads")
    args = parser.parse_args()
    cells = [("embedder", name, EMBED_CHILD, threads, (args.texts,))
             for name in filter(None, args.embedders.split(",")) for threads in ("1", "2")]
    cells += [("llm", name, LLM_CHILD, threads, (args.prompt_words, args.generate))
              for name in filter(None, args.llms.split(",")) for threads in args.llm_threads.split(",")]
    rows = []
    for load in ("as is", "busy"):
        burners = [multiprocessing.Process(target=burn, daemon=True) for _ in range(2 if load == "busy" else 0)]
        for b in burners:
            b.start()
        try:
            for part, name, child, threads, extra in cells:
                log(f"{load}: {name}, {threads} thread(s)")
                r = cell(child, name, threads, *extra)
                rows.append({"load": load, "part": part, "model": name, "threads": threads,
                             "wall_s": round(r["wall"], 2), "cpu_s": round(r["cpu"], 2),
                             "texts_per_s": round(r["rate"] / r["wall"], 1) if "rate" in r else None,
                             "prompt_tok_s": _round(r.get("prompt_tok_s")), "gen_tok_s": _round(r.get("gen_tok_s"))})
        finally:
            for b in burners:
                b.terminate()
    print(f"\nload before: {machine_state()['loadavg']}; embedders: {args.texts} texts; LLMs: "
          f"~{args.prompt_words}-word prompt, {args.generate} tokens\n")
    print("machine | model | threads | wall s | CPU s | texts / s | prompt tok/s | gen tok/s")
    print("--- | --- | --- | --- | --- | --- | --- | ---")
    for r in rows:
        print(" | ".join(str(r[k] if r[k] is not None else "") for k in
                         ("load", "model", "threads", "wall_s", "cpu_s", "texts_per_s", "prompt_tok_s", "gen_tok_s")))
    write_results(ROOT / "bench" / "results" / "threads.json", {"machine": machine_state(), "rows": rows})


def _round(value: float | None) -> float | None:
    return round(value, 1) if value is not None else None


if __name__ == "__main__":
    main()
