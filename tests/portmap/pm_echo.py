#!/usr/bin/env python3
"""Tiny TCP/UDP echo for the portmap tests.

  pm_echo.py serve PORT TAG READYFILE   answers every TCP connection and UDP datagram on PORT
                                        (IPv4 and IPv6) with "TAG <peer address>"
  pm_echo.py ask tcp|udp HOST PORT [SRCPORT]
                                        prints the answer; exit 1 if none within 2 s
"""
import os
import socket
import sys
import threading


def serve(port, tag, ready):
    tcp = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
    udp = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
    for s in (tcp, udp):
        s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(("::", port))
    tcp.listen(16)

    def peer(addr):
        host = addr[0]
        return host[7:] if host.startswith("::ffff:") else host

    def tcp_loop():
        while True:
            conn, addr = tcp.accept()
            try:
                conn.settimeout(2)
                conn.recv(64)
                conn.sendall(("%s %s" % (tag, peer(addr))).encode())
            except OSError:
                pass
            finally:
                conn.close()

    def udp_loop():
        while True:
            _, addr = udp.recvfrom(64)
            udp.sendto(("%s %s" % (tag, peer(addr))).encode(), addr)

    threading.Thread(target=tcp_loop, daemon=True).start()
    with open(ready, "w") as f:
        f.write("ready\n")
    udp_loop()


def ask(proto, host, port, srcport):
    fam = socket.AF_INET6 if ":" in host else socket.AF_INET
    kind = socket.SOCK_STREAM if proto == "tcp" else socket.SOCK_DGRAM
    s = socket.socket(fam, kind)
    s.settimeout(float(os.environ.get("PM_TIMEOUT", "2")))
    if srcport:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(("::" if fam == socket.AF_INET6 else "0.0.0.0", srcport))
    try:
        if proto == "tcp":
            s.connect((host, port))
            s.sendall(b"hi")
            data = s.recv(256)
        else:
            s.sendto(b"hi", (host, port))
            data, _ = s.recvfrom(256)
    except OSError as e:
        print("no answer: %s" % e, file=sys.stderr)
        return 1
    print(data.decode())
    return 0


if __name__ == "__main__":
    if sys.argv[1] == "serve":
        serve(int(sys.argv[2]), sys.argv[3], sys.argv[4])
    else:
        src = int(sys.argv[5]) if len(sys.argv) > 5 and sys.argv[5] else 0
        sys.exit(ask(sys.argv[2], sys.argv[3], int(sys.argv[4]), src))
