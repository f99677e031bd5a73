#!/usr/bin/env python3
"""Checks, against a running llama.cpp server, each part of its HTTP interface the gateway's LLM
client relies on (daemon/src/agent/llm/wire.rs and llm.rs), with the shapes the client sends.

    wire_check.py URL [--key-env VAR] [--model NAME]

Prints one line per check (`ok`, `FAIL` or `note`) and exits 1 when any check failed. Uses the
Python standard library only.
"""

import argparse
import json
import os
import socket
import sys
import time
import urllib.error
import urllib.request

failures = []


def say(verdict, what, detail=""):
    print(f"  {verdict:<4}  {what}" + (f": {detail}" if detail else ""), flush=True)
    if verdict == "FAIL":
        failures.append(what)


class Server:
    def __init__(self, base, key, model):
        base = base.rstrip("/")
        if base.endswith("/v1"):
            base = base[:-3]
        self.base = base
        self.key = key
        self.model = model

    def request(self, method, path, body=None, timeout=120):
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(self.base + path, data=data, method=method)
        req.add_header("content-type", "application/json")
        if self.key:
            req.add_header("authorization", "Bearer " + self.key)
        try:
            with urllib.request.urlopen(req, timeout=timeout) as r:
                return r.status, r.read()
        except urllib.error.HTTPError as e:
            return e.code, e.read()

    def json(self, method, path, body=None, timeout=120):
        status, raw = self.request(method, path, body, timeout)
        try:
            return status, json.loads(raw)
        except ValueError:
            return status, raw.decode(errors="replace")[:300]

    def chat(self, messages, tools=None, max_tokens=32, timeout=300, **extra):
        body = {
            "model": self.model,
            "messages": messages,
            "max_tokens": max_tokens,
            "temperature": 0.2,
            "stream": False,
        }
        if tools:
            body["tools"] = tools
            body["tool_choice"] = "auto"
        body.update(extra)
        return self.json("POST", "/v1/chat/completions", body, timeout)


TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "current_readings",
            "description": "The latest reading of each sensor of a room, floor or kind.",
            "parameters": {
                "type": "object",
                "properties": {
                    "room": {"type": "string", "enum": ["101", "205", "301"]},
                    "kind": {"type": "string", "enum": ["temperature", "humidity", "co2"]},
                },
                "required": ["room"],
            },
        },
    },
    {
        "type": "function",
        "function": {
            "name": "alarms",
            "description": "The building's alarms.",
            "parameters": {
                "type": "object",
                "properties": {
                    "state": {"type": "string", "enum": ["open", "unacknowledged", "all"]},
                },
            },
        },
    },
]

SYSTEM = {"role": "system", "content": "You are the on-site assistant of a building."}
QUESTION = {"role": "user", "content": "What is the temperature in room 301?"}


def slot_busy(srv):
    """Whether a slot is generating (`GET /slots`); None when the server does not tell."""
    status, slots = srv.json("GET", "/slots", timeout=10)
    if status != 200 or not isinstance(slots, list):
        return None
    return any(s.get("is_processing") for s in slots if isinstance(s, dict))


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("url")
    ap.add_argument("--key-env")
    ap.add_argument("--model", default="koboldcpp")
    args = ap.parse_args()
    key = os.environ.get(args.key_env) if args.key_env else None
    srv = Server(args.url, key, args.model)
    print(f"llama.cpp server wire checks against {srv.base}")

    # 1. The probe: /api/extra/version is Koboldcpp's; a llama.cpp server must not answer it
    #    like Koboldcpp, and must list its model at /v1/models.
    status, body = srv.json("GET", "/api/extra/version", timeout=10)
    if status == 200 and isinstance(body, dict) and "result" in body:
        say("FAIL", "GET /api/extra/version", f"answers like Koboldcpp: {body}")
    else:
        say("ok", "GET /api/extra/version is not Koboldcpp's", f"HTTP {status}")
    status, body = srv.json("GET", "/v1/models", timeout=10)
    if status == 200 and isinstance(body, dict) and isinstance(body.get("data"), list):
        say("ok", "GET /v1/models", f"{[m.get('id') for m in body['data']][:3]}")
    else:
        say("FAIL", "GET /v1/models", f"HTTP {status} {str(body)[:200]}")
    status, body = srv.json("GET", "/props", timeout=10)
    n_ctx = None
    if status == 200 and isinstance(body, dict):
        n_ctx = (body.get("default_generation_settings") or {}).get("n_ctx") or body.get("n_ctx")
        caps = body.get("chat_template_caps") or {}
        say("ok" if n_ctx else "FAIL", "GET /props context", f"n_ctx {n_ctx}")
        if caps:
            say("note", "chat template", f"supports_tools {caps.get('supports_tools')}, "
                f"supports_tool_calls {caps.get('supports_tool_calls')}")
    else:
        say("note", "GET /props", f"HTTP {status}: the client budgets 8192 tokens or [agent.llm] context_tokens")

    # 2. Token counts: POST /tokenize as the client sends it.
    status, body = srv.json("POST", "/tokenize", {"content": "Какая сейчас температура в 205?", "add_special": True}, timeout=10)
    if status == 200 and isinstance(body, dict) and isinstance(body.get("tokens"), list) and body["tokens"]:
        say("ok", "POST /tokenize", f"{len(body['tokens'])} tokens for a Russian question")
    else:
        say("FAIL", "POST /tokenize", f"HTTP {status} {str(body)[:200]}")

    # 3. A chat request without and with tools: the tools must reach the prompt (llama-server
    #    without --jinja, or a template that drops them, answers 200 and ignores them).
    status, plain = srv.chat([SYSTEM, QUESTION])
    plain_tokens = (plain.get("usage") or {}).get("prompt_tokens") if isinstance(plain, dict) else None
    if status == 200 and isinstance(plain, dict) and plain.get("choices"):
        say("ok", "POST /v1/chat/completions without tools", f"{plain_tokens} prompt tokens")
    else:
        say("FAIL", "POST /v1/chat/completions without tools", f"HTTP {status} {str(plain)[:300]}")
    status, with_tools = srv.chat([SYSTEM, QUESTION], tools=TOOLS, max_tokens=64)
    tools_tokens = (with_tools.get("usage") or {}).get("prompt_tokens") if isinstance(with_tools, dict) else None
    if status != 200 or not isinstance(with_tools, dict):
        say("FAIL", "POST /v1/chat/completions with tools", f"HTTP {status} {str(with_tools)[:300]}")
    elif plain_tokens is not None and tools_tokens is not None and tools_tokens <= plain_tokens + 40:
        say("FAIL", "tools reach the prompt",
            f"{tools_tokens} prompt tokens with tools, {plain_tokens} without: the server ignores "
            "`tools` (llama-server needs --jinja and a chat template that describes tools)")
    else:
        msg = with_tools["choices"][0].get("message", {})
        calls = msg.get("tool_calls") or []
        say("ok", "POST /v1/chat/completions with tools",
            f"{tools_tokens} prompt tokens; the model answered with "
            + (f"tool call {calls[0].get('function', {}).get('name')}" if calls else "text"))
        usage = with_tools.get("usage") or {}
        if not isinstance(usage.get("completion_tokens"), int):
            say("FAIL", "usage", f"no completion_tokens in {usage}")

    # 4. A conversation with a tool call and its result, as the client sends it: the assistant
    #    message carries `content: ""` beside `tool_calls`, arguments as a JSON string.
    history = [
        SYSTEM,
        QUESTION,
        {"role": "assistant", "content": "", "tool_calls": [{
            "id": "call_1", "type": "function",
            "function": {"name": "current_readings", "arguments": "{\"room\": \"301\"}"}}]},
        {"role": "tool", "tool_call_id": "call_1",
         "content": "{\"readings\":[{\"sensor\":\"f3.r301.temperature\",\"value\":21.4,\"unit\":\"°C\",\"age_s\":12}]}"},
    ]
    status, body = srv.chat(history, tools=TOOLS, max_tokens=48)
    if status == 200 and isinstance(body, dict) and body.get("choices"):
        say("ok", "a tool call and its result in the history (content \"\")")
    else:
        say("FAIL", "a tool call and its result in the history (content \"\")", f"HTTP {status} {str(body)[:300]}")
    history[2] = dict(history[2], content=None)
    status, body = srv.chat(history, tools=TOOLS, max_tokens=8)
    say("note", "the same with content null (the client never sends it)", f"HTTP {status}")

    # 5. A prompt over the context: 400 with a text the client recognises as an overflow
    #    (`is_context_overflow` in daemon/src/agent/turn.rs: "context" and "exceed").
    if n_ctx:
        big = {"role": "user", "content": "word " * (int(n_ctx) + 500)}
        status, body = srv.chat([big], max_tokens=4, timeout=600)
        text = json.dumps(body).lower() if not isinstance(body, str) else body.lower()
        if status in (400, 413) and "context" in text and "exceed" in text:
            say("ok", "a prompt over the context is refused as such", f"HTTP {status}: {str(body)[:160]}")
        else:
            say("FAIL", "a prompt over the context is refused as such", f"HTTP {status} {str(body)[:300]}")

    # 6. Abort: the client gives up on a request by closing its connection (llama.cpp has no
    #    abort endpoint); the server must stop that generation at once, or the next question
    #    waits behind it.
    body = json.dumps({"model": srv.model, "messages": [{"role": "user", "content": "Tell a very long story."}],
                       "max_tokens": 4000, "ignore_eos": True, "stream": False}).encode()
    host, port = srv.base.split("://", 1)[1].split("/", 1)[0].rsplit(":", 1)
    head = (f"POST /v1/chat/completions HTTP/1.1\r\nHost: {host}:{port}\r\ncontent-type: application/json\r\n"
            + (f"authorization: Bearer {key}\r\n" if key else "")
            + f"content-length: {len(body)}\r\nconnection: close\r\n\r\n").encode()
    sock = socket.create_connection((host, int(port)), timeout=10)
    sock.sendall(head + body)
    # Few requests meanwhile: llama.cpp notices a closed connection when its wait for results
    # times out (about a second), and other requests' results keep resetting that wait.
    time.sleep(3.0)
    busy_before = slot_busy(srv)
    sock.close()
    closed = time.monotonic()
    time.sleep(3.0)
    busy_after = slot_busy(srv)
    status, _ = srv.chat([{"role": "user", "content": "Hi"}], max_tokens=4, timeout=300)
    next_after = time.monotonic() - closed
    if busy_before is None:
        # No /slots: the next request must not have waited for 4000 tokens.
        verdict = "ok" if status == 200 and next_after < 20 else "FAIL"
        say(verdict, "a closed connection stops its generation",
            f"(no /slots) the next request answered {next_after:.1f} s after the close")
    elif busy_before and busy_after is False and status == 200:
        say("ok", "a closed connection stops its generation",
            f"generating before the close, idle 3 s after it; the next request answered "
            f"{next_after:.1f} s after the close")
    else:
        say("FAIL", "a closed connection stops its generation",
            f"generating before the close: {busy_before}, 3 s after: {busy_after}; the next "
            f"request answered {next_after:.1f} s after the close (HTTP {status})")

    print(f"wire checks: {'FAILED: ' + ', '.join(failures) if failures else 'all passed'}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
