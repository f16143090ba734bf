"""Run llama-cpp-python's own OpenAI-compatible server with the Llama tests' model settings.

``python -m modelperf.serve.llama_launcher --model F.gguf --threads N --context C --repack on|off
--port P`` builds the server's app exactly as ``python -m llama_cpp.server`` does
(``llama_cpp.server.app.create_app`` served by uvicorn) and changes three things only:

- the model loads with llama.cpp's weight repacking as chosen (``llama_cpp.server`` has no setting
  for it, and on Intel AMX CPUs the repacked path crashes on the first evaluation), through the
  same load-time parameter switch the in-process Llama adapter uses;
- ``interrupt_requests`` is off: by default the server ends a stream early as soon as another
  request waits, which would make queued load look like short, fast answers;
- ``logits_all`` is off, as a server computes the output layer for the last position only (the
  in-process adapter's serving calls do the same).

It listens on 127.0.0.1 only and exits by itself when the process that started it is gone.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from modelperf.serve.process import HOST, exit_with_parent

__all__ = ["main"]


def _arguments(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m modelperf.serve.llama_launcher", description=__doc__)
    parser.add_argument("--model", required=True, help="path of the .gguf file")
    parser.add_argument("--alias", default="llama", help="the model name clients send (default: llama)")
    parser.add_argument("--threads", type=int, required=True, help="llama.cpp threads")
    parser.add_argument("--context", type=int, default=2048, help="context size in tokens (default: 2048)")
    parser.add_argument("--repack", choices=("on", "off"), required=True, help="llama.cpp weight repacking")
    parser.add_argument("--port", type=int, required=True, help="TCP port on 127.0.0.1")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> None:
    arguments = _arguments(argv)
    exit_with_parent()
    import uvicorn
    from llama_cpp.server.app import create_app
    from llama_cpp.server.settings import ModelSettings, ServerSettings

    from modelperf.models.repack import check_repack_supported, model_params, repack_fields

    repack = arguments.repack == "on"
    if not repack:
        check_repack_supported()
    server = ServerSettings(host=HOST, port=arguments.port, interrupt_requests=False)
    model = ModelSettings(model=arguments.model, model_alias=arguments.alias, n_threads=arguments.threads,
                          n_threads_batch=arguments.threads, n_ctx=arguments.context, logits_all=False, seed=0,
                          verbose=False)
    with model_params(**repack_fields(repack)):  # the model loads inside create_app
        app = create_app(server_settings=server, model_settings=[model])
    print(f"modelperf: serving {arguments.model} as {arguments.alias!r} on {HOST}:{arguments.port} "
          f"({arguments.threads} thread(s), context {arguments.context}, repack {arguments.repack})", flush=True)
    uvicorn.run(app, host=HOST, port=arguments.port, log_level="info", access_log=False)


if __name__ == "__main__":
    main()
