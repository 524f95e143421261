"""The OpenAI-compatible runtime against real servers on loopback."""

import http.server
import json
import socket
import subprocess
import sys
import threading
import time

import httpx
import pytest

from conftest import BUG_ISSUE
from swe_reasoner.agent.errors import ModelError
from swe_reasoner.agent.openai_http import OpenAIModel
from swe_reasoner.agent.pipeline import SolveOptions, solve
from swe_reasoner.agent.repo import Repo


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def llama_server(tmp_path_factory):
    """llama-cpp-python's own OpenAI-compatible server with the demo GGUF."""
    pytest.importorskip("llama_cpp.server.app")
    from swe_reasoner.agent.config import demo_model_path

    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "llama_cpp.server", "--model", demo_model_path(),
                             "--model_alias", "smollm2", "--n_ctx", "4096", "--host", "127.0.0.1", "--port", str(port)],
                            stdout=subprocess.DEVNULL, stderr=(log := (tmp_path_factory.mktemp("server") / "log").open("wb")))
    base = f"http://127.0.0.1:{port}/v1"
    for _ in range(120):
        try:
            if httpx.get(f"{base}/models", timeout=1).status_code == 200:
                break
        except httpx.TransportError:
            time.sleep(0.5)
    else:
        proc.kill()
        pytest.fail("llama_cpp.server did not start: " + open(log.name).read()[-2000:])
    yield base
    proc.terminate()
    proc.wait(10)
    log.close()


@pytest.mark.llama
def test_chat_and_schema_answers_from_a_real_server(llama_server):
    model = OpenAIModel(llama_server, "smollm2")
    [c] = model.complete([{"role": "user", "content": "Say hello."}], max_tokens=10)
    assert c.text and c.completion_tokens > 0 and c.prompt_tokens > 0
    schema = {"type": "object", "properties": {"answer": {"enum": ["yes", "no"]}}, "required": ["answer"]}
    out = model.complete([{"role": "user", "content": "Is water wet? JSON please."}], n=2, max_tokens=30, json_schema=schema)
    assert len(out) == 2 and all(json.loads(c.text)["answer"] in ("yes", "no") for c in out)
    with pytest.raises(ModelError, match="not available over the OpenAI API"):
        model.logprob([{"role": "user", "content": "x"}], "a whole patch")
    model.close()


@pytest.mark.llama
def test_the_prm_judges_over_http_as_in_process(llama_server):
    """P(yes) from the server's top log-probabilities equals the in-process llama.cpp computation."""
    from swe_reasoner.agent.config import demo_model_path
    from swe_reasoner.agent.llama import LlamaCppModel
    from swe_reasoner.agent.rewards import ProcessReward

    issue, diff = "mean([2, 4]) returns 6, not 3.", "-    return sum(v) / (len(v) - 1)\n+    return sum(v) / len(v)\n"
    remote = ProcessReward(OpenAIModel(llama_server, "smollm2")).score(issue, "patch", diff)
    local_model = LlamaCppModel(demo_model_path(), n_ctx=4096)
    try:
        local = ProcessReward(local_model).score(issue, "patch", diff)
    finally:
        local_model.close()
    assert 0.0 < remote < 1.0 and remote == pytest.approx(local, abs=2e-3)


@pytest.mark.llama
def test_a_whole_solve_over_http(llama_server, bug_repo):
    model = OpenAIModel(llama_server, "smollm2")
    result = solve(Repo.open(bug_repo), BUG_ISSUE, model, SolveOptions(max_tokens=128, retries=0))
    assert result.trajectory.status in ("patched", "no_patch") and result.trajectory.steps


class _Flaky(http.server.BaseHTTPRequestHandler):
    """Answers 503 to the first request, then a valid chat completion; 400 for model 'bad'."""

    hits = 0

    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        type(self).hits += 1
        if body["model"] == "bad":
            self._send(400, {"error": {"message": "unknown model bad"}})
        elif type(self).hits == 1:
            self._send(503, {"error": "busy"})
        else:
            self._send(200, {"choices": [{"message": {"content": "ok", "reasoning_content": "hmm"}, "finish_reason": "stop"}],
                             "usage": {"prompt_tokens": 3, "completion_tokens": 1}})

    def _send(self, code, payload):
        data = json.dumps(payload).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):
        pass


def test_retries_then_succeeds_and_reports_errors():
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Flaky)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{server.server_port}/v1"
    try:
        [c] = OpenAIModel(base, "m", backoff=0.01).complete([{"role": "user", "content": "hi"}])
        assert _Flaky.hits == 2 and c.think == "hmm" and c.answer == "ok"
        with pytest.raises(ModelError, match="HTTP 400: .*unknown model bad"):
            OpenAIModel(base, "bad", backoff=0.01).complete([{"role": "user", "content": "hi"}])
    finally:
        server.shutdown()
        server.server_close()
    with pytest.raises(ModelError, match="ConnectError"):
        OpenAIModel(base, "m", retries=1, backoff=0.01, timeout=5).complete([{"role": "user", "content": "hi"}])


def test_a_served_prm_is_asked_by_name_once_per_judgement():
    """Over HTTP the PRM is a served model (or LoRA) named in the request; "Yes" and "No" come
    from one answer's top log-probabilities; a reply outside the top ones gets the lowest."""
    import math

    from swe_reasoner.agent.rewards import ProcessReward

    seen = []

    def handler(request):
        seen.append(json.loads(request.content))
        top = [{"token": "Yes", "logprob": -0.2}, {"token": " No", "logprob": -1.9}, {"token": "Maybe", "logprob": -4.0}]
        return httpx.Response(200, json={"choices": [{"message": {"content": "Yes"},
                                                      "logprobs": {"content": [{"token": "Yes", "top_logprobs": top}]}}]})

    model = OpenAIModel("http://prm.test/v1", "reasoner")
    model._http = httpx.Client(base_url="http://prm.test/v1", transport=httpx.MockTransport(handler))
    p = ProcessReward(model, "my-prm").score("issue", "patch", "diff")
    assert p == pytest.approx(1 / (1 + math.exp(-1.9 + 0.2)))
    assert len(seen) == 1 and seen[0]["model"] == "my-prm" and seen[0]["logprobs"] and seen[0]["max_tokens"] == 1
    assert model.logprob([{"role": "user", "content": "q"}], "Perhaps") == -4.0 and len(seen) == 2


def test_reward_settings_over_http():
    from swe_reasoner.agent.config import Settings, solve_options
    from swe_reasoner.agent.errors import ConfigError

    http = Settings(api_base="http://x/v1", api_model="m", prm_adapter="my-prm").validate()
    assert solve_options(http).prm_adapter == "my-prm" and solve_options(http).orm_adapter is None
    local = Settings(model="m.gguf", prm_adapter="/a/prm.gguf", orm_adapter="/a/orm.gguf").validate()
    assert (solve_options(local).prm_adapter, solve_options(local).orm_adapter) == ("prm", "orm")
    with pytest.raises(ConfigError, match="whole patch"):
        Settings(api_base="http://x/v1", api_model="m", orm_adapter="my-orm").validate()
