"""A small HTTP sentiment-classification service around the DistilBERT adapter, with dynamic batching.

``python -m modelperf.serve.classifier_service --port P --threads N [--model DIR] [--max-batch 8]
[--max-wait-ms 5]`` loads the model (the embedded default without ``--model``) before it listens,
so its health check answers only once it can classify. Routes:

- ``GET /health``: ``{"status": "ok", "model": "<name@hash>"}``;
- ``POST /v1/classify`` with ``{"text": "..."}``: ``{"label": "positive", "probabilities": [..],
  "label_names": [..], "batch_size": k}``, where ``batch_size`` says how many requests ran together.

Served by uvicorn on 127.0.0.1 only; it exits by itself when the process that started it is gone.
"""

from __future__ import annotations

import argparse
import contextlib
from collections.abc import AsyncIterator, Callable, Sequence

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from modelperf.models.base import Classification
from modelperf.serve.batching import DynamicBatcher
from modelperf.serve.process import HOST, exit_with_parent

__all__ = ["build_app", "main"]

_Row = tuple[str, tuple[float, ...], tuple[str, ...]]  # label, probabilities, label names


def build_app(classify: Callable[[Sequence[str]], Classification], model_key: str, *, max_batch: int, max_wait_s: float) -> Starlette:
    """The ASGI app around a model's ``classify``, batching the requests that arrive together."""

    def run_batch(texts: list[str]) -> list[_Row]:
        result = classify(texts)
        names = tuple(result.label_names)
        return [(names[label], tuple(probs), names) for label, probs in zip(result.labels, result.probabilities,
                                                                            strict=True)]

    batcher: DynamicBatcher[str, _Row] = DynamicBatcher(run_batch, max_batch=max_batch, max_wait_s=max_wait_s)

    async def health(request: Request) -> JSONResponse:
        return JSONResponse({"status": "ok", "model": model_key})

    async def classify_one(request: Request) -> JSONResponse:
        try:
            body = await request.json()
        except ValueError:
            return JSONResponse({"error": "the body is not JSON: send {\"text\": \"...\"}"}, status_code=400)
        text = body.get("text") if isinstance(body, dict) else None
        if not isinstance(text, str) or not text:
            return JSONResponse({"error": "the body needs a non-empty string field 'text'"}, status_code=400)
        result = await batcher.submit(text)
        label, probabilities, names = result.value
        return JSONResponse({"label": label, "probabilities": list(probabilities), "label_names": list(names),
                             "batch_size": result.batch_size})

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        batcher.start()
        try:
            yield
        finally:
            await batcher.aclose()

    return Starlette(routes=[Route("/health", health), Route("/v1/classify", classify_one, methods=["POST"])],
                     lifespan=lifespan)


def _arguments(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m modelperf.serve.classifier_service", description=__doc__)
    parser.add_argument("--model", default=None, help="DistilBERT checkpoint directory (default: the embedded one)")
    parser.add_argument("--threads", type=int, required=True, help="torch threads")
    parser.add_argument("--max-batch", type=int, default=8, help="largest batch (default: 8)")
    parser.add_argument("--max-wait-ms", type=float, default=5.0,
                        help="longest wait for a batch to fill, in ms (default: 5)")
    parser.add_argument("--port", type=int, required=True, help="TCP port on 127.0.0.1")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> None:
    arguments = _arguments(argv)
    exit_with_parent()
    import uvicorn

    from modelperf.models.registry import load_model

    model = load_model("distilbert", {"source": arguments.model, "threads": arguments.threads})
    app = build_app(model.classify, model.info.key, max_batch=arguments.max_batch,
                    max_wait_s=arguments.max_wait_ms / 1000.0)
    print(f"modelperf: serving {model.info.source} on {HOST}:{arguments.port} ({model.info.threads} thread(s), "
          f"batches of up to {arguments.max_batch}, waiting up to {arguments.max_wait_ms:g} ms)", flush=True)
    uvicorn.run(app, host=HOST, port=arguments.port, log_level="info", access_log=False)


if __name__ == "__main__":
    main()
