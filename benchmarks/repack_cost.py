"""What llama.cpp's weight repacking (``--llama-repack``) changes in speed on this machine.

Each sample is a fresh process (a model's speed differs from one process to the next) that loads the
GGUF through a bare ``llama_cpp.Llama``, repacking on or off, and times a prefill and a decode of single
tokens with ``llama_cpp`` alone (no plugin code in the timed loop). On and off alternate, so whatever the
machine does meanwhile touches both alike. Prints tokens/s per setting and the off/on ratio of each pair.

    python benchmarks/repack_cost.py --pairs 6 --threads 1
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys

_CHILD = r"""
import json, sys, time
import llama_cpp, llama_cpp.llama_cpp as native
path, threads, repack, prefill, decode = sys.argv[1], int(sys.argv[2]), sys.argv[3] == "on", int(sys.argv[4]), int(sys.argv[5])
original = native.llama_model_default_params
def params():
    p = original()
    p.use_extra_bufts = repack
    return p
native.llama_model_default_params = params
llm = llama_cpp.Llama(model_path=path, n_ctx=prefill + decode + 8, n_threads=threads, n_threads_batch=threads,
                      n_batch=prefill, verbose=False)
assert bool(llm.model_params.use_extra_bufts) is repack
tokens = (llm.tokenize(b"The history of the city begins with a small market by the river.") * 64)[:prefill]
best_prefill = best_decode = 0.0
for _ in range(3):
    llm.reset()
    start = time.perf_counter(); llm.eval(tokens); best_prefill = max(best_prefill, prefill / (time.perf_counter() - start))
    start = time.perf_counter()
    for step in range(decode):  # the token's identity does not change the cost of a decode step
        llm.eval([tokens[step]])
    best_decode = max(best_decode, decode / (time.perf_counter() - start))
print(json.dumps({"prefill_tps": best_prefill, "decode_tps": best_decode}))
"""


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=6, help="fresh-process pairs (on, off) to run (default 6)")
    parser.add_argument("--threads", type=int, default=1, help="llama.cpp threads (default 1)")
    parser.add_argument("--prefill", type=int, default=256, help="prompt tokens evaluated at once (default 256)")
    parser.add_argument("--decode", type=int, default=64, help="greedy tokens decoded one by one (default 64)")
    parser.add_argument("--model", help="GGUF file (default: the embedded SmolLM2-135M Q4_1)")
    args = parser.parse_args()
    if args.model is None:
        from modelperf.models.embedded import smollm_gguf_path

        args.model = str(smollm_gguf_path())
    samples: dict[str, list[dict[str, float]]] = {"on": [], "off": []}
    for pair in range(args.pairs):
        for repack in ("on", "off") if pair % 2 == 0 else ("off", "on"):
            done = subprocess.run([sys.executable, "-c", _CHILD, args.model, str(args.threads), repack,
                                   str(args.prefill), str(args.decode)], capture_output=True, text=True, check=True)
            samples[repack].append(json.loads(done.stdout.strip().splitlines()[-1]))
            print(f"pair {pair + 1}/{args.pairs} repack {repack}: {samples[repack][-1]}", file=sys.stderr)
    print(f"{args.model}, {args.threads} thread(s), {args.pairs} fresh processes per setting, median of best-of-3")
    for figure in ("prefill_tps", "decode_tps"):
        on = statistics.median(s[figure] for s in samples["on"])
        off = statistics.median(s[figure] for s in samples["off"])
        # Each pair ran back to back, so its ratio is spared most of the machine's drift over the run.
        paired = sorted(b[figure] / a[figure] for a, b in zip(samples["on"], samples["off"]))
        print(f"{figure}: repack on {on:.1f} tok/s, off {off:.1f} tok/s; off/on per pair: median "
              f"x{statistics.median(paired):.3f} (range x{paired[0]:.3f}-x{paired[-1]:.3f})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
