"""One unary gRPC call with gRPC C-core (Debian's python3-grpcio), bytes in and out.

argv: port, method path, compression ("none" or "gzip"); the request comes as hex on stdin.
Prints the response as hex, or "ERROR <status code name> <details>".
"""
import sys

import grpc

port, path, compression = sys.argv[1:4]
request_hex = sys.stdin.read().strip()
with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
    call = channel.unary_unary(path, request_serializer=None, response_deserializer=None)
    try:
        response = call(
            bytes.fromhex(request_hex),
            timeout=30,
            compression=grpc.Compression.Gzip if compression == "gzip" else grpc.Compression.NoCompression,
        )
        print(response.hex())
    except grpc.RpcError as e:
        print(f"ERROR {e.code().name} {e.details()}")
