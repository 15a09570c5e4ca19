"""Opens N HTTP connections to a VIP and reports which backend answered each.

    http_client.py ADDR PORT N [--sport-base B] [--threads T] [--path P]

Each request is a new connection with `Connection: close` (the server closes
first, so the client keeps no TIME_WAIT and a fixed source port can be reused).
With --sport-base, connection i binds source port B+i. Prints JSON:
{"backends": {name: count}, "by_sport": {sport: name}, "sources": {addr: count},
 "errors": n}
"""

import argparse
import json
import socket
from concurrent.futures import ThreadPoolExecutor


def one(addr, port, sport, path):
    fam = socket.AF_INET6 if ":" in addr else socket.AF_INET
    s = socket.socket(fam, socket.SOCK_STREAM)
    s.settimeout(5)
    try:
        if sport:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            s.bind(("::" if fam == socket.AF_INET6 else "0.0.0.0", sport))
        s.connect((addr, port))
        local_port = s.getsockname()[1]
        s.sendall(f"GET {path} HTTP/1.1\r\nHost: weir\r\nConnection: close\r\n\r\n".encode())
        data = b""
        while True:
            d = s.recv(65536)
            if not d:
                break
            data += d
        body = data.split(b"\r\n\r\n", 1)[1].decode()
        words = body.split()
        # "backend NAME from ADDR:PORT"
        return local_port, words[1], words[3].rsplit(":", 1)[0]
    except (OSError, IndexError) as e:
        return sport, None, str(e)
    finally:
        s.close()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("addr")
    ap.add_argument("port", type=int)
    ap.add_argument("n", type=int)
    ap.add_argument("--sport-base", type=int, default=0)
    ap.add_argument("--threads", type=int, default=8)
    ap.add_argument("--path", default="/")
    a = ap.parse_args()
    sports = [a.sport_base + i if a.sport_base else 0 for i in range(a.n)]
    with ThreadPoolExecutor(a.threads) as ex:
        results = list(ex.map(lambda sp: one(a.addr, a.port, sp, a.path), sports))
    out = {"backends": {}, "by_sport": {}, "sources": {}, "errors": 0, "error_texts": []}
    for sport, backend, source in results:
        if backend is None:
            out["errors"] += 1
            out["error_texts"].append(source)
            continue
        out["backends"][backend] = out["backends"].get(backend, 0) + 1
        out["by_sport"][str(sport)] = backend
        out["sources"][source] = out["sources"].get(source, 0) + 1
    out["error_texts"] = out["error_texts"][:5]
    print(json.dumps(out))


if __name__ == "__main__":
    main()
