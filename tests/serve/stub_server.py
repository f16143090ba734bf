"""A stand-in OpenAI-compatible server in the test process (uvicorn in a thread), for client tests.

It streams one chunk per token like llama-cpp-python's server; a prompt containing ``FAIL``
answers 500 and one containing ``HANG`` never answers, so the client's error paths can be run.

``python stub_server.py PORT`` runs it as a server process of its own (the plugin's load tests use it
as a stand-in for a model's server); ``$MODELPERF_STUB_TOKEN_GAP_S`` sets its time per token there, and
``$MODELPERF_STUB_BODIES`` names a file that gets each completion request it answers.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import sys
import threading
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from modelperf.serve.process import exit_with_parent, free_port

TOKEN_GAP_S = 0.002  # short, so a test of a few dozen requests takes well under a second
GAP_ENV = "MODELPERF_STUB_TOKEN_GAP_S"
MARKER_ENV = "MODELPERF_TEST_MARKER"  # tests/faults' interrupt tests: a file written at the first request
BODIES_ENV = "MODELPERF_STUB_BODIES"  # a JSONL file that gets each completion request's body and time


@dataclass
class StubState:
    in_flight: int = 0
    most_in_flight: int = 0
    bodies: list[dict[str, object]] = field(default_factory=list)


def _write_marker(path: str) -> None:
    with open(path, "w") as marker:
        marker.write("first request")


def _append_body(path: str, body: dict[str, object]) -> None:
    with open(path, "a") as out:
        out.write(json.dumps({"time": time.time(), **body}) + "\n")


def _app(state: StubState, gap_s: float = TOKEN_GAP_S) -> Starlette:
    async def models(request: Request) -> JSONResponse:
        return JSONResponse({"data": [{"id": "stub"}]})

    async def completions(request: Request) -> Response:
        body = await request.json()
        state.bodies.append(body)
        if bodies := os.environ.get(BODIES_ENV):
            _append_body(bodies, body)
        marker = os.environ.get(MARKER_ENV)
        if marker and not os.path.exists(marker):
            _write_marker(marker)  # a test waits for the first request to interrupt the session
        prompt = str(body.get("prompt", ""))
        if "FAIL" in prompt:
            return JSONResponse({"error": "the stub was told to fail"}, status_code=500)
        count = int(body["max_tokens"])

        async def chunks() -> AsyncIterator[bytes]:
            state.in_flight += 1
            state.most_in_flight = max(state.most_in_flight, state.in_flight)
            try:
                if "HANG" in prompt:
                    await asyncio.sleep(30)
                yield b": ping\n\n"  # an SSE comment, as sse-starlette sends
                for index in range(count):
                    await asyncio.sleep(gap_s)
                    yield f"data: {json.dumps({'choices': [{'text': f' t{index}', 'index': 0}]})}\n\n".encode()
                usage = {"choices": [], "usage": {"completion_tokens": count}}
                yield f"data: {json.dumps(usage)}\n\ndata: [DONE]\n\n".encode()
            finally:
                state.in_flight -= 1

        return StreamingResponse(chunks(), media_type="text/event-stream")

    async def classify(request: Request) -> JSONResponse:
        body = await request.json()
        state.bodies.append(body)
        return JSONResponse({"label": "positive"})

    return Starlette(routes=[Route("/v1/models", models), Route("/v1/completions", completions, methods=["POST"]),
                             Route("/classify", classify, methods=["POST"])])


@contextlib.contextmanager
def stub_server() -> Iterator[tuple[str, StubState]]:
    """(base URL, state) of a stub server running for the block."""
    state = StubState()
    config = uvicorn.Config(_app(state), host="127.0.0.1", port=free_port(), log_level="warning", lifespan="off",
                            timeout_graceful_shutdown=1)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started and thread.is_alive() and time.monotonic() < deadline:
        time.sleep(0.01)
    assert server.started, "the stub server did not start"
    try:
        yield f"http://127.0.0.1:{config.port}", state
    finally:
        server.should_exit = True
        thread.join(10)


def main() -> None:
    exit_with_parent()
    gap = float(os.environ.get(GAP_ENV) or TOKEN_GAP_S)
    uvicorn.run(_app(StubState(), gap), host="127.0.0.1", port=int(sys.argv[1]), log_level="warning",
                lifespan="off", timeout_graceful_shutdown=1)


if __name__ == "__main__":
    main()
