#!/usr/bin/env python3
"""Captures the seed corpus of fuzz_resp: real replies of a real redis-server.

Starts redis-server on a free 127.0.0.1 port with a temporary directory,
sends each command below in RESP2 and in RESP3 (after HELLO 3), and writes
the raw bytes of every reply to tests/fuzzing/corpus/resp/<protocol>-<name>.
Run it again after changing the command list:

    tests/fuzzing/capture_resp.py
"""
import os
import socket
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "corpus", "resp")

SETUP = [
    ["SET", "s", "hello"],
    ["SET", "bin", "a\r\nb\x00c"],
    ["RPUSH", "l", "1", "two", "3"],
    ["HSET", "h", "f1", "v1", "f2", "v2"],
    ["SADD", "set", "a", "b"],
    ["ZADD", "z", "1.5", "m1", "2", "m2"],
    ["SET", "n", "41"],
    ["XADD", "x", "1-1", "k", "v"],
]

COMMANDS = {
    "ping": ["PING"],
    "get": ["GET", "s"],
    "get-binary": ["GET", "bin"],
    "get-missing": ["GET", "missing"],
    "incr": ["INCR", "n"],
    "lrange": ["LRANGE", "l", "0", "-1"],
    "hgetall": ["HGETALL", "h"],
    "hmget-partial": ["HMGET", "h", "f1", "nope"],
    "smembers": ["SMEMBERS", "set"],
    "zrange-withscores": ["ZRANGE", "z", "0", "-1", "WITHSCORES"],
    "zscore": ["ZSCORE", "z", "m1"],
    "incrbyfloat": ["INCRBYFLOAT", "f", "0.1"],
    "exists": ["EXISTS", "s", "missing"],
    "wrongtype": ["HGET", "s", "f"],
    "unknown-command": ["NOSUCHCOMMAND"],
    "noscript": ["EVALSHA", "0" * 40, "0"],
    "eval-table": ["EVAL", "return {1, 'two', {3, false}, redis.status_reply('OK'), redis.error_reply('ERR nested')}", "0"],
    "eval-bool": ["EVAL", "return true", "0"],
    "eval-double": ["EVAL", "redis.setresp(3); return {double=3.25}", "0"],
    "eval-map": ["EVAL", "redis.setresp(3); return {map={a=1}}", "0"],
    "eval-bignum": ["EVAL", "redis.setresp(3); return {big_number='123456789012345678901234567890'}", "0"],
    "eval-verbatim": ["EVAL", "redis.setresp(3); return redis.call('LOLWUT', 'VERSION', '5', '1', '1', '1')", "0"],
    "config-get": ["CONFIG", "GET", "maxmemory*"],
    "xrange": ["XRANGE", "x", "-", "+"],
    "client-info": ["CLIENT", "INFO"],
    "info-keyspace": ["INFO", "keyspace"],
    "command-docs-get": ["COMMAND", "DOCS", "GET"],
    "memory-doctor": ["MEMORY", "DOCTOR"],
    "script-load": ["SCRIPT", "LOAD", "return 1"],
    "multi-exec": None,  # MULTI / INCR / EXEC: the EXEC reply
}


def encode(args):
    out = b"*%d\r\n" % len(args)
    for a in args:
        a = a.encode() if isinstance(a, str) else a
        out += b"$%d\r\n%s\r\n" % (len(a), a)
    return out


def read_reply(sock):
    """Reads until the server stops sending for a moment (one reply per command)."""
    sock.settimeout(0.3)
    data = b""
    while True:
        try:
            chunk = sock.recv(65536)
        except socket.timeout:
            return data
        if not chunk:
            return data
        data += chunk


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def main():
    os.makedirs(OUT, exist_ok=True)
    port = free_port()
    with tempfile.TemporaryDirectory() as tmp:
        server = subprocess.Popen(
            ["/usr/bin/redis-server", "--port", str(port), "--bind", "127.0.0.1", "--dir", tmp,
             "--save", "", "--appendonly", "no"], stdout=subprocess.DEVNULL)
        try:
            for _ in range(200):
                try:
                    socket.create_connection(("127.0.0.1", port)).close()
                    break
                except OSError:
                    time.sleep(0.02)
            for proto in ("resp2", "resp3"):
                sock = socket.create_connection(("127.0.0.1", port))
                info = sock.send(encode(["INFO", "server"])) and read_reply(sock)
                if b"process_id:%d" % server.pid not in info:
                    sys.exit("the server on port %d is not the one started" % port)
                if proto == "resp3":
                    sock.sendall(encode(["HELLO", "3"]))
                    write(proto, "hello", read_reply(sock))
                sock.sendall(encode(["FLUSHALL"]))
                read_reply(sock)
                for cmd in SETUP:
                    sock.sendall(encode(cmd))
                    read_reply(sock)
                for name, cmd in COMMANDS.items():
                    if cmd is None:
                        sock.sendall(encode(["MULTI"]) + encode(["INCR", "n"]) + encode(["GET", "s"]) + encode(["EXEC"]))
                    else:
                        sock.sendall(encode(cmd))
                    write(proto, name, read_reply(sock))
                if proto == "resp3":
                    sock.sendall(encode(["CLIENT", "TRACKING", "on"]) + encode(["GET", "s"]))
                    read_reply(sock)
                    other = socket.create_connection(("127.0.0.1", port))
                    other.sendall(encode(["SET", "s", "changed"]))
                    read_reply(other)
                    other.close()
                    write(proto, "push-invalidate", read_reply(sock))
                    sock.sendall(encode(["SUBSCRIBE", "ch"]))
                    write(proto, "push-subscribe", read_reply(sock))
                sock.close()
        finally:
            server.terminate()
            server.wait()


def write(proto, name, data):
    if not data:
        sys.exit("no reply for %s %s" % (proto, name))
    with open(os.path.join(OUT, "%s-%s" % (proto, name)), "wb") as f:
        f.write(data)


if __name__ == "__main__":
    main()
