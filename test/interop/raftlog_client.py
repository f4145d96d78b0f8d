#!/usr/bin/env python3
"""A plain gRPC client of raftlog.v1.RaftLog written in Python: the interop check.

It uses nothing of raftlog's TypeScript code, only proto/raftlog/v1/client.proto:
the message classes are generated at run time with `protoc --python_out` into a
temporary directory, and each method is called by its path with
channel.unary_unary (no gRPC code generator plugin needed).

Needs (Debian): python3-grpcio python3-protobuf protobuf-compiler.

Usage:
  raftlog_client.py --proto-root proto --node n1=127.0.0.1:7001 --node n2=... --node n3=...

Against a running cluster it does: Status of every node (until they agree on a
leader), a Put through each node (a follower forwards), a linearizable Get of
every key from every node, CompareAndSwap (absent → set, wrong expected value,
right expected value), a Put with an empty key (expects INVALID_ARGUMENT), and
Status of every node again once they have applied everything. It prints one
JSON object with what it saw and exits 0; it exits 1 (with a JSON "error") only
when it could not go through the steps at all.
"""
import argparse
import importlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

import grpc

CALL_TIMEOUT_S = 10.0
WAIT_S = 30.0
SERVICE = "raftlog.v1.RaftLog"


def generate_messages(proto_root):
    """Runs protoc on client.proto into a temp dir and imports the generated module."""
    out = tempfile.mkdtemp(prefix="raftlog-py-")
    proto = os.path.join(proto_root, "raftlog", "v1", "client.proto")
    subprocess.run(["protoc", "--python_out=" + out, "-I", proto_root, proto], check=True)
    sys.path.insert(0, out)
    return importlib.import_module("raftlog.v1.client_pb2"), out


class RaftLog:
    """The six unary methods of raftlog.v1.RaftLog on one channel."""

    def __init__(self, address, pb):
        self.address = address
        self.channel = grpc.insecure_channel(address)

        def method(name, request, reply):
            return self.channel.unary_unary(
                "/%s/%s" % (SERVICE, name),
                request_serializer=request.SerializeToString,
                response_deserializer=reply.FromString,
            )

        self.Put = method("Put", pb.PutRequest, pb.WriteReply)
        self.Get = method("Get", pb.GetRequest, pb.GetReply)
        self.Delete = method("Delete", pb.DeleteRequest, pb.DeleteReply)
        self.CompareAndSwap = method("CompareAndSwap", pb.CompareAndSwapRequest, pb.CompareAndSwapReply)
        self.Append = method("Append", pb.AppendRecordRequest, pb.WriteReply)
        self.Status = method("Status", pb.StatusRequest, pb.StatusReply)

    def close(self):
        self.channel.close()


def status_json(reply):
    return {
        "node": reply.node,
        "role": reply.role,
        "term": reply.term,
        "leader": reply.leader,
        "commitIndex": reply.commit_index,
        "appliedIndex": reply.applied_index,
        "lastLogIndex": reply.last_log_index,
        "members": list(reply.members),
        "digest": reply.digest,
    }


def wait_until(what, check):
    """Polls check() until it returns something truthy; raises after WAIT_S."""
    deadline = time.monotonic() + WAIT_S
    last = None
    while True:
        try:
            value = check()
            if value:
                return value
        except grpc.RpcError as error:
            last = "%s: %s" % (error.code().name, error.details())
        if time.monotonic() > deadline:
            raise RuntimeError("timed out after %ss waiting for %s%s" % (WAIT_S, what, "" if last is None else " (" + last + ")"))
        time.sleep(0.1)


def run(nodes, pb):
    clients = {node: RaftLog(address, pb) for node, address in nodes}
    ids = [node for node, _ in nodes]
    summary = {}
    try:
        def statuses():
            return {node: clients[node].Status(pb.StatusRequest(), timeout=CALL_TIMEOUT_S) for node in ids}

        def agreed_leader():
            seen = statuses()
            leaders = {s.leader for s in seen.values()}
            if len(leaders) == 1 and "" not in leaders and any(s.role == "leader" for s in seen.values()):
                return leaders.pop()
            return None

        leader = wait_until("a leader every node follows", agreed_leader)
        summary["leader"] = leader

        # A Put through each node: a follower forwards to the leader, and every reply names it.
        puts = []
        for node in ids:
            key = ("py/" + node).encode()
            value = ("from python via " + node).encode()
            reply = clients[node].Put(pb.PutRequest(key=key, value=value), timeout=CALL_TIMEOUT_S)
            puts.append({"node": node, "key": key.decode(), "value": value.decode(), "index": reply.position.index,
                         "term": reply.position.term, "leader": reply.leader})
        summary["puts"] = puts

        # Every key read back from every node with a linearizable Get.
        reads = []
        for put in puts:
            for node in ids:
                reply = clients[node].Get(
                    pb.GetRequest(key=put["key"].encode(), consistency=pb.READ_CONSISTENCY_LINEARIZABLE),
                    timeout=CALL_TIMEOUT_S)
                reads.append({"node": node, "key": put["key"], "found": reply.found, "value": reply.value.decode(),
                              "readIndex": reply.read_index, "leader": reply.leader})
        summary["reads"] = reads

        # CompareAndSwap through the last node: set if absent, refused on a wrong expected value, done on the right one.
        cas_node = clients[ids[-1]]
        key = b"py/cas"
        steps = [
            ("absent", pb.CompareAndSwapRequest(key=key, expect_absent=True, value=b"v1")),
            ("wrong-expected", pb.CompareAndSwapRequest(key=key, expected=b"nope", value=b"v2")),
            ("right-expected", pb.CompareAndSwapRequest(key=key, expected=b"v1", value=b"v2")),
        ]
        cas = []
        for name, request in steps:
            reply = cas_node.CompareAndSwap(request, timeout=CALL_TIMEOUT_S)
            cas.append({"step": name, "succeeded": reply.succeeded, "found": reply.found,
                        "current": reply.current.decode(), "index": reply.position.index, "leader": reply.leader})
        summary["cas"] = cas

        # Bad input: an empty key is INVALID_ARGUMENT, with a message.
        try:
            clients[ids[0]].Put(pb.PutRequest(key=b"", value=b"v"), timeout=CALL_TIMEOUT_S)
            summary["emptyKeyPut"] = {"code": "OK", "details": ""}
        except grpc.RpcError as error:
            summary["emptyKeyPut"] = {"code": error.code().name, "details": error.details()}

        # Status of every node, once all have applied the last write.
        last_index = max(step["index"] for step in cas)

        def converged():
            seen = statuses()
            applied = {s.applied_index for s in seen.values()}
            return seen if len(applied) == 1 and applied.pop() >= last_index else None

        summary["statuses"] = [status_json(s) for s in wait_until("every node applied index %d" % last_index, converged).values()]
        return summary
    finally:
        for client in clients.values():
            client.close()


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--proto-root", required=True, help="directory holding raftlog/v1/client.proto")
    parser.add_argument("--node", action="append", required=True, help="ID=HOST:PORT, once per node")
    args = parser.parse_args()
    nodes = []
    for spec in args.node:
        node, _, address = spec.partition("=")
        if not node or not address:
            parser.error("--node must be ID=HOST:PORT, got %r" % spec)
        nodes.append((node, address))

    pb, generated = generate_messages(args.proto_root)
    try:
        summary = run(nodes, pb)
    except Exception as error:  # report why, as JSON, for the test to show
        print(json.dumps({"error": "%s: %s" % (type(error).__name__, error)}))
        return 1
    finally:
        shutil.rmtree(generated, ignore_errors=True)
    summary["grpcVersion"] = grpc.__version__
    print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
