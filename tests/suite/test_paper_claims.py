"""DistilBERT's architectural claims (Sanh et al., 2019), checked offline with random weights.

The paper says DistilBERT has about 40 % fewer parameters than BERT-base, 6 layers instead of 12,
and runs about 60 % faster. These follow from the architecture, not from trained weights, so we
build both at their published base configurations. The parameter and layer claims are asserted;
the speed ratio depends on this machine and is reported, not asserted.
"""

from __future__ import annotations

import statistics
import time

import pytest

from modelperf.pytest.session import SKIP_WITHOUT_FLAG

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

CLAIMED_PARAMETER_REDUCTION = 0.40
CLAIMED_SPEEDUP = 0.60  # "60 % faster": BERT time / DistilBERT time = 1.6
SEQUENCE = 128
ROUNDS = 15


def _base_models(device: str) -> tuple[object, object]:
    with torch.device(device):
        torch.manual_seed(0)
        bert = transformers.BertModel(transformers.BertConfig())
        distil = transformers.DistilBertModel(transformers.DistilBertConfig())
    return bert.eval(), distil.eval()


def test_distilbert_has_about_40_percent_fewer_parameters_and_half_the_layers():
    bert, distil = _base_models("meta")  # counting needs shapes only, not memory
    bert_params = sum(p.numel() for p in bert.parameters())
    distil_params = sum(p.numel() for p in distil.parameters())
    reduction = 1 - distil_params / bert_params
    assert reduction == pytest.approx(CLAIMED_PARAMETER_REDUCTION, abs=0.05), (bert_params, distil_params)
    assert bert.config.num_hidden_layers == 12 and distil.config.n_layers == 6


def test_distilbert_speed_claim_measured_here(request, modelperf_summary):
    if not request.config.getoption("benchmark"):
        pytest.skip(SKIP_WITHOUT_FLAG)
    bert, distil = _base_models("cpu")
    ids = torch.randint(1000, 20000, (1, SEQUENCE))
    times: dict[str, list[float]] = {"bert": [], "distil": []}
    with torch.inference_mode():
        for model in (bert, distil):
            model(input_ids=ids)  # warm-up
        for _ in range(ROUNDS):  # interleaved, so drift hits both alike
            for name, model in (("bert", bert), ("distil", distil)):
                start = time.perf_counter()
                model(input_ids=ids)
                times[name].append(time.perf_counter() - start)
    bert_ms, distil_ms = (statistics.median(times[k]) * 1e3 for k in ("bert", "distil"))
    bert_params = sum(p.numel() for p in bert.parameters())
    distil_params = sum(p.numel() for p in distil.parameters())
    section = "modelperf: DistilBERT paper claims (random weights, base configs)"
    modelperf_summary(section, f"parameters: BERT-base {bert_params / 1e6:.1f} M, DistilBERT {distil_params / 1e6:.1f} M"
                      f" -> {1 - distil_params / bert_params:.1%} fewer (claimed about {CLAIMED_PARAMETER_REDUCTION:.0%})")
    modelperf_summary(section, f"layers: {bert.config.num_hidden_layers} vs {distil.config.n_layers} (claimed 12 vs 6)")
    modelperf_summary(section, f"forward pass, batch 1 x {SEQUENCE} tokens, {torch.get_num_threads()} threads: BERT "
                      f"{bert_ms:.1f} ms, DistilBERT {distil_ms:.1f} ms -> {bert_ms / distil_ms - 1:.0%} faster "
                      f"(claimed about {CLAIMED_SPEEDUP:.0%})")
    assert bert_ms > 0 and distil_ms > 0
