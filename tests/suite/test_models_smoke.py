"""Each real model loads and every interface method gives a sensible answer (needs --benchmark)."""

from __future__ import annotations

import math

import pytest

from modelperf import UnsupportedOperation

from .inputs import LONG_REVIEW, SHORT_SENTENCE

SENTENCES = ["An absolute delight from start to finish.", "A tedious, joyless slog that I regret watching.",
             "Wonderful acting and a clever script.", "The worst meal I have had in years."]


def test_distilbert_classifies_and_predictions_vary(distilbert):
    result = distilbert.classify(SENTENCES)
    assert len(result.labels) == len(SENTENCES)
    assert set(result.labels) == {0, 1}, "a classifier that answers one label for everything is broken"
    for row in result.probabilities:
        assert math.isclose(sum(row), 1.0, rel_tol=1e-5)
    assert distilbert.count_tokens(SHORT_SENTENCE) < distilbert.count_tokens(LONG_REVIEW)


def test_distilbert_reports_what_it_cannot_do(distilbert):
    with pytest.raises(UnsupportedOperation, match="encoder"):
        distilbert.generate("Hello", 4)


def test_distilbert_info_describes_the_checkpoint(distilbert):
    info = distilbert.info
    assert info.layers == 6 and info.parameters > 1_000_000 and len(info.weights_sha256) == 64
    assert info.threads >= 1 and "torch" in info.library_versions


def test_llama_generation_is_greedy_exact_and_deterministic(llama):
    first = llama.generate("The three primary colours are", 12)
    second = llama.generate("The three primary colours are", 12)
    assert len(first.tokens) == 12
    assert first.tokens == second.tokens and first.text == second.text


def test_llama_scores_choices_by_log_probability(llama):
    paris, banana = llama.score_choices("The capital of France is", [" Paris", " banana"])
    assert paris > banana and paris < 0


def test_llama_label_scores_vary_with_the_input(llama):
    """Without logits_all=True llama-cpp-python would return the same prediction for every text."""
    result = llama.classify(SENTENCES)
    assert set(result.labels) == {0, 1}
    assert len({round(row[1], 6) for row in result.probabilities}) == len(SENTENCES)


def test_llama_perplexity_is_finite_and_above_one(llama):
    value = llama.perplexity(LONG_REVIEW * 4, window=128)
    assert math.isfinite(value.value) and value.value > 1.0
    assert value.scored_tokens == value.chunks * (128 - 128 // 2 - 1)


def test_llama_perplexity_windows_match_a_direct_computation(llama):
    """llama-perplexity's windowing, recomputed independently: one fresh context per scored token."""
    import numpy as np

    window = 16
    text = ("A small harbour town keeps its old cinema alive with volunteers, late shows and a lot of patience. "
            "On winter nights the projectionist walks home along the sea wall, humming the score of the last film.")
    tokens = llama.tokenize(text)
    assert len(tokens) >= 2 * window, "the text must cover at least two windows"
    bos = llama._bos()
    nll, count = 0.0, 0
    for chunk in range(len(tokens) // window):
        window_tokens = tokens[chunk * window:(chunk + 1) * window]
        if bos:
            window_tokens = bos + window_tokens[1:]
        for position in range(window // 2, window - 1):
            llama.llm.reset()  # straight on llama_cpp: its context keeps a logits row per position
            llama.llm.eval(window_tokens[: position + 1])
            logits = np.asarray(llama.llm.scores[position], dtype=np.float64)
            log_probs = logits - (logits.max() + np.log(np.exp(logits - logits.max()).sum()))
            nll -= log_probs[window_tokens[position + 1]]
            count += 1
    expected = math.exp(nll / count)
    result = llama.perplexity(text, window=window)
    assert result.scored_tokens == count
    assert result.value == pytest.approx(expected, rel=1e-3)
