#!/usr/bin/env python3
"""Send one SCTP INIT from this network namespace with a raw socket (no kernel SCTP needed).

    agent-sctp.py DST PORT [SRC]

Prints one JSON line: {"src": <the source address used>, "sport": <source port>}.
Used by test/support/agent-sctp.ts: the kernel cannot open SCTP sockets here (CONFIG_IP_SCTP
unset), but netfilter tracks and NATs SCTP, so a raw INIT shows where a Service sends SCTP.
"""
import json
import random
import socket
import struct
import sys


def crc32c(data: bytes) -> int:
    crc = 0xFFFFFFFF
    for b in data:
        crc ^= b
        for _ in range(8):
            crc = (crc >> 1) ^ (0x82F63B78 & -(crc & 1))
    return crc ^ 0xFFFFFFFF


def main() -> None:
    dst, port = sys.argv[1], int(sys.argv[2])
    src = sys.argv[3] if len(sys.argv) > 3 else None
    family = socket.AF_INET6 if ":" in dst else socket.AF_INET
    if src is None:
        probe = socket.socket(family, socket.SOCK_DGRAM)
        probe.connect((dst, 9))
        src = probe.getsockname()[0]
        probe.close()
    sport = random.randint(20000, 60000)
    init = struct.pack(
        "!BBHIIHHI", 1, 0, 20, random.randint(1, 0xFFFFFFFF), 65535, 1, 1, random.randint(1, 0xFFFFFFFF)
    )
    header = struct.pack("!HHII", sport, port, 0, 0)
    packet = bytearray(header + init)
    packet[8:12] = struct.pack("<I", crc32c(bytes(packet)))
    s = socket.socket(family, socket.SOCK_RAW, 132)
    s.bind((src, 0))
    s.sendto(bytes(packet), (dst, 0))
    s.close()
    print(json.dumps({"src": src, "sport": sport}))


main()
