"""Sentiment classification with a causal language model, by scoring label continuations.

The prediction comes from log-probabilities, never from parsing sampled text: after a few-shot
prompt ending in ``Sentiment:``, the model's log-probability of `` positive`` minus that of
`` negative`` is the score. Small models prefer one label word whatever the input, so the score
is calibrated: a one-feature logistic regression fitted on the *train* split of the in-repo set
(contextual calibration in the sense of Zhao et al., 2021, fitted rather than content-free). The
shots and the calibration sentences are never the sentences an accuracy figure is computed on.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from modelperf.models.base import Classification
from modelperf.models.embedded import cache_root

__all__ = ["PromptClassifier", "build_prompt"]

LABEL_WORDS = (" negative", " positive")
INSTRUCTION = "Decide whether each review is positive or negative.\n\n"
SHOTS = 8  # enough for the format to stick; each extra shot only lengthens the cached prefix
# Two parameters need no more than a couple of hundred examples; each costs a forward pass.
CALIBRATION_PER_LABEL = 100


def _review(text: str) -> str:
    return f"Review: {text}\nSentiment:"


def build_prompt(shots: Sequence[tuple[str, int]]) -> str:
    """The shared prefix: instruction plus labelled examples; a review is appended to it."""
    parts = [INSTRUCTION]
    for text, label in shots:
        parts.append(f"{_review(text)}{LABEL_WORDS[label]}\n\n")
    return "".join(parts)


def _shots(train: Sequence[Any]) -> list[tuple[str, int]]:
    """Alternating labels, shortest sentences first, so the prefix stays short and balanced."""
    by_label = {0: sorted((e for e in train if e.label == 0), key=lambda e: (len(e.text), e.index)),
                1: sorted((e for e in train if e.label == 1), key=lambda e: (len(e.text), e.index))}
    picked = []
    for i in range(SHOTS // 2):
        # Medium-length examples read more like real reviews than one-word ones.
        for label in (1, 0):
            pool = by_label[label]
            picked.append(pool[len(pool) // 2 + i])
    return [(e.text, e.label) for e in picked]


@dataclass(frozen=True)
class PromptClassifier:
    prefix: str
    scale: float
    offset: float
    fitted_on: str

    def margin(self, model: Any, text: str) -> float:
        """log p(positive) - log p(negative) after the prompt."""
        negative, positive = model.score_choices(self.prefix + _review(text), LABEL_WORDS)
        return float(positive - negative)

    def shared_tokens(self, model: Any) -> list[int]:
        """The tokens every scored prompt starts with: the prefix as tokenized inside a prompt (its
        last tokens may merge with what follows, so two different reviews tell where sharing ends)."""
        first: list[int] = model._bos() + model.tokenize(self.prefix + _review("a"))
        second = model._bos() + model.tokenize(self.prefix + _review("b"))
        shared = 0
        while shared < min(len(first), len(second)) and first[shared] == second[shared]:
            shared += 1
        return first[:shared]

    def classify(self, model: Any, texts: Sequence[str]) -> Classification:
        rows = []
        for text in texts:
            z = self.scale * self.margin(model, text) + self.offset
            p = 1.0 / (1.0 + math.exp(-z))
            rows.append((1.0 - p, p))
        return Classification(tuple(int(p > 0.5) for _, p in rows), tuple(rows), ("negative", "positive"))

    @classmethod
    def fitted(cls, model: Any) -> PromptClassifier:
        """Fit (or read from the cache) the calibration for this model's weights."""
        from modelperf.datasets import embedded_sentiment

        data = embedded_sentiment()
        train = data.split("train")
        shots = _shots(train)
        prefix = build_prompt(shots)
        tag = hashlib.sha256(f"{prefix}|{LABEL_WORDS}|{CALIBRATION_PER_LABEL}".encode()).hexdigest()[:12]
        cached = cache_root() / "heads" / f"llama-{model.info.weights_sha256[:16]}-{data.sha256[:16]}-{tag}.json"
        try:
            stored = json.loads(cached.read_text())
            return cls(prefix, float(stored["scale"]), float(stored["offset"]), str(stored["fitted_on"]))
        except (OSError, ValueError, KeyError):
            pass
        shot_texts = {text for text, _ in shots}
        calibration = [e for label in (0, 1)
                       for e in [e for e in train if e.label == label and e.text not in shot_texts][:CALIBRATION_PER_LABEL]]
        probe = cls(prefix, 1.0, 0.0, "")
        margins = [[probe.margin(model, e.text)] for e in calibration]
        from sklearn.linear_model import LogisticRegression

        fit = LogisticRegression(C=1.0).fit(margins, [e.label for e in calibration])
        fitted_on = f"{data.name} (train split: {len(shots)} shots, {len(calibration)} calibration sentences)"
        result = cls(prefix, float(fit.coef_[0][0]), float(fit.intercept_[0]), fitted_on)
        cached.parent.mkdir(parents=True, exist_ok=True)
        staging = cached.with_suffix(f".{os.getpid()}.tmp")
        staging.write_text(json.dumps({"scale": result.scale, "offset": result.offset, "fitted_on": fitted_on}))
        os.replace(staging, cached)
        return result
