"""A stand-in server process for the process-supervision tests: ``python fake_server.py PORT MODE``.

MODE ``healthy`` answers 200 on every path, ``unhealthy`` answers 503 forever, ``crash`` prints a
reason and exits with status 3 before listening. A healthy or unhealthy one also starts a child
process of its own, so the tests can check that stopping a server stops its whole process group.
"""

from __future__ import annotations

import subprocess
import sys
from http.server import BaseHTTPRequestHandler, HTTPServer

from modelperf.serve.process import exit_with_parent


def main() -> None:
    port, mode = int(sys.argv[1]), sys.argv[2]
    exit_with_parent()
    if mode == "crash":
        print("fatal: the weights are corrupt", flush=True)
        sys.exit(3)
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
    print(f"child {child.pid}", flush=True)
    status = 200 if mode == "healthy" else 503

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(status)
            self.end_headers()

        def log_message(self, format: str, *args: object) -> None:
            pass

    HTTPServer(("127.0.0.1", port), Handler).serve_forever()


if __name__ == "__main__":
    main()
