#!/usr/bin/env python3
"""Writes the seed corpora in fuzz/corpus/<target>/ from the real frp captures in tests/fixtures/frp-captures.

Run from anywhere: python3 fuzz/make_seeds.py. Seeds are small, deterministic and committed; libFuzzer's own
findings go to fuzz/corpus-work/ (see scripts/fuzz.sh), which is not committed.
"""
import base64
import json
import pathlib
import struct

ROOT = pathlib.Path(__file__).resolve().parent.parent
CAPTURES = ROOT / "tests" / "fixtures" / "frp-captures"
CORPUS = ROOT / "fuzz" / "corpus"


def streams(name):
    """Each (conn, dir)'s bytes, chunks concatenated in order."""
    out = {}
    for c in json.loads((CAPTURES / name / "capture.json").read_text()):
        out.setdefault((c["conn"], c["dir"]), bytearray()).extend(base64.b64decode(c["b64"]))
    return {k: bytes(v) for k, v in out.items()}


def frame(t, body):
    return t + struct.pack(">q", len(body)) + body


def first_frame(b):
    n = struct.unpack(">q", b[1:9])[0]
    return b[: 9 + n], b[9 + n :]


def ws_payloads(b):
    """Concatenated binary-frame payloads after the HTTP head."""
    b = b[b.index(b"\r\n\r\n") + 4 :]
    out = bytearray()
    while b:
        op, l, p = b[0] & 15, b[1] & 127, 2
        if l == 126:
            l, p = struct.unpack(">H", b[2:4])[0], 4
        elif l == 127:
            l, p = struct.unpack(">Q", b[2:10])[0], 10
        mask = None
        if b[1] & 128:
            mask, p = b[p : p + 4], p + 4
        data = bytes(b[p : p + l])
        if mask:
            data = bytes(x ^ mask[i % 4] for i, x in enumerate(data))
        if op == 2:
            out += data
        b = b[p + l :]
    return bytes(out)


def crc32c(data):
    crc = 0xFFFFFFFF
    for byte in data:
        crc ^= byte
        for _ in range(8):
            crc = (crc >> 1) ^ (0x82F63B78 if crc & 1 else 0)
    crc ^= 0xFFFFFFFF
    return (((crc >> 15) | (crc << 17)) + 0xA282EAD8) & 0xFFFFFFFF


def snappy_chunk(kind, payload, body):
    b = struct.pack("<I", crc32c(payload)) + body
    return bytes([kind]) + struct.pack("<I", len(b))[:3] + b


STREAM_ID = b"\xff\x06\x00\x00sNaPpY"


def varint(n):
    out = bytearray()
    while n >= 0x80:
        out.append(n & 0x7F | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def literal_block(data):
    """A snappy block holding `data` as one literal (len <= 60)."""
    return varint(len(data)) + bytes([(len(data) - 1) << 2]) + data


def write(target, name, data):
    d = CORPUS / target
    d.mkdir(parents=True, exist_ok=True)
    (d / name).write_bytes(data)


def main():
    nomux = streams("plain-nomux")
    mux = streams("plain-mux")
    ws = streams("ws-plain")
    oidc = streams("oidc-nomux")
    up, down = "client->server", "server->client"

    # decode_frame: frames in clear as frp wrote them, plus control frames rebuilt from the transcript.
    login, ctl_up = first_frame(nomux[(1, up)])
    login_resp, ctl_down = first_frame(nomux[(1, down)])
    write("decode_frame", "login", login)
    write("decode_frame", "login_oidc", first_frame(oidc[(1, up)])[0])
    write("decode_frame", "login_resp", login_resp)
    work, udp = first_frame(nomux[(2, up)])
    write("decode_frame", "new_work_conn", work)
    write("decode_frame", "udp_packet", udp)
    write("decode_frame", "start_work_conn_voice", first_frame(nomux[(2, down)])[0])
    write("decode_frame", "start_work_conn_web", first_frame(nomux[(3, down)])[0])
    write("decode_frame", "new_proxy", frame(b"p", b'{"proxy_name":"web","proxy_type":"tcp","remote_port":16001}'))
    write("decode_frame", "new_proxy_resp", frame(b"2", b'{"proxy_name":"web","remote_addr":":16001"}'))
    write("decode_frame", "req_work_conn", frame(b"r", b"{}"))

    # cipher_stream: encrypted control streams (IV then ciphertext) as captured.
    write("cipher_stream", "control_up", ctl_up)
    write("cipher_stream", "control_down", ctl_down)
    write("cipher_stream", "control_up_oidc", first_frame(oidc[(1, up)])[1])

    # yamux_header: whole yamux sessions, one direction each, and single headers.
    write("yamux_header", "mux_up", mux[(1, up)])
    write("yamux_header", "mux_down", mux[(1, down)])
    write("yamux_header", "ws_up", ws_payloads(ws[(1, up)]))
    write("yamux_header", "ws_down", ws_payloads(ws[(1, down)]))
    write("yamux_header", "window_update_syn", mux[(1, up)][:12])
    # mux_session: the same sessions as the peer of a live session (frpc's side feeds the server, frps's the client).
    write("mux_session", "frpc_to_frps", mux[(1, up)])
    write("mux_session", "frps_to_frpc", mux[(1, down)])
    # a stream opened, given data beyond its window, pinged, reset, then GoAway
    syn = struct.pack(">BBHII", 0, 1, 1, 1, 0)
    big = struct.pack(">BBHII", 0, 0, 0, 1, 300 * 1024)
    ping = struct.pack(">BBHII", 0, 2, 1, 0, 7)
    rst = struct.pack(">BBHII", 0, 1, 8, 3, 0)
    goaway = struct.pack(">BBHII", 0, 3, 0, 0, 0)
    write("mux_session", "overrun_ping_rst_goaway", syn + big + b"x" * 64 + ping + rst + goaway)

    # snappy_decode: framing-format streams carrying capture bytes, uncompressed and as snappy blocks.
    write("snappy_decode", "uncompressed_login", STREAM_ID + snappy_chunk(1, login, login))
    hello = b"hello portway"
    write("snappy_decode", "literal_hello", STREAM_ID + snappy_chunk(0, hello, literal_block(hello)))
    # "hello portway hello portway": a literal, then a 2-byte-offset copy of 13 bytes from 14 back.
    twice = hello + b" " + hello
    block = varint(len(twice)) + bytes([(14 - 1) << 2]) + hello + b" " + bytes([0b10 | (13 - 1) << 2]) + struct.pack("<H", 14)
    write("snappy_decode", "copy_hello", STREAM_ID + snappy_chunk(0, twice, block))
    write("snappy_decode", "two_chunks_udp", STREAM_ID + snappy_chunk(1, udp, udp) + snappy_chunk(0, hello, literal_block(hello)))

    # wire protocol v2 (v2-*): frames after the magic, hello payloads, AEAD control streams.
    magic = b"FRP\x00\x02\r\n"
    for name in ("v2-nomux", "v2-xchacha"):
        st = streams(name)
        up, down = st[(1, "client->server")], st[(1, "server->client")]
        body = up[len(magic):]
        n_ch = struct.unpack(">I", body[4:8])[0]
        ch = body[8 : 8 + n_ch]
        rest = body[8 + n_ch :]
        n_login = struct.unpack(">I", rest[4:8])[0]
        sealed = rest[8 + n_login :]
        n_sh = struct.unpack(">I", down[4:8])[0]
        sh = down[8 : 8 + n_sh]
        write("wire_v2_frame", f"{name}_control_clear", body[: 8 + n_ch + 8 + n_login])
        write("wire_v2_frame", f"{name}_work_udp", st[(2, "client->server")][len(magic):])
        write("wire_v2_hello", f"{name}_client_hello", ch)
        write("wire_v2_hello", f"{name}_hellos", struct.pack("<I", len(ch)) + ch + sh)
        write("aead_stream", f"{name}_control_up", bytes([name == "v2-xchacha"]) + sealed)

    # dns_answer: answers as a recursive server sends them (A after a CNAME; AAAA; NXDOMAIN; truncated).
    def dns_answer(qtype, rcode, flags, records):
        q = struct.pack(">HHHHHH", 0x4242, 0x0100, 1, 0, 0, 0)
        q += b"".join(bytes([len(l)]) + l for l in b"frps.example.com".split(b".")) + b"\x00"
        q += struct.pack(">HH", qtype, 1)
        m = bytearray(q)
        m[2], m[3] = 0x81 | flags, 0x80 | rcode
        m[6:8] = struct.pack(">H", len(records))
        for rtype, data in records:
            m += b"\xc0\x0c" + struct.pack(">HHIH", rtype, 1, 300, len(data)) + data
        return bytes(m)

    write("dns_answer", "a_after_cname", dns_answer(1, 0, 0, [(5, b"\x03web\xc0\x11"), (1, bytes([192, 0, 2, 1]))]))
    write("dns_answer", "aaaa", dns_answer(28, 0, 0, [(28, bytes(15) + b"\x01")]))
    write("dns_answer", "nxdomain", dns_answer(1, 3, 0, []))
    write("dns_answer", "truncated", dns_answer(1, 0, 2, []))


if __name__ == "__main__":
    main()
