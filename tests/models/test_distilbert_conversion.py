"""The embedded DistilBERT is the MiniLM BERT checkpoint, re-expressed: same hidden states."""

from __future__ import annotations

import pytest

from modelperf.models.base import ModelUnavailable

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")


@pytest.fixture(scope="module")
def source_dir():
    from modelperf.models.embedded import minilm_source_dir

    try:
        return minilm_source_dir()
    except ModelUnavailable as exc:
        pytest.skip(str(exc))


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    """One fresh cache for the module: the first test converts into it, the second finds the conversion there."""
    folder = tmp_path_factory.mktemp("cache")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MODELPERF_CACHE", str(folder))
        yield folder


def test_converted_distilbert_matches_bert_hidden_states(source_dir, cache):
    from modelperf.models.distilbert import embedded_checkpoint

    converted = embedded_checkpoint()
    assert converted.parent == cache
    bert = transformers.BertModel.from_pretrained(str(source_dir), local_files_only=True).eval()
    distil = transformers.DistilBertModel.from_pretrained(str(converted), local_files_only=True).eval()
    tokenizer = transformers.AutoTokenizer.from_pretrained(str(converted), local_files_only=True)
    batch = tokenizer(["A short one.", "A much longer sentence, so that padding and the mask matter here."],
                      padding=True, return_tensors="pt")
    with torch.inference_mode():
        expected = bert(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).last_hidden_state
        actual = distil(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).last_hidden_state
    mask = batch["attention_mask"].bool()
    assert torch.allclose(actual[mask], expected[mask], atol=1e-4), (actual[mask] - expected[mask]).abs().max()


def test_conversion_is_cached_by_source_hash(source_dir, cache):
    from modelperf.models.distilbert import embedded_checkpoint

    first = embedded_checkpoint()  # converted by the test above, or here when this test runs alone
    assert first.parent == cache
    stamp = (first / "model.safetensors").stat().st_mtime_ns
    assert embedded_checkpoint() == first
    assert (first / "model.safetensors").stat().st_mtime_ns == stamp


# Run in a fresh interpreter: this process has imported what other tests needed.
_IMPORTS_AFTER_PRELOAD = """
import importlib, json, sys
from modelperf.models.distilbert import LOADING_MODULES, load_distilbert
for name in ("torch", *LOADING_MODULES):
    try:
        importlib.import_module(name)
    except ImportError:
        pass
before = set(sys.modules)
load_distilbert(None, 1)
print(json.dumps(sorted(set(sys.modules) - before)))
"""


def test_a_fork_server_that_imports_the_loading_modules_leaves_a_model_load_no_library_to_import(source_dir) -> None:
    # What --against's workers and the DistilBERT service's servers are forked from (LOADING_MODULES): if a
    # transformers release imports more lazily, each forked process pays it again (2 s of CPU before).
    import json
    import subprocess
    import sys

    # A first load converts the checkpoint and fits its head where this session's cache lacks them (that
    # imports scikit-learn and scipy once, as a first run anywhere does); the second is a fork's.
    for _ in range(2):
        done = subprocess.run([sys.executable, "-c", _IMPORTS_AFTER_PRELOAD], capture_output=True, text=True,
                              check=True)
    imported = json.loads(done.stdout.splitlines()[-1])
    # After a bare `import transformers`: about 1400 modules. After the preload, a few lazy aliases remain.
    heavy = [name for name in imported if name.split(".")[0] in {"torch", "sympy", "scipy", "tokenizers", "safetensors",
                                                                  "numpy"}]
    assert heavy == [] and len(imported) < 50, f"loading the embedded DistilBERT imported {len(imported)} modules: " \
                                               f"{imported[:10]}"
