# A fake provider plugin for the host's integration tests. Behaviour is picked with FAKE_MODE
# (comma-separated); every message received is appended to $FAKE_STATE/calls.jsonl so that a
# test can check what a plugin (and its restarted successor) saw.
import json
import os
import signal
import sys
import time

MODE = set(filter(None, os.environ.get("FAKE_MODE", "").split(",")))
STATE = os.environ.get("FAKE_STATE", "")
NAME = os.environ.get("FAKE_NAME", "fake")
PID = os.getpid()

SCHEMA = {"options": [
    {"name": "region", "env": "FAKE_REGION", "kind": "string"},
    {"name": "pkgName", "env": "CARGO_PKG_NAME", "kind": "string"},
    {"name": "apiKey", "env": "FAKE_API_KEY", "kind": "string", "secret": True},
]}
CAPS = {"cancel": True, "progress": True,
        "maxConcurrentRequests": 1 if "serial" in MODE else 4}


def record(kind, **fields):
    fields.update(kind=kind, pid=PID)
    with open(os.path.join(STATE, "calls.jsonl"), "a") as f:
        f.write(json.dumps(fields) + "\n")


def once(flag):
    """True only the first time across restarts."""
    path = os.path.join(STATE, "flag-" + flag)
    if os.path.exists(path):
        return False
    open(path, "w").close()
    return True


def send(obj):
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


def log(text):
    sys.stderr.write(text + "\n")
    sys.stderr.flush()


def result(mid, value):
    send({"jsonrpc": "2.0", "id": mid, "result": value})


def progress(op, instance_id, stage="instanceCreated"):
    params = {"operationId": op, "stage": stage}
    if instance_id is not None:
        params["instanceId"] = instance_id
    send({"jsonrpc": "2.0", "method": "$/progress", "params": params})


def error(mid, code, message, data=None):
    err = {"code": code, "message": message}
    if data is not None:
        err["data"] = data
    send({"jsonrpc": "2.0", "id": mid, "error": err})


if "ignore_term" in MODE:
    signal.signal(signal.SIGTERM, signal.SIG_IGN)

if "dumpenv" in MODE:
    tag = "describe" if "--describe" in sys.argv else "serve"
    with open(os.path.join(STATE, "env-%s.json" % tag), "w") as f:
        json.dump(dict(os.environ), f)
    with open(os.path.join(STATE, "argv-%s.json" % tag), "w") as f:
        json.dump(sys.argv, f)

if "--describe" in sys.argv:
    print(json.dumps({"plugin": {"name": NAME, "version": "0.0.1"}, "protocolVersions": [1],
                      "capabilities": CAPS, "configSchema": SCHEMA}))
    sys.exit(0)

FIRST_PROCESS = once("started")
pending_create = None

log("[INFO] fake plugin starting")
log("[WARN] stderr hello")

for line in sys.stdin:
    msg = json.loads(line)
    method, mid, params = msg.get("method"), msg.get("id"), msg.get("params") or {}
    record(method, id=mid, params={k: v for k, v in params.items() if k not in ("config", "userData")})
    if method == "initialize":
        result(mid, {"protocolVersion": 1, "plugin": {"name": NAME, "version": "0.0.1"},
                     "capabilities": CAPS, "configSchema": SCHEMA})
        if "die_after_init" in MODE:
            log("dying now")
            sys.exit(1)
    elif method == "$/ping":
        result(mid, {})
    elif method == "createInstance":
        op = params["operationId"]
        answer = {"instanceId": "i-" + op[:8], "name": "vm", "ips": ["10.0.0.1"]}
        if "crash_on_create" in MODE:
            log("boom: last words")
            sys.exit(3)
        if "crash_on_create_once" in MODE and once("crash"):
            log("crashing once")
            sys.exit(3)
        if "progress_then_crash_once" in MODE and once("pcrash"):
            progress(op, "i-orphan")
            log("crashing after progress")
            sys.exit(7)
        if "hang" in MODE:
            progress(op, "i-hang")
            continue
        if "cancellable" in MODE:
            pending_create = mid
            continue
        if "odd_error_data" in MODE:
            error(mid, 4, "no capacity", {"instanceId": "i-odd", "retryable": "no"})
            continue
        if "string_error_data" in MODE:
            error(mid, 4, "no capacity", "details")
            continue
        if "progress_then_bad_result" in MODE:
            progress(op, "i-announced")
            result(mid, {"name": "vm", "ips": None})
            continue
        if "progress_then_capacity" in MODE:
            progress(op, "i-cap")
            error(mid, 4, "no capacity")
            continue
        if "progress_flood" in MODE:
            for _ in range(300):
                progress(op, None, "requested")
            progress(op, "i-late")
            progress("op-nobody", None, "requested")
        if "request" in MODE:
            send({"jsonrpc": "2.0", "id": 1, "method": "host/doSomething", "params": {}})
        if "blank" in MODE:
            sys.stdout.write("\n   \n\t\r\n")
        if "spew" in MODE:
            for i in range(150):
                sys.stdout.write("debug print %d\n" % i)
            sys.stdout.flush()
        if "garbage" in MODE:
            sys.stdout.write("this is not json at all\n")
        if "unknown_id" in MODE:
            result(987654, {"instanceId": "i-unknown", "name": "x", "ips": ["10.9.9.9"]})
        if "no_ips" in MODE:
            answer = {"instanceId": "i-noip", "name": "vm", "ips": []}
        if "slow_create" in MODE:
            time.sleep(0.5)
        result(mid, answer)
        if "twice" in MODE:
            result(mid, {"instanceId": "i-second-answer", "name": "vm", "ips": ["10.0.0.2"]})
    elif method == "deleteInstance":
        if "delete_fails_in_first" in MODE and FIRST_PROCESS:
            error(mid, 2, "credentials expired")
        else:
            result(mid, {"deleted": True})
    elif method == "teardown":
        result(mid, None)
    elif method == "$/cancel":
        if pending_create is not None:
            error(pending_create, -32800, "request cancelled", {"instanceId": "i-cancelled"})
            pending_create = None
    elif mid is not None:
        send({"jsonrpc": "2.0", "id": mid, "error": {"code": -32601, "message": "method not found"}})

record("eof")
if "ignore_term" in MODE:
    while True:
        time.sleep(1)
sys.exit(0)
