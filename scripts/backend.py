#!/usr/bin/env python3
"""A testbed backend: a real HTTP/1.1 server on port 80 (threaded, keep-alive) that
answers `backend NAME from CLIENT_ADDR:PORT`, and a UDP server on 5353 that answers
`backend NAME from ADDR:PORT: DATA`. Both listen on IPv4 and IPv6, on every local
address (so also on a direct-server-return VIP held on the loopback).

    backend.py NAME
"""

import socket
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

NAME = sys.argv[1]


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # Headers and body go out in two writes: with Nagle the body waited for the
    # client's delayed ACK of the headers, 40 ms a request.
    disable_nagle_algorithm = True

    def do_GET(self):
        host, port = self.client_address[:2]
        host = host.removeprefix("::ffff:")
        if self.path.startswith("/big"):
            body = (f"backend {NAME}\n".encode() * 70000)[: 1 << 20]
        else:
            body = f"backend {NAME} from {host}:{port}\n".encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


class DualStack(ThreadingHTTPServer):
    address_family = socket.AF_INET6
    daemon_threads = True
    request_queue_size = 1024

    def server_bind(self):
        self.socket.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
        super().server_bind()


def udp():
    # Answers from the address each datagram came to (as DNS servers do): a dr
    # VIP on lo answers as the VIP, not as this host's own address.
    s = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
    s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
    s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_RECVPKTINFO, 1)
    s.bind(("::", 5353))
    while True:
        data, ancillary, _, addr = s.recvmsg(65535, socket.CMSG_SPACE(20))
        to = [d[:16] for level, kind, d in ancillary
              if (level, kind) == (socket.IPPROTO_IPV6, socket.IPV6_PKTINFO)]
        host = addr[0].removeprefix("::ffff:")
        answer = f"backend {NAME} from {host}:{addr[1]}: ".encode() + data
        # in6_pktinfo: the source address, and interface 0 (the route's).
        pktinfo = [(socket.IPPROTO_IPV6, socket.IPV6_PKTINFO, to[0] + bytes(4))] if to else []
        s.sendmsg([answer], pktinfo, 0, addr)


threading.Thread(target=udp, daemon=True).start()
DualStack(("::", 80), Handler).serve_forever()
