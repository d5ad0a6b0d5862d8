"""How fast llama.cpp reads a prompt here, by setting and by quantisation: what bounds the first token.

    .venv/bin/python bench/prompt_speed.py [--model qwen2.5-coder-1.5b] [--threads 2] [--words 700]
        [--requantise Q4_0,Q8_0]

Each cell runs in a fresh process: load the GGUF with ``--threads`` threads, then read a
``--words`` prompt twice (no prompt cache) and generate 32 tokens; prompt and generated tokens
per second from llama.cpp's timings, best of the two. Cells: flash attention auto / on / off, and
micro-batch sizes 128, 512 (llama.cpp's default), 2,048. ``--requantise`` adds the same weights
converted to other llama.cpp types (every Q4_K/Q5_K/Q6_K matrix but the embeddings and the output
layer: dequantised, then quantised again by the ``gguf`` package, which it then needs:
``pip install gguf``), written to a temporary folder and deleted afterwards.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import ROOT, log, machine_state, write_results  # noqa: E402

CHILD = """
import json, sys, time
import xllamacpp
path, threads, flash, ubatch, words = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
params = xllamacpp.CommonParams()
params.model.path = path
params.n_ctx, params.n_parallel, params.cache_prompt, params.verbosity = 4096, 1, False, -1
params.cpuparams.n_threads = params.cpuparams_batch.n_threads = threads
params.n_ubatch, params.n_batch = ubatch, max(2048, ubatch)
if flash != -1:
    params.flash_attn_type = xllamacpp.llama_flash_attn_type(flash)
params.hostnames = [sys.argv[6]]
server = xllamacpp.Server(params)
text = " ".join(f"In quarter {i % 9} region {i % 13} sold {i * 7 % 101} units." for i in range(words // 8))
best = None
for run in range(2):
    body = {"messages": [{"role": "user", "content": f"Run {run}. {text}\\nSummarise the sales above."}],
            "max_tokens": 32, "temperature": 0}
    t = server.handle_chat_completions(body)["timings"]
    if best is None or t["prompt_per_second"] > best["prompt_per_second"]:
        best = t
print(json.dumps({"prompt_n": best["prompt_n"], "prompt_tok_s": best["prompt_per_second"],
                  "gen_tok_s": best["predicted_per_second"]}))
"""


def requantise(source: Path, target: Path, kind: str) -> None:
    """Write ``source`` with its K-quant matrices converted to ``kind`` (e.g. Q4_0, Q8_0)."""
    import numpy as np
    from gguf import GGMLQuantizationType as T
    from gguf import GGUFReader, GGUFValueType, GGUFWriter
    from gguf.quants import dequantize, quantize

    reader = GGUFReader(source)
    writer = GGUFWriter(target, arch=reader.fields["general.architecture"].contents())
    for name, field in reader.fields.items():
        if name.startswith("GGUF.") or name == "general.architecture":
            continue
        value_type = field.types[0]
        writer.add_key_value(name, field.contents(), value_type,
                             sub_type=field.types[-1] if value_type == GGUFValueType.ARRAY else None)
    new_type = T[kind]
    for tensor in reader.tensors:
        if tensor.tensor_type in (T.Q4_K, T.Q5_K, T.Q6_K) and tensor.name not in ("token_embd.weight", "output.weight"):
            shape = tuple(int(x) for x in reversed(tensor.shape.tolist()))
            weights = dequantize(tensor.data, tensor.tensor_type).reshape(shape).astype(np.float32)
            writer.add_tensor(tensor.name, quantize(weights, new_type), raw_dtype=new_type)
        else:
            writer.add_tensor(tensor.name, np.asarray(tensor.data), raw_dtype=tensor.tensor_type)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()


def cell(path: Path, threads: int, flash: int, ubatch: int, words: int, socket: Path) -> dict:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run([sys.executable, "-c", CHILD, str(path), str(threads), str(flash), str(ubatch),
                           str(words), str(socket)], env=env, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"cell {path.name} flash={flash} ubatch={ubatch} failed: {done.stderr.strip()[-2000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    from rag.config import Config
    from rag.generation.catalogue import resolve_gguf

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default="qwen2.5-coder-1.5b", help="catalogue name or GGUF path")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--words", type=int, default=700)
    parser.add_argument("--requantise", default="", help="comma-separated llama.cpp types, e.g. Q4_0,Q8_0")
    args = parser.parse_args()
    source = resolve_gguf(args.model, Path(Config().model_cache_dir), fetch=False, progress=False)
    with tempfile.TemporaryDirectory(prefix="rag-prompt-speed-") as folder:
        work = Path(folder)
        cells = [("file as is", source, flash, 512) for flash in (-1, 1, 0)]
        cells += [("file as is", source, -1, ubatch) for ubatch in (128, 2048)]
        for kind in filter(None, args.requantise.split(",")):
            log(f"requantising to {kind}")
            target = work / f"{kind}.gguf"
            requantise(source, target, kind)
            cells.append((f"requantised {kind}", target, -1, 512))
        rows = []
        for number, (label, path, flash, ubatch) in enumerate(cells):
            log(f"{label}, flash attention {flash}, micro-batch {ubatch}")
            r = cell(Path(path), args.threads, flash, ubatch, args.words, work / f"cell-{number}.sock")
            rows.append({"weights": label, "flash_attn": {-1: "auto", 0: "off", 1: "on"}[flash], "ubatch": ubatch,
                         "prompt_n": r["prompt_n"], "prompt_tok_s": round(r["prompt_tok_s"], 1),
                         "gen_tok_s": round(r["gen_tok_s"], 1)})
    print(f"\n{Path(source).name}, {args.threads} threads, load average {machine_state()['loadavg']}\n")
    print("weights | flash attention | micro-batch | prompt tokens | prompt tok/s | gen tok/s")
    print("--- | --- | --- | --- | --- | ---")
    for r in rows:
        print(" | ".join(str(r[k]) for k in ("weights", "flash_attn", "ubatch", "prompt_n", "prompt_tok_s", "gen_tok_s")))
    write_results(ROOT / "bench" / "results" / "prompt_speed.json", {"machine": machine_state(), "rows": rows})


if __name__ == "__main__":
    main()
