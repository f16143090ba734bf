"""Fixed inputs of the shipped suite, written for it, so figures compare across runs and machines."""

from __future__ import annotations

from modelperf.datasets import embedded_perplexity_text

# About 16 tokens for DistilBERT's uncased WordPiece tokenizer.
SHORT_SENTENCE = "The second half drags a little, but the ending made the whole evening worth it."

# About 128 tokens: a long review, the size of a typical paragraph a service classifies.
LONG_REVIEW = (
    "I went in expecting another tired remake and came out surprised. The first act takes its time, "
    "introducing a family that runs a failing bakery on the edge of a seaside town, and the script "
    "trusts the actors to carry long scenes without music telling us what to feel. The middle section "
    "wobbles: a subplot about a rival shop goes nowhere, and one argument in a car is staged so "
    "awkwardly that the audience laughed at the wrong moment. Still, the final twenty minutes pull "
    "everything together, the photography of the harbour at dawn is lovely, and the lead performance "
    "is quietly devastating. Flawed, patient, and in the end genuinely moving."
)

BATCH_OF_32 = [f"{SHORT_SENTENCE} (review {i})" for i in range(32)]

DECODE_TOKENS = 32  # tokens generated in the decode and memory tests: long enough to time steadily


def llama_prompt_tokens(model: object, count: int) -> list[int]:
    """Exactly ``count`` tokens of the in-repo essay, repeated if the essay is too short."""
    tokens: list[int] = []
    text = embedded_perplexity_text()
    while len(tokens) < count:
        tokens += model.tokenize(text)  # type: ignore[attr-defined]
    return tokens[:count]
