"""A real proxyless xDS client: gRPC C-core through Debian's python3-grpcio.

Run with /usr/bin/python3 (Debian's interpreter sees python3-grpcio). The xDS bootstrap comes from
GRPC_XDS_BOOTSTRAP_CONFIG, read once per process, hence one process per client.
Driven by JSON lines, one command per stdin line, one reply per stdout line:
  {"id":1,"op":"call","target":"xds:///echo","count":20,"timeoutMs":5000,"method":"/meshlet.test.Echo/Echo"}
    -> {"id":1,"results":[{"ok":true,"backend":"b1"},{"ok":false,"code":14,"details":"..."}]}
  {"id":2,"op":"close"}   closes every channel (C-core then ends its ADS stream), replies, exits.
On start it prints {"ready":true}. Methods are generic: raw bytes in and out, no proto compilation.
"""

import json
import sys

try:
    import grpc
except ImportError:
    sys.stderr.write(
        "c-core-client.py: cannot import grpc. Install Debian's gRPC for Python "
        "(apt-get install -y python3-grpcio) and run this script with /usr/bin/python3.\n"
    )
    sys.exit(2)

DEFAULT_METHOD = "/meshlet.test.Echo/Echo"

channels = {}


def channel_for(target):
    channel = channels.get(target)
    if channel is None:
        channel = grpc.insecure_channel(target)
        # Without an RPC in flight nothing polls C-core's completion queue from Python, so xDS
        # responses would only be read (and ACKed/NACKed) at the next RPC. A connectivity
        # subscription makes grpcio run a background thread that keeps the channel serviced, as an
        # application with a long-lived channel would.
        channel.subscribe(lambda _state: None, try_to_connect=True)
        channels[target] = channel
    return channel


def call(command):
    channel = channel_for(command["target"])
    method = channel.unary_unary(
        command.get("method", DEFAULT_METHOD),
        request_serializer=None,
        response_deserializer=None,
    )
    timeout = command.get("timeoutMs", 5000) / 1000.0
    results = []
    for _ in range(command.get("count", 1)):
        try:
            response = method(b"", timeout=timeout)
            results.append({"ok": True, "backend": response.decode("utf-8")})
        except grpc.RpcError as error:
            # grpc.StatusCode values are (int, str) tuples; the int is the wire code.
            results.append({"ok": False, "code": error.code().value[0], "details": error.details()})
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
