"""A TCP echo server and a client that checks every byte came back.

    tcp_echo.py server ADDR PORT          serve until killed
    tcp_echo.py client ADDR PORT BYTES N  N connections, BYTES each; prints a JSON result
"""

import hashlib
import json
import os
import socket
import sys
import threading


def serve(addr, port):
    fam = socket.AF_INET6 if ":" in addr else socket.AF_INET
    s = socket.socket(fam, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind((addr, port))
    s.listen(64)
    print("listening", flush=True)

    def echo(c):
        with c:
            while True:
                d = c.recv(65536)
                if not d:
                    return
                c.sendall(d)

    while True:
        c, _ = s.accept()
        threading.Thread(target=echo, args=(c,), daemon=True).start()


def one(addr, port, size, results, i):
    data = os.urandom(size)
    fam = socket.AF_INET6 if ":" in addr else socket.AF_INET
    with socket.socket(fam, socket.SOCK_STREAM) as c:
        c.settimeout(10)
        c.connect((addr, port))
        got = bytearray()

        def reader():
            while len(got) < size:
                d = c.recv(65536)
                if not d:
                    break
                got.extend(d)

        t = threading.Thread(target=reader)
        t.start()
        c.sendall(data)
        t.join(15)
        results[i] = hashlib.sha256(data).hexdigest() == hashlib.sha256(got).hexdigest()


def client(addr, port, size, n):
    results = [False] * n
    threads = [threading.Thread(target=one, args=(addr, port, size, results, i)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    print(json.dumps({"connections": n, "intact": sum(results)}))


if __name__ == "__main__":
    if sys.argv[1] == "server":
        serve(sys.argv[2], int(sys.argv[3]))
    else:
        client(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5]))
