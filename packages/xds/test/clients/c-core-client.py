"""A real proxyless gRPC client: gRPC C-core through Debian's python3-grpcio (run with /usr/bin/python3).

The bootstrap comes from GRPC_XDS_BOOTSTRAP_CONFIG, read once per process. Driven by JSON lines:
  {"id":1,"op":"call","target":"xds:///echo.test.svc.cluster.local:7070","count":20,
   "method":"/meshlet.test.Echo/Echo","metadata":{"x-user":"jason"},"timeoutMs":5000,"credentials":"xds"}
    -> {"id":1,"results":[{"ok":true,"backend":"v1","ms":3},{"ok":false,"code":14,"details":"...","ms":2}]}
  {"id":2,"op":"close"}
"credentials": "insecure" (default) or "xds" (xDS channel credentials, insecure fallback).
"""

import json
import grpc.experimental  # noqa: F401  (insecure channel credentials in grpcio 1.51)
import sys
import time

try:
    import grpc
except ImportError:
    sys.stderr.write("c-core-client.py: apt-get install -y python3-grpcio and run with /usr/bin/python3\n")
    sys.exit(2)

channels = {}


def channel_for(target, credentials):
    key = credentials + "|" + target
    channel = channels.get(key)
    if channel is None:
        if credentials == "xds":
            # grpcio 1.51 has insecure channel credentials under grpc.experimental only.
            creds = grpc.xds_channel_credentials(grpc.experimental.insecure_channel_credentials())
            channel = grpc.secure_channel(target, creds)
        else:
            channel = grpc.insecure_channel(target)
        # Without an RPC in flight nothing polls C-core's completion queue from Python, so xDS
        # responses would only be read (and ACKed/NACKed) at the next RPC. A connectivity
        # subscription makes grpcio run a background thread that keeps the channel serviced, as an
        # application with a long-lived channel would.
        channel.subscribe(lambda _state: None, try_to_connect=True)
        channels[key] = channel
    return channel


def call(command):
    channel = channel_for(command["target"], command.get("credentials", "insecure"))
    method = channel.unary_unary(command.get("method", "/meshlet.test.Echo/Echo"))
    timeout = command.get("timeoutMs", 5000) / 1000.0
    metadata = list((command.get("metadata") or {}).items())
    results = []
    for _ in range(command.get("count", 1)):
        started = time.monotonic()
        try:
            response = method(b"", timeout=timeout, metadata=metadata)
            results.append({"ok": True, "backend": response.decode("utf-8"), "ms": round((time.monotonic() - started) * 1000)})
        except grpc.RpcError as error:
            # grpc.StatusCode values are (int, str) tuples; the int is the wire code.
            results.append({
                "ok": False,
                "code": error.code().value[0],
                "details": error.details(),
                "ms": round((time.monotonic() - started) * 1000),
            })
    return {"results": results}


def close_all():
    for channel in channels.values():
        channel.close()
    channels.clear()
    return {"closed": True}


def reply(message):
    sys.stdout.write(json.dumps(message) + "\n")
    sys.stdout.flush()


def main():
    reply({"ready": True})
    for line in sys.stdin:
        if not line.strip():
            continue
        try:
            command = json.loads(line)
        except ValueError as error:
            reply({"error": "invalid JSON command: %s" % error})
            continue
        op = command.get("op")
        if op == "call":
            result = call(command)
        elif op == "close":
            result = close_all()
        else:
            result = {"error": "unknown op %r" % (op,)}
        reply(dict({"id": command.get("id")}, **result))
        if op == "close":
            break
    close_all()


if __name__ == "__main__":
    main()
