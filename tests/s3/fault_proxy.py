#!/usr/bin/env python3
"""A fault-injecting HTTP proxy on loopback, in front of an S3-protocol server, for walvault's
S3 fault tests and benchmarks. It forwards every request unchanged (the Host header included,
so SigV4 signatures stay valid) and answers from the upstream, unless a fault is set:

  pass          forward everything (the start)
  slowdown:N    every Nth request is answered 503 SlowDown, the others are forwarded
  fail-reads    GET and HEAD are answered 500 InternalError; writes are forwarded
  stall         accept the connection, read nothing and never answer (until the mode changes)

and, whatever the fault, --delay-ms D waits D ms before forwarding each request (an added
round trip, what a distant object store costs). The mode is changed and read at
/__proxy__/mode (PUT with the mode as the body, GET), the delay set at /__proxy__/delay-ms (PUT);
/__proxy__/stats answers JSON counts.
Each request is logged on stderr as "METHOD PATH -> STATUS".

usage: fault_proxy.py --listen PORT --upstream http://127.0.0.1:PORT [--delay-ms D]
                      [--tls-cert FILE --tls-key FILE]
"""
import argparse
import http.client
import http.server
import json
import socketserver
import ssl
import sys
import threading
import time
import urllib.parse

state_lock = threading.Lock()
state = {"mode": "pass", "requests": 0, "injected": 0, "forwarded": 0, "stalled": 0}
mode_changed = threading.Condition(state_lock)


def s3_error(code, message):
    return ("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>%s</Code><Message>%s</Message></Error>" %
            (code, message)).encode()


class Proxy(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as S3 clients expect
    upstream = None
    delay = 0.0

    def log_message(self, fmt, *args):
        pass

    def log_line(self, status):
        sys.stderr.write("%s %s -> %s\n" % (self.command, self.path, status))
        sys.stderr.flush()

    def answer(self, status, body, headers=()):
        self.send_response(status)
        for name, value in headers:
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)
        self.log_line(status)

    def control(self):
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        if self.path == "/__proxy__/mode" and self.command == "PUT":
            with mode_changed:
                state["mode"] = body.decode().strip()
                mode_changed.notify_all()
            return self.answer(200, body)
        if self.path == "/__proxy__/mode":
            return self.answer(200, state["mode"].encode())
        if self.path == "/__proxy__/delay-ms" and self.command == "PUT":
            Proxy.delay = float(body.decode().strip()) / 1000.0
            return self.answer(200, body)
        if self.path == "/__proxy__/stats":
            with state_lock:
                return self.answer(200, json.dumps(state).encode(), [("Content-Type", "application/json")])
        return self.answer(404, b"unknown control path\n")

    def handle_one(self):
        if self.path.startswith("/__proxy__/"):
            return self.control()
        with mode_changed:
            state["requests"] += 1
            number = state["requests"]
            mode = state["mode"]
            if mode == "stall":
                # Never answer, never read the body: the client's own timeout has to act.
                state["stalled"] += 1
                while state["mode"] == "stall":
                    mode_changed.wait()
                self.log_line("stalled")
                self.close_connection = True
                return
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        if self.delay:
            time.sleep(self.delay)
        if mode.startswith("slowdown:") and number % int(mode.split(":", 1)[1]) == 0:
            with state_lock:
                state["injected"] += 1
            return self.answer(503, s3_error("SlowDown", "Please reduce your request rate."),
                               [("Content-Type", "application/xml")])
        if mode == "fail-reads" and self.command in ("GET", "HEAD"):
            with state_lock:
                state["injected"] += 1
            return self.answer(500, s3_error("InternalError", "We encountered an internal error. Please try again."),
                               [("Content-Type", "application/xml")])
        headers = {name: value for name, value in self.headers.items()}
        for attempt in (1, 2):  # the upstream may have closed a kept-alive connection meanwhile
            try:
                connection = self.upstream_connection()
                connection.request(self.command, self.path, body=body if length else None, headers=headers)
                response = connection.getresponse()
                payload = response.read()
                break
            except (http.client.HTTPException, OSError):
                self._upstream = None
                if attempt == 2:
                    raise
        with state_lock:
            state["forwarded"] += 1
        self.send_response(response.status)
        for name, value in response.getheaders():
            if name.lower() not in ("content-length", "transfer-encoding", "connection"):
                self.send_header(name, value)
        # A HEAD answers the object's length without a body: pass it on as it came.
        self.send_header("Content-Length", response.getheader("Content-Length", "0") if self.command == "HEAD"
                         else str(len(payload)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(payload)
        self.log_line(response.status)

    def upstream_connection(self):
        if getattr(self, "_upstream", None) is None:
            self._upstream = http.client.HTTPConnection(self.upstream.hostname, self.upstream.port, timeout=600)
        return self._upstream

    do_GET = do_HEAD = do_PUT = do_POST = do_DELETE = handle_one


class Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
    allow_reuse_address = True


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--listen", type=int, required=True)
    parser.add_argument("--upstream", required=True)
    parser.add_argument("--delay-ms", type=float, default=0)
    parser.add_argument("--tls-cert")
    parser.add_argument("--tls-key")
    args = parser.parse_args()
    Proxy.upstream = urllib.parse.urlparse(args.upstream)
    Proxy.delay = args.delay_ms / 1000.0
    server = Server(("127.0.0.1", args.listen), Proxy)
    if args.tls_cert:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(args.tls_cert, args.tls_key)
        server.socket = context.wrap_socket(server.socket, server_side=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
