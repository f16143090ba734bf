"""Llama-family models through llama-cpp-python and GGUF files.

The context is created with ``logits_all=True``: without it llama-cpp-python keeps logits for the
last position only, and scoring label tokens silently returns one constant prediction. That costs
a logits buffer of n_ctx x vocab floats (about 400 MB for SmolLM2 at 2048 tokens), which memray
counts as allocated at load; memory tests that study the KV cache load a context of their own without it.

Serving calls (``prefill``, ``decode``, ``generate``, ``timed_generate``) switch per-position logits
off for their own evaluations: llama.cpp then computes the output layer for the last position only,
as a server and ``llama-bench`` do (prefill of 512 tokens ran about 17 % faster that way). Scoring
and perplexity switch them back on, and never reuse positions a serving call evaluated.

Every method drives ``Llama.eval`` directly rather than the sampling helpers, so that generation
is greedy with an exact token count (end-of-sequence never stops it early, a model cannot look
faster by stopping) and a shared prompt prefix is evaluated once and reused across examples.
"""

from __future__ import annotations

import contextlib
import itertools
import math
import os
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from modelperf.models.base import Classification, Generation, ModelInfo, ModelUnavailable, Perplexity, TokenTimings
from modelperf.models.embedded import file_sha256, smollm_gguf_path
from modelperf.models.gguf import check_gguf, quantization_name
from modelperf.models.llama_native import llama_control, quiet_native_stderr
from modelperf.models.repack import check_repack_supported, cpu_has_amx, model_params, repack_choice, repack_fields

if TYPE_CHECKING:
    from modelperf.models.prompting import PromptClassifier

__all__ = ["Llama", "load_llama"]

# llama-perplexity refuses a text shorter than two windows ("you need at least 2*n_ctx tokens").
_PERPLEXITY_MIN_WINDOWS = 2


class Llama:
    """A GGUF model behind the :class:`~modelperf.models.base.Model` interface."""

    def __init__(self, llm: Any, info: ModelInfo) -> None:
        self._llm = llm
        self.info = info
        self.classifier: PromptClassifier | None = None  # fitted on first use
        # Whether the context was created with a logits row for every position (scoring needs it).
        self._scoring_context = bool(llm._logits_all)
        # How many leading positions of the context evaluate() may reuse: their KV cells are in place.
        self._scored = 0
        # How many of those leading positions were restored from a file (restore_prefix): their KV cells
        # are in place but their logits rows were never computed in this process.
        self._rowless = 0

    @property
    def llm(self) -> Any:
        """The underlying ``llama_cpp.Llama``, for users who need the whole API."""
        return self._llm

    def tokenize(self, text: str, *, bos: bool = False) -> list[int]:
        return list(self._llm.tokenize(text.encode("utf-8"), add_bos=bos, special=False))

    def count_tokens(self, text: str) -> int:
        return len(self.tokenize(text))

    def detokenize(self, tokens: Sequence[int]) -> str:
        return bytes(self._llm.detokenize(list(tokens))).decode("utf-8", errors="replace")

    def _bos(self) -> list[int]:
        """[BOS] where the model's tokenizer adds one (Llama 2 does, SmolLM2 does not), as llama.cpp does."""
        bos = int(self._llm.token_bos())
        return [bos] if bos >= 0 and bool(self._llm._model.add_bos_token()) else []

    def evaluate(self, tokens: Sequence[int], rows_from: int | None = None) -> None:
        """Bring the context to exactly ``tokens``, reusing the longest prefix already evaluated.

        Logits rows from position ``rows_from`` on (default: the last) are fresh afterwards.
        """
        if len(tokens) > self.info.context_length:
            raise ValueError(
                f"{len(tokens)} tokens do not fit the context of {self.info.context_length}: "
                "shorten the input or raise --llama-context."
            )
        self._require_scoring("scoring tokens")
        llm = self._llm
        cached = llm.input_ids[: min(llm.n_tokens, self._scored)]
        common = 0
        limit = min(len(cached), len(tokens) - 1)  # always re-evaluate the last token for fresh logits
        first_row = len(tokens) - 1 if rows_from is None else rows_from
        if first_row < self._rowless:  # a restored position has KV cells but no logits row to read
            limit = min(limit, first_row)
        while common < limit and cached[common] == tokens[common]:
            common += 1
        llm.n_tokens = common
        llm.eval(list(tokens[common:]))
        self._scored = llm.n_tokens
        self._rowless = min(self._rowless, common)

    def restore_prefix(self, tokens: Sequence[int]) -> bool:
        """Bring the context to ``tokens``, a prompt prefix that many calls share, from a file of its KV
        cells when an earlier process saved one for these weights and settings; else evaluate it and
        save that file. Returns whether it was restored.

        The classifier's few-shot prefix (187 SmolLM2 tokens) took 1.5 s to evaluate on one thread,
        once in every process: 18 s of each --against session, whose 12 worker processes paid it in
        turn. Restoring is a read of a 4 MB file. The file (llama.cpp's own sequence-state format,
        which checks its header and sizes) is keyed by everything that changes the cells' values:
        the weights, llama-cpp-python's version, the CPU features its kernels use (a cache restored
        on another runner class must not bring another CPU's rounding), threads, batch size, weight
        repacking and the tokens. A file that does not load is replaced, never trusted.
        """
        import ctypes
        import hashlib
        import json

        import llama_cpp

        from modelperf.models.embedded import cache_root

        llm, tokens = self._llm, list(tokens)
        if not tokens:
            return False
        features = bytes(llama_cpp.llama_print_system_info()).decode(errors="replace")
        key = json.dumps([self.info.weights_sha256, llama_cpp.__version__, features, self.info.threads,
                          int(llm.n_batch), self.info.variant, tokens])
        path = cache_root() / "kv" / f"llama-{hashlib.sha256(key.encode()).hexdigest()[:24]}.bin"
        ctx = llm._ctx.ctx
        if path.is_file():
            llm.reset()
            llm._ctx.kv_cache_seq_rm(-1, 0, -1)
            stored = (llama_cpp.llama_token * len(tokens))()
            count = ctypes.c_size_t(0)
            with quiet_native_stderr():
                loaded = llama_cpp.llama_state_seq_load_file(ctx, str(path).encode(), 0, stored, len(tokens),
                                                             ctypes.byref(count))
            if loaded and count.value == len(tokens) and list(stored) == tokens:
                llm.input_ids[: len(tokens)] = tokens
                llm.n_tokens = len(tokens)
                self._scored = self._rowless = len(tokens)
                return True
            llm._ctx.kv_cache_seq_rm(-1, 0, -1)  # whatever a failed load left behind
            self._scored = self._rowless = 0
        self.evaluate(tokens)
        with contextlib.suppress(OSError):  # a cache that cannot be written only costs the next process time
            path.parent.mkdir(parents=True, exist_ok=True)
            staging = path.with_suffix(f".{os.getpid()}.tmp")
            array = (llama_cpp.llama_token * len(tokens))(*tokens)
            if llama_cpp.llama_state_seq_save_file(ctx, str(staging).encode(), 0, array, len(tokens)):
                os.replace(staging, path)  # atomic: a reader sees a whole file or none
            else:
                staging.unlink(missing_ok=True)
        return False

    def _require_scoring(self, what: str) -> None:
        if not self._scoring_context:
            raise ValueError(
                f"{what} needs a logits row for every position, and this Llama context was created with "
                "logits_all=False: load it with logits_all=True (the fixtures' default)."
            )

    @contextlib.contextmanager
    def _serving(self) -> Iterator[None]:
        """Evaluate with logits for the last position only, as a server does; scoring re-evaluates after."""
        llm = self._llm
        self._scored = self._rowless = 0
        saved, llm._logits_all = llm._logits_all, False
        try:
            yield
        finally:
            llm._logits_all = saved

    def _logprobs_at(self, position: int) -> Any:
        import numpy as np

        row = np.asarray(self._llm.scores[position], dtype=np.float64)
        peak = row.max()
        return row - (peak + math.log(float(np.exp(row - peak).sum())))

    def next_token(self) -> int:
        """Greedy choice after the evaluated tokens (the last output row llama.cpp computed)."""
        import numpy as np

        llm = self._llm
        if llm._logits_all:
            return int(np.argmax(llm.scores[llm.n_tokens - 1]))
        return int(np.argmax(np.ctypeslib.as_array(llm._ctx.get_logits(), shape=(llm.n_vocab(),))))

    def prefill(self, tokens: Sequence[int]) -> None:
        """Evaluate ``tokens`` into an empty context (nothing reused), as a fresh request would."""
        with self._serving():
            self._llm.reset()
            self._llm.eval(list(tokens))

    def _append(self, token: int) -> None:
        """Evaluate one more token at the end of the context, as a serving loop does (serving calls only).

        ``Llama.eval`` first removes the KV cells past the current position, a scan of the whole
        context on every call: at n_ctx 2048 it cost 3.5 % of a SmolLM2 decode step here (53.1
        against 55.0 tokens/s at n_ctx 256, while a bare llama_decode loop ran 56.5 at either). A
        token appended at the end has nothing past it to remove (a prefill starts from an emptied
        context), so this step skips that scan, as llama-bench's generation loop does.
        """
        llm = self._llm
        position = llm.n_tokens
        if position >= self.info.context_length:
            raise ValueError(f"the context of {self.info.context_length} tokens is full: generate fewer tokens, "
                             "shorten the prompt or raise --llama-context.")
        llm._batch.set_batch(batch=[token], n_past=position, logits_all=False)
        llm._ctx.decode(llm._batch)
        llm.input_ids[position] = token
        llm.n_tokens = position + 1

    def decode(self, count: int) -> list[int]:
        """Exactly ``count`` greedy tokens after what is evaluated; end-of-sequence does not stop it."""
        out: list[int] = []
        with self._serving():
            for _ in range(count):
                token = self.next_token()
                out.append(token)
                self._append(token)
        return out

    def generate(self, prompt: str, max_tokens: int) -> Generation:
        """Greedy generation from an empty context, so every call pays its prefill like a new request."""
        prompt_tokens = self._bos() + self.tokenize(prompt)
        self.prefill(prompt_tokens)
        out = self.decode(max_tokens)
        return Generation(self.detokenize(out), tuple(out), len(prompt_tokens))

    def timed_generate(self, prompt_tokens: Sequence[int], max_tokens: int) -> TokenTimings:
        """Greedy generation that times every token, as a streaming server sees it.

        Time to first token is the prefill plus picking the first token; each inter-token time is
        one decode step (evaluate the previous token, pick the next).
        """
        clock = time.perf_counter
        out: list[int] = []
        with self._serving():
            start = clock()
            self._llm.reset()
            self._llm.eval(list(prompt_tokens))
            out.append(self.next_token())
            stamps = [clock()]
            for _ in range(max_tokens - 1):
                self._append(out[-1])
                out.append(self.next_token())
                stamps.append(clock())
        gaps = tuple(b - a for a, b in itertools.pairwise(stamps))
        return TokenTimings(stamps[0] - start, gaps, tuple(out))

    def score_choices(self, prompt: str, choices: Sequence[str]) -> tuple[float, ...]:
        prefix = self._bos() + self.tokenize(prompt)
        scores = []
        for choice in choices:
            continuation = self.tokenize(choice)
            start = len(prefix)
            self.evaluate(prefix + continuation, rows_from=start - 1)
            scores.append(sum(
                float(self._logprobs_at(start + i - 1)[token]) for i, token in enumerate(continuation)
            ))
        return tuple(scores)

    def perplexity(self, text: str, window: int | None = None) -> Perplexity:
        """llama-perplexity's method, step for step.

        The whole text is tokenized once, with BOS first where the tokenizer adds one; it is cut into
        windows of n_ctx tokens (at least two, as llama-perplexity requires); each window's first
        token is replaced by BOS (for such tokenizers), and the second half of each window is scored.
        """
        self._require_scoring("perplexity")
        n_ctx = window or self.info.context_length
        tokens = self._bos() + self.tokenize(text)
        chunks = len(tokens) // n_ctx
        if chunks < _PERPLEXITY_MIN_WINDOWS:
            raise ValueError(
                f"The text has {len(tokens)} tokens, fewer than the {_PERPLEXITY_MIN_WINDOWS} windows of {n_ctx} that "
                f"llama-perplexity needs ({_PERPLEXITY_MIN_WINDOWS * n_ctx} tokens): use a longer text or a smaller "
                "window."
            )
        first, bos = n_ctx // 2, self._bos()
        nll, count = 0.0, 0
        for chunk in range(chunks):
            window_tokens = tokens[chunk * n_ctx : (chunk + 1) * n_ctx]
            if bos:
                window_tokens[0] = bos[0]  # llama.cpp starts every window with BOS
            self._llm.reset()
            self._llm.eval(window_tokens)
            for position in range(first, n_ctx - 1):
                nll -= float(self._logprobs_at(position)[window_tokens[position + 1]])
                count += 1
        self._scored = self._rowless = 0  # the windows' tokens are not a prefix anyone asks for again
        return Perplexity(math.exp(nll / count), count, chunks, n_ctx)

    def latency_control(self) -> tuple[Callable[[], float], str]:
        """A control workload run by llama.cpp itself, on this model's weights: (timer, identity).

        A second, small context on the same loaded model evaluates a fixed batch and one more token
        each round. It shares what limits this model's speed in this process (where its weights sit
        in memory, llama.cpp's kernels, its threads), so a machine that got slower slows both alike;
        the session's own context and its cached tokens are left untouched.
        """
        return llama_control(self._llm._model, self.info, self.tokenize)

    def classify(self, texts: Sequence[str]) -> Classification:
        if self.classifier is None:
            from modelperf.models.prompting import PromptClassifier

            self.classifier = PromptClassifier.fitted(self)
            self.restore_prefix(self.classifier.shared_tokens(self))
        return self.classifier.classify(self, texts)


def _info(llm: Any, path: Path, embedded: bool, threads: int, context: int, repack: tuple[bool, str]) -> ModelInfo:
    import llama_cpp

    meta = dict(llm.metadata)
    arch = meta.get("general.architecture", "unknown")
    heads = int(meta.get(f"{arch}.attention.head_count", 0))
    embedding = int(meta.get(f"{arch}.embedding_length", 0))
    file_type = int(meta.get("general.file_type", -1))
    return ModelInfo(
        name="llama",
        source=str(path) if not embedded else f"embedded SmolLM2-135M-Instruct ({path})",
        architecture=f"{arch} ({meta.get('general.name', path.stem)})",
        layers=int(meta.get(f"{arch}.block_count", 0)),
        parameters=int(llm._model.n_params()),
        file_bytes=path.stat().st_size,
        quantization=quantization_name(file_type),
        context_length=context,
        threads=threads,
        weights_sha256=file_sha256(path),
        embedded=embedded,
        library_versions={"llama_cpp_python": llama_cpp.__version__},
        # Repacking changes the speed, so figures measured without it are kept apart from those with it.
        variant="" if repack[0] else "norepack",
        details={
            "trained_context": int(meta.get(f"{arch}.context_length", 0)),
            "embedding_length": embedding,
            "heads": heads,
            "kv_heads": int(meta.get(f"{arch}.attention.head_count_kv", heads)),
            "head_dim": embedding // heads if heads else 0,
            "vocab_size": int(llm.n_vocab()),
            "logits_all": True,
            "weight_repack": repack[1],
        },
    )


def load_llama(source: str | None, threads: int, context: int, *, repack: str = "auto", logits_all: bool = True,
               **options: Any) -> Llama:
    """Load a GGUF (None: the embedded SmolLM2) offline; problems raise ModelUnavailable.

    ``repack`` is --llama-repack (auto, on, off). ``options`` go to ``llama_cpp.Llama`` unchanged
    (e.g. ``n_batch`` for the KV-cache study).
    """
    path = smollm_gguf_path() if source is None else Path(source).expanduser()
    check_gguf(path)
    import llama_cpp

    choice = repack_choice(repack, cpu_has_amx())
    if not choice[0]:
        check_repack_supported()
    try:
        with quiet_native_stderr(), model_params(**repack_fields(choice[0])):
            llm = llama_cpp.Llama(
                model_path=str(path), n_ctx=context, n_threads=threads, n_threads_batch=threads,
                logits_all=logits_all, verbose=False, seed=0, **options,
            )
    except (ValueError, RuntimeError, OSError) as exc:
        raise ModelUnavailable(
            f"llama.cpp could not load {path} ({exc}): the file may be truncated or of an unsupported "
            "architecture; download it again or convert it with a current llama.cpp."
        ) from None
    return Llama(llm, _info(llm, path, source is None, threads, context, choice))
