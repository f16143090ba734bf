"""The real embedded Llama: serving calls without per-position logits, scoring and perplexity with them.

These load the embedded SmolLM2 GGUF (about a second) and skip, with the reason, where it or
llama-cpp-python is not installed. The BOS test makes its own GGUF: a copy of the embedded one
whose tokenizer adds BOS, as Llama 2's does, and checks the plugin's perplexity against a
computation written here from llama.cpp's description, straight on ``llama_cpp``.
"""

from __future__ import annotations

import shutil
import struct
from pathlib import Path

import numpy as np
import pytest

from modelperf.datasets import embedded_perplexity_text
from modelperf.models.base import ModelUnavailable
from modelperf.models.repack import cpu_has_amx, model_params, repack_choice, repack_fields

llama_cpp = pytest.importorskip("llama_cpp")

WINDOW = 64  # small windows keep each perplexity to a couple of hundred tokens (about a second)
TEXT_TOKENS = 2 * WINDOW + 20  # the two whole windows llama-perplexity needs, and a remainder that is dropped


@pytest.fixture(scope="module")
def gguf_path() -> Path:
    from modelperf.models.embedded import smollm_gguf_path

    try:
        return smollm_gguf_path()
    except ModelUnavailable as exc:
        pytest.skip(str(exc))


@pytest.fixture(scope="module")
def model(gguf_path: Path):  # type: ignore[no-untyped-def]
    from modelperf.models.llama import load_llama

    return load_llama(str(gguf_path), 1, 256)


def _text(model, tokens: int) -> str:  # type: ignore[no-untyped-def]
    return model.detokenize(model.tokenize(embedded_perplexity_text())[:tokens])


def test_serving_generation_picks_the_tokens_the_full_logits_pick(model) -> None:  # type: ignore[no-untyped-def]
    prompt = model.tokenize("The three primary colours are")
    generated = model.generate("The three primary colours are", 6).tokens
    model.evaluate(prompt + list(generated))  # scoring: a logits row for every position
    rows = [int(np.argmax(model.llm.scores[len(prompt) - 1 + i])) for i in range(len(generated))]
    assert rows == list(generated)


def test_scoring_after_a_serving_call_gives_the_same_scores(model) -> None:  # type: ignore[no-untyped-def]
    prompt, choices = "Review: a warm and funny film. Sentiment:", [" positive", " negative"]
    before = model.score_choices(prompt, choices)
    model.generate(prompt, 3)  # leaves the same prefix evaluated, without its logits rows
    assert model.score_choices(prompt, choices) == pytest.approx(before, abs=1e-6)
    assert before[0] != before[1]


def test_timed_generation_times_every_token(model) -> None:  # type: ignore[no-untyped-def]
    timings = model.timed_generate(model.tokenize("Once upon a time"), 8)
    assert len(timings.tokens) == 8 and len(timings.inter_token_s) == 7
    assert timings.time_to_first_token_s > 0 and all(gap > 0 for gap in timings.inter_token_s)
    assert timings.tokens == model.generate("Once upon a time", 8).tokens


def test_decoding_past_the_context_is_one_sentence(gguf_path: Path) -> None:
    from modelperf.models.llama import load_llama

    small = load_llama(str(gguf_path), 1, 32)
    small.prefill(small.tokenize("The river " * 20)[:30])
    with pytest.raises(ValueError, match="the context of 32 tokens is full: generate fewer tokens"):
        small.decode(5)
    assert small.llm.n_tokens == 32  # the two steps that fitted are kept


def test_perplexity_refuses_a_context_without_per_position_logits(gguf_path: Path) -> None:
    from modelperf.models.llama import load_llama

    serving_only = load_llama(str(gguf_path), 1, 256, logits_all=False)
    with pytest.raises(ValueError, match="logits_all=False: load it with logits_all=True"):
        serving_only.perplexity("any text at all", window=64)


def test_perplexity_needs_two_windows_as_llama_perplexity_does(model) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ValueError, match=r"fewer than the 2 windows of 64 that llama-perplexity needs \(128 tokens\)"):
        model.perplexity(_text(model, 100), window=WINDOW)


def _reference_perplexity(path: Path, text: str, n_ctx: int) -> float:
    """llama-perplexity's procedure on llama_cpp directly: whole text with BOS, BOS at each window's start."""
    # No weight repacking on an Intel AMX CPU: llama.cpp's repacked AMX path kills the process at the
    # first batch there (the plugin's own loads avoid it the same way, with --llama-repack auto).
    with model_params(**repack_fields(repack_choice("auto", cpu_has_amx())[0])):
        # One batch thread as the plugin's loads use: llama_cpp's default is every core, which on a busy
        # machine spins threads that wait on each other.
        llm = llama_cpp.Llama(model_path=str(path), n_ctx=n_ctx, n_batch=n_ctx, n_threads=1, n_threads_batch=1,
                              logits_all=True, verbose=False)
    bos = llm.token_bos()
    tokens = [bos, *llm.tokenize(text.encode(), add_bos=False, special=False)]
    first, nll, count = n_ctx // 2, 0.0, 0
    for chunk in range(len(tokens) // n_ctx):
        window = [bos, *tokens[chunk * n_ctx + 1 : (chunk + 1) * n_ctx]]
        llm.reset()
        llm.eval(window)
        logits = np.asarray(llm.scores[first : n_ctx - 1], dtype=np.float64)
        peak = logits.max(axis=1, keepdims=True)
        log_norm = peak[:, 0] + np.log(np.exp(logits - peak).sum(axis=1))
        targets = np.asarray(window[first + 1 : n_ctx])
        nll += float((log_norm - logits[np.arange(len(targets)), targets]).sum())
        count += len(targets)
    return float(np.exp(nll / count))


GGUF_BOOL = 7  # the value type of a boolean in GGUF's key-value header


def _set_add_bos(path: Path) -> None:
    """Turn on the file's ``tokenizer.ggml.add_bos_token`` in place.

    A GGUF key is a little-endian u64 length and its bytes, then a u32 value type and, for a boolean,
    one byte. Written here rather than through ``gguf.GGUFReader``, which parses every field (the
    tokenizer's arrays take seconds) to change one byte in the header.
    """
    key = b"tokenizer.ggml.add_bos_token"
    needle = struct.pack("<Q", len(key)) + key
    with path.open("r+b") as file:
        header = file.read(1 << 20)  # the key comes before the tokenizer's token arrays
        assert header.count(needle) == 1, "the GGUF has no single add_bos_token key"
        at = header.index(needle) + len(needle)
        assert struct.unpack_from("<I", header, at) == (GGUF_BOOL,) and header[at + 4] == 0, "add_bos_token is not false"
        file.seek(at + 4)
        file.write(b"\x01")


def test_perplexity_of_a_bos_adding_gguf_matches_llama_perplexitys_procedure(  # type: ignore[no-untyped-def]
    gguf_path: Path, tmp_path: Path, model
) -> None:
    from modelperf.models.llama import load_llama

    bos_path = tmp_path / "adds-bos.gguf"
    shutil.copyfile(gguf_path, bos_path)
    _set_add_bos(bos_path)
    bos_model = load_llama(str(bos_path), 1, 256)
    assert bos_model.llm.metadata["tokenizer.ggml.add_bos_token"] == "true"
    text = _text(bos_model, TEXT_TOKENS)
    result = bos_model.perplexity(text, window=WINDOW)
    assert result.chunks == (TEXT_TOKENS + 1) // WINDOW  # BOS counts as a token of the text, as in llama.cpp
    assert result.value == pytest.approx(_reference_perplexity(bos_path, text, WINDOW), rel=1e-6)
    # Without BOS (the embedded GGUF, loaded as the module's model) the windows start one token earlier
    # and the figure differs: the test can fail.
    plain = model.perplexity(text, window=WINDOW)
    assert plain.value != pytest.approx(result.value, rel=1e-4)


def test_the_llama_control_runs_on_its_own_context(model) -> None:  # type: ignore[no-untyped-def]
    from modelperf.measure.control import choose_control

    before = model.generate("The three primary colours are", 4).tokens
    prompt = model.tokenize("Review: a warm and funny film. Sentiment:")
    model.evaluate(prompt)
    scores_before = model.score_choices("Review: a warm and funny film. Sentiment:", [" good", " bad"])
    timer, identity, threads = choose_control({"llama": model})
    assert identity == f"llama.cpp-v1:{model.info.key}:{model.info.threads}t" and threads == model.info.threads
    assert all(timer() > 0 for _ in range(3))
    # The session's context, its cached tokens and its scores are untouched by the control's rounds.
    assert model.score_choices("Review: a warm and funny film. Sentiment:", [" good", " bad"]) == scores_before
    assert model.generate("The three primary colours are", 4).tokens == before


PREFIX = "Decide whether each review is positive or negative.\n\nReview: dull and slow.\nSentiment: negative\n\n"


def _restore(gguf_path: Path, tokens: list[int]):  # type: ignore[no-untyped-def]
    from modelperf.models.llama import load_llama

    fresh = load_llama(str(gguf_path), 1, 256)
    return fresh, fresh.restore_prefix(tokens)


def test_a_restored_prefix_scores_as_an_evaluated_one(gguf_path: Path, tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MODELPERF_CACHE", str(tmp_path))
    first, restored = _restore(gguf_path, [])
    tokens = first.tokenize(PREFIX)
    assert not restored and not first.restore_prefix(tokens)  # nothing saved yet: evaluated, then saved
    assert len(list((tmp_path / "kv").glob("*.bin"))) == 1
    prompt, choices = PREFIX + "Review: a warm and funny film.\nSentiment:", [" positive", " negative"]
    expected = first.score_choices(prompt, choices)
    second, restored = _restore(gguf_path, tokens)
    assert restored
    assert second.score_choices(prompt, choices) == pytest.approx(expected, abs=1e-6)
    # A prompt that ends inside the restored tokens reads logits rows that were never computed in
    # this process: they must be computed, not read from an empty buffer.
    short = "Decide whether each review is positive or negative.\n\nReview: dull and slow.\nSentiment:"
    third, _ = _restore(gguf_path, tokens)
    assert third.score_choices(short, choices) == pytest.approx(first.score_choices(short, choices), abs=1e-6)


def test_a_damaged_prefix_file_is_replaced_not_trusted(gguf_path: Path, tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MODELPERF_CACHE", str(tmp_path))
    first, _ = _restore(gguf_path, [])
    tokens = first.tokenize(PREFIX)
    first.restore_prefix(tokens)
    (saved,) = (tmp_path / "kv").glob("*.bin")
    saved.write_bytes(saved.read_bytes()[:100])  # a truncated file, as a full disk leaves one
    prompt, choices = PREFIX + "Review: a warm and funny film.\nSentiment:", [" positive", " negative"]
    second, restored = _restore(gguf_path, tokens)
    assert not restored
    assert second.score_choices(prompt, choices) == pytest.approx(first.score_choices(prompt, choices), abs=1e-6)
    assert _restore(gguf_path, tokens)[1]  # the file was written again, whole
