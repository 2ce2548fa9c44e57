"""Stand in for syslog at a unix datagram socket: append every message to a file, until killed."""

import os
import socket
import sys

SOCKET, OUT = sys.argv[1], sys.argv[2]
sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
sock.bind(SOCKET)
# Modules log as whichever user runs them.
os.chmod(SOCKET, 0o666)
with open(OUT, "ab", buffering=0) as out:
    while True:
        out.write(sock.recv(65536) + b"\n")
