"""Sentence-transformers models (mean pooling) on ONNX Runtime, int8-quantised.

The ONNX graph is exported locally from the bundled torch weights on first use and cached under
``model_cache_dir/embeddings/onnx/``; nothing is downloaded. Dynamic int8 quantisation makes
the matrix products cheaper on CPU at a small cost in precision (measured in bench/retrieval_modes.py).
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any

ONNX_OPSET = 17


def cached_onnx(source: str, cache_dir: Path) -> Path:
    """The int8 ONNX file of the model folder ``source``, exported once."""
    key = hashlib.sha256(f"{Path(source).resolve()}|{ONNX_OPSET}|int8".encode()).hexdigest()[:16]
    target = cache_dir / "embeddings" / "onnx" / f"{Path(source).name}-{key}-int8.onnx"
    if not target.is_file():
        target.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=target.parent) as tmp:
            plain = Path(tmp) / "model.onnx"
            _export(source, plain)
            quantised = Path(tmp) / "model-int8.onnx"
            import logging

            from onnxruntime.quantization import QuantType, quantize_dynamic

            root = logging.getLogger()
            level = root.level
            root.setLevel(logging.ERROR)  # its advice to pre-process is for image models
            try:
                quantize_dynamic(str(plain), str(quantised), weight_type=QuantType.QInt8)
            finally:
                root.setLevel(level)
            os.replace(quantised, target)  # atomic: a concurrent first use finds a whole file or none
    return target


def _export(source: str, path: Path) -> None:
    import warnings

    import torch
    from transformers import AutoModel, AutoTokenizer

    class LastHidden(torch.nn.Module):
        def __init__(self, model):
            super().__init__()
            self.model = model

        def forward(self, input_ids, attention_mask, token_type_ids):
            return self.model(input_ids=input_ids, attention_mask=attention_mask,
                              token_type_ids=token_type_ids).last_hidden_state

    tokenizer = AutoTokenizer.from_pretrained(source)
    sample = tokenizer(["an example", "a longer example sentence"], padding=True, return_tensors="pt")
    names = ["input_ids", "attention_mask", "token_type_ids"]
    axes = {n: {0: "batch", 1: "tokens"} for n in [*names, "last_hidden_state"]}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the TorchScript exporter's deprecation and tracer notes
        torch.onnx.export(LastHidden(AutoModel.from_pretrained(source).eval()), tuple(sample[n] for n in names),
                          str(path), input_names=names, output_names=["last_hidden_state"], dynamic_axes=axes,
                          opset_version=ONNX_OPSET, dynamo=False)


class OnnxEncoder:
    """``encode(texts, is_query)`` -> normalised mean-pooled rows, like sentence-transformers."""

    def __init__(self, source: str, cache_dir: Path, threads: int):
        import onnxruntime
        from tokenizers import Tokenizer  # the fast tokenizer alone: no torch or transformers at query time

        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        self.session = onnxruntime.InferenceSession(str(cached_onnx(source, cache_dir)), options,
                                                    providers=["CPUExecutionProvider"])
        config = Path(source) / "sentence_bert_config.json"
        max_length = json.loads(config.read_text()).get("max_seq_length", 256) if config.is_file() else 256
        self.tokenizer = Tokenizer.from_file(str(Path(source) / "tokenizer.json"))
        self.tokenizer.enable_truncation(max_length)
        pad = self.tokenizer.padding or {}
        self.tokenizer.enable_padding(pad_id=pad.get("pad_id", 0), pad_token=pad.get("pad_token", "[PAD]"))

    def __call__(self, texts: list[str], is_query: bool = False) -> Any:
        import numpy as np

        if not texts:
            return np.zeros((0, 0), dtype="float32")
        encoded = self.tokenizer.encode_batch(list(texts))
        batch = {"input_ids": np.array([e.ids for e in encoded], dtype="int64"),
                 "attention_mask": np.array([e.attention_mask for e in encoded], dtype="int64"),
                 "token_type_ids": np.array([e.type_ids for e in encoded], dtype="int64")}
        feed = {i.name: batch[i.name] for i in self.session.get_inputs()}
        hidden = self.session.run(None, feed)[0]
        mask = batch["attention_mask"][..., None].astype("float32")
        return (hidden * mask).sum(axis=1) / np.maximum(mask.sum(axis=1), 1e-9)
