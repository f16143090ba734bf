"""Accuracy of both models on the same sentiment data, and Llama's perplexity (run with --benchmark)."""

from __future__ import annotations

import pytest

from modelperf.datasets import embedded_perplexity_text

PERPLEXITY_WINDOW = 512  # llama-perplexity's default context, so the figure compares with llama.cpp's


@pytest.mark.accuracy(role="distilbert:accuracy")
def test_distilbert_sentiment_accuracy(distilbert, sentiment_data, accuracy):
    result = accuracy.evaluate(distilbert, sentiment_data)
    assert len(set(result.predictions)) > 1, "constant predictions: the classifier is not working"


@pytest.mark.accuracy(role="llama:accuracy")
def test_llama_sentiment_accuracy(llama, sentiment_data, accuracy):
    result = accuracy.evaluate(llama, sentiment_data)
    assert len(set(result.predictions)) > 1, "constant predictions: are logits kept for every position?"


def test_llama_perplexity(llama, accuracy):
    result = llama.perplexity(embedded_perplexity_text(), window=PERPLEXITY_WINDOW)
    accuracy.record_perplexity(llama, result)
