#!/usr/bin/env python3
"""A STUN binding responder for the benchmark's xtcp path (RFC 5389 / 5780 subset, IPv4, 127.0.0.0/8 only).

Usage: stun.py PORT_A PORT_B. Both ports answer Binding requests with XOR-MAPPED-ADDRESS = the sender; PORT_A adds
OTHER-ADDRESS = PORT_B (frp's NAT discovery asks a second address). Requests from outside 127.0.0.0/8 are dropped.
Runs until killed (the bench stops it by PID).
"""
import ipaddress
import selectors
import socket
import struct
import sys

COOKIE = 0x2112A442


def attr(kind, host, port, xor):
    ip = int(ipaddress.IPv4Address(host))
    if xor:
        port ^= COOKIE >> 16
        ip ^= COOKIE
    return struct.pack("!HHBBHI", kind, 8, 0, 1, port, ip)


def answer(req, sender, other):
    if len(req) < 20:
        return None
    kind, _length, cookie = struct.unpack("!HHI", req[:8])
    if kind != 0x0001 or cookie != COOKIE:
        return None
    body = attr(0x0020, sender[0], sender[1], True)
    if other is not None:
        body += attr(0x802C, other[0], other[1], False)
    return struct.pack("!HHI", 0x0101, len(body), COOKIE) + req[8:20] + body


def main():
    ports = [int(p) for p in sys.argv[1:3]]
    socks = []
    for p in ports:
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.bind(("127.0.0.1", p))
        socks.append(s)
    other = {socks[0]: ("127.0.0.1", ports[1]), socks[1]: None}
    sel = selectors.DefaultSelector()
    for s in socks:
        sel.register(s, selectors.EVENT_READ)
    while True:
        for key, _ in sel.select():
            s = key.fileobj
            data, sender = s.recvfrom(1500)
            if not ipaddress.IPv4Address(sender[0]).is_loopback:
                continue
            out = answer(data, sender, other[s])
            if out:
                s.sendto(out, sender)


if __name__ == "__main__":
    main()
