"""How closely each control workload follows the Llama model's speed, across fresh processes.

A control corrects a latency figure for the machine's drift only as far as it moves with the model.
Each sample here is a fresh process (where the weights land in memory differs between processes)
that loads the embedded Llama and times, interleaved round by round, a model call, the llama.cpp
control (``Llama.latency_control``) and the generic torch control, and keeps each one's lower decile.
Across processes it prints the spread (sd of the log) of the model's figure, of model/control for
each control, and the correlation of the model's log figure with each control's.

    python benchmarks/control_tracking.py --processes 10 --threads 1
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys

import numpy as np

_CHILD = r"""
import json, sys, time
import numpy as np
from modelperf.measure.control import control_timer
from modelperf.models.llama import load_llama

threads, rounds = int(sys.argv[1]), int(sys.argv[2])
llama = load_llama(None, threads, 2048)
text = "The history of the city begins with a small market by the river. " * 40
prompt = llama.tokenize(text)[:64]
llama_control, _ = llama.latency_control()
torch_control = control_timer(threads)
workloads = {
    "decode32": lambda: (llama.prefill(prompt), llama.decode(32)),
    "prefill128": lambda: llama.prefill(llama.tokenize(text)[:128]),
}
times = {name: [] for name in (*workloads, "llama_control", "torch_control")}
for name in (*workloads, "llama_control", "torch_control"):  # warm-up
    (workloads.get(name) or {"llama_control": llama_control, "torch_control": torch_control}[name])()
for _ in range(rounds):
    for name, call in workloads.items():
        start = time.perf_counter(); call(); times[name].append(time.perf_counter() - start)
    times["llama_control"].append(llama_control())
    times["torch_control"].append(torch_control())
print(json.dumps({name: float(np.quantile(values, 0.10)) for name, values in times.items()}))
"""


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--processes", type=int, default=10, help="fresh processes (default 10)")
    parser.add_argument("--threads", type=int, default=1, help="llama.cpp and torch threads (default 1)")
    parser.add_argument("--rounds", type=int, default=30, help="interleaved rounds per process (default 30)")
    args = parser.parse_args()
    samples = []
    for index in range(args.processes):
        done = subprocess.run([sys.executable, "-c", _CHILD, str(args.threads), str(args.rounds)],
                              capture_output=True, text=True, check=True)
        samples.append(json.loads(done.stdout.strip().splitlines()[-1]))
        print(f"process {index + 1}/{args.processes}: " + ", ".join(
            f"{k} {v * 1e3:.2f} ms" for k, v in samples[-1].items()), file=sys.stderr)
    logs = {name: np.log([s[name] for s in samples]) for name in samples[0]}
    print(f"{args.processes} fresh processes, {args.threads} thread(s), p10 of {args.rounds} interleaved rounds each")
    for model in ("decode32", "prefill128"):
        line = [f"{model}: model sd {np.std(logs[model], ddof=1):.2%}"]
        for control in ("llama_control", "torch_control"):
            spread = np.std(logs[model] - logs[control], ddof=1)
            correlation = np.corrcoef(logs[model], logs[control])[0, 1]
            line.append(f"model/{control} sd {spread:.2%}, correlation {correlation:+.2f}")
        print("; ".join(line))
    return 0


if __name__ == "__main__":
    sys.exit(main())
