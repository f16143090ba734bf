"""Per-token latency of streamed Llama generation, as serving teams state their targets (run with --benchmark).

Time to first token (TTFT) and the time between later tokens (inter-token latency) are reported at
p50, p90 and p99 over several requests, each a fresh 64-token prompt and 32 greedy tokens. The
gated figures are the latency tests' (``test_llama_time_to_first_token`` and
``test_llama_inter_token_latency``, p90); this test reports the whole distribution.
"""

from __future__ import annotations

import numpy as np

from modelperf.units import format_duration

from .inputs import DECODE_TOKENS, llama_prompt_tokens

REQUESTS = 12  # about 2 s at SmolLM2's speed on one core; enough rounds for a p90, few for a p99
QUANTILES = (50, 90, 99)


def test_llama_streaming_token_latency(llama, modelperf_summary):
    prompt = llama_prompt_tokens(llama, 64)
    first = llama.timed_generate(prompt, DECODE_TOKENS)  # warm-up, and the reference tokens
    runs = [llama.timed_generate(prompt, DECODE_TOKENS) for _ in range(REQUESTS)]
    assert all(run.tokens == first.tokens for run in runs), "greedy generation must not vary between requests"
    ttft = np.array([run.time_to_first_token_s for run in runs])
    gaps = np.concatenate([run.inter_token_s for run in runs])
    assert gaps.size == REQUESTS * (DECODE_TOKENS - 1) and np.all(gaps > 0) and np.all(ttft > 0)
    section = f"modelperf: Llama per-token latency ({llama.info.threads} thread(s), {REQUESTS} requests)"
    for name, values in (("time to first token (64-token prompt)", ttft), ("inter-token latency", gaps)):
        cells = ", ".join(f"p{q} {format_duration(float(np.percentile(values, q)))}" for q in QUANTILES)
        modelperf_summary(section, f"{name}: {cells} (n={values.size})")
    modelperf_summary(section, f"decode rate at the median gap: {1 / float(np.median(gaps)):.1f} tokens/s")
