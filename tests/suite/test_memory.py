"""Peak memory of loading and running both models (run with --benchmark).

The figure asserted is memray's peak (bytes allocated, native included, mapped files counted
whole); the RSS growth of the same region is reported beside it. Load tests create a new
instance inside the tracked test body, so the load is never hidden in a session fixture.
"""

from __future__ import annotations

import pytest

from .inputs import BATCH_OF_32, DECODE_TOKENS, SHORT_SENTENCE, llama_prompt_tokens

KV_CONTEXTS = (1024, 2048, 4096)  # below ~1k tokens a load-time transient, not the cache, sets the peak
# A small batch keeps llama.cpp's attention scratch (n_ctx x n_batch x heads floats) from growing
# with the context alongside the KV cache, so the slope measures the cache itself.
KV_BATCH = 16
F16_BYTES = 2  # llama.cpp's default KV-cache type is f16


@pytest.mark.peak_memory(role="{name}:memory")
@pytest.mark.parametrize("name", ["distilbert", "llama"])
def test_load_memory(load_model, name):
    load_model(name)


@pytest.mark.peak_memory
def test_distilbert_inference_batch1_memory(distilbert):
    distilbert.classify([SHORT_SENTENCE])


@pytest.mark.peak_memory
def test_distilbert_inference_batch32_memory(distilbert):
    distilbert.classify(BATCH_OF_32)


@pytest.mark.peak_memory
def test_llama_prefill512_and_generate_memory(llama):
    """Serving calls on the session's context: its per-position logits buffer (n_ctx x vocab floats) was
    allocated at load, outside this figure; the serving calls compute the last position's logits only."""
    llama.prefill(llama_prompt_tokens(llama, 512))
    llama.decode(DECODE_TOKENS)


def test_llama_kv_cache_growth_matches_architecture(load_model, tmp_path, modelperf_summary):
    """KV-cache bytes per token, measured across context sizes, against 2 x layers x kv-heads x head-dim x 2 B."""
    from modelperf.measure.kv_cache import kv_cache_bytes_per_token, kv_growth_per_token
    from modelperf.measure.memory import MemoryTracker
    from modelperf.units import format_size

    points, info = [], None
    for context in KV_CONTEXTS:
        with MemoryTracker(tmp_path, native=False) as tracker:
            info = load_model("llama", context=context, logits_all=False, n_batch=KV_BATCH, n_ubatch=KV_BATCH).info
        points.append((context, tracker.result.memray_peak_bytes))
    details = info.details
    predicted = kv_cache_bytes_per_token(info.layers, details["kv_heads"], details["head_dim"], F16_BYTES)
    measured = kv_growth_per_token(points)
    modelperf_summary("modelperf: Llama KV cache", (
        f"{info.architecture}: measured {format_size(measured)}/token (memray peak over contexts "
        f"{', '.join(str(c) for c in KV_CONTEXTS)}), architecture predicts {format_size(predicted)}/token "
        f"(2 x {info.layers} layers x {details['kv_heads']} kv-heads x {details['head_dim']} x {F16_BYTES} B)"))
    assert measured == pytest.approx(predicted, rel=0.10)
