"""The load client against a real HTTP server (a stub model in this process): what it times and how it stops."""

from __future__ import annotations

import itertools

import pytest

SERVE_EXTRA = "the serving tests need the serve extra: pip install 'pytest-modelperf[serve]'"
pytest.importorskip("httpx", reason=SERVE_EXTRA)
pytest.importorskip("uvicorn", reason=SERVE_EXTRA)
pytest.importorskip("starlette", reason=SERVE_EXTRA)

from modelperf.serve.arrivals import Concurrency, Limits, Poisson
from modelperf.serve.client import run_load_sync
from modelperf.serve.endpoints import ClassifierEndpoint, CompletionEndpoint
from modelperf.serve.figures import summarize
from modelperf.serve.process import ExternalServer, ServerFailed, free_port

from .stub_server import stub_server

TOKENS = 6


def test_streamed_tokens_are_counted_and_timed_in_order() -> None:
    with stub_server() as (url, state):
        run = run_load_sync(CompletionEndpoint(url, model="stub", max_tokens=TOKENS, prompts=("a", "b")),
                            Concurrency(2), Limits(6, 30.0, 10.0))
    assert len(run.requests) == 6 and all(r.ok for r in run.requests)
    for record in run.requests:
        assert record.output_tokens == TOKENS and len(record.token_times_s) == TOKENS
        assert record.first_token_s is not None and record.end_s is not None
        stamps = (record.sent_s, *record.token_times_s, record.end_s)
        assert all(b >= a for a, b in itertools.pairwise(stamps))
        assert record.scheduled_s is None
    assert [r.prompt_index for r in run.requests] == [0, 1, 0, 1, 0, 1]  # in turn, never the same twice
    assert state.most_in_flight <= 2
    body = state.bodies[0]
    assert body["stream"] is True and body["min_tokens"] == TOKENS and body["temperature"] == 0.0
    summary = summarize(run)
    assert summary.completed == 6 and summary.output_tokens_per_s > 0 and summary.tpot is not None


def test_a_run_can_continue_the_prompt_turn_where_the_last_one_ended() -> None:
    with stub_server() as (url, _):
        run = run_load_sync(CompletionEndpoint(url, max_tokens=1, prompts=("a", "b", "c")), Concurrency(1),
                            Limits(4, 30.0, 10.0), start_prompt=2)
    assert [r.prompt_index for r in run.requests] == [2, 0, 1, 2]


def test_poisson_requests_are_never_sent_before_their_time_and_stop_at_the_request_count() -> None:
    with stub_server() as (url, _):
        run = run_load_sync(CompletionEndpoint(url, max_tokens=2, prompts=("a",)), Poisson(40.0, seed=5),
                            Limits(15, 30.0, 10.0))
    assert len(run.requests) == 15 and all(r.ok for r in run.requests)
    assert all(r.scheduled_s is not None and r.sent_s >= r.scheduled_s for r in run.requests)
    assert [r.index for r in sorted(run.requests, key=lambda r: r.sent_s)] == list(range(15))


def test_no_request_is_sent_after_the_duration() -> None:
    with stub_server() as (url, _):
        run = run_load_sync(CompletionEndpoint(url, max_tokens=1, prompts=("a",)), Concurrency(1),
                            Limits(100_000, 0.3, 10.0))
    assert 0 < len(run.requests) < 100_000 and all(r.sent_s < 0.3 for r in run.requests)


def test_a_request_that_never_answers_is_cut_off_and_the_run_ends() -> None:
    with stub_server() as (url, _):
        run = run_load_sync(CompletionEndpoint(url, max_tokens=2, prompts=("HANG", "a")), Concurrency(2),
                            Limits(2, 30.0, 0.5))
    hung, fine = run.requests
    assert not hung.ok and hung.error is not None and "cut off after the request timeout of 0.5 s" in hung.error
    assert fine.ok and summarize(run).failed == 1


def test_an_http_error_is_recorded_with_the_status_and_the_servers_words() -> None:
    with stub_server() as (url, _):
        run = run_load_sync(CompletionEndpoint(url, max_tokens=2, prompts=("FAIL",)), Concurrency(1),
                            Limits(1, 30.0, 5.0))
    (record,) = run.requests
    assert record.error is not None and "HTTP 500" in record.error and "told to fail" in record.error


def test_a_server_that_is_not_there_gives_failed_requests_not_a_crash() -> None:
    url = f"http://127.0.0.1:{free_port()}"
    run = run_load_sync(CompletionEndpoint(url, max_tokens=2), Concurrency(1), Limits(2, 30.0, 5.0))
    assert [r.ok for r in run.requests] == [False, False] and all("Connect" in (r.error or "") for r in run.requests)


def test_the_classifier_endpoint_fills_the_json_shape() -> None:
    with stub_server() as (url, state):
        endpoint = ClassifierEndpoint(url + "/classify", '{"inputs": ["{text}"], "top_k": 1}', prompts=("nice",))
        run = run_load_sync(endpoint, Concurrency(1), Limits(2, 30.0, 5.0))
    assert all(r.ok and r.e2e_s is not None and r.ttft_s is None for r in run.requests)
    assert state.bodies == [{"inputs": ["nice"], "top_k": 1}] * 2


@pytest.mark.parametrize(("shape", "why"), [
    ("{text}", "is not JSON"), ('{"text": "x"}', "exactly once"), ('["{text}", "{text}"]', "exactly once"),
])
def test_a_classifier_shape_without_one_placeholder_is_refused(shape: str, why: str) -> None:
    with pytest.raises(ValueError, match=why):
        ClassifierEndpoint("http://127.0.0.1:1/classify", shape)


def test_a_base_url_with_or_without_v1_reaches_the_same_route() -> None:
    assert CompletionEndpoint("http://h:1/v1/").url == CompletionEndpoint("http://h:1").url == "http://h:1/v1/completions"
    assert CompletionEndpoint("http://h:1", chat=True).url == "http://h:1/v1/chat/completions"
    with pytest.raises(ValueError, match="not an http"):
        CompletionEndpoint("127.0.0.1:8000")


def test_an_external_server_is_checked_before_the_first_request() -> None:
    with stub_server() as (url, _):
        ExternalServer(url).wait_healthy(5.0)
    with pytest.raises(ServerFailed, match=r"the llama server at http://127\.0\.0\.1:\d+ did not answer /v1/models"):
        ExternalServer(f"http://127.0.0.1:{free_port()}", label="the llama server").wait_healthy(0.5)
