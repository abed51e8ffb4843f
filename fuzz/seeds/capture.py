#!/usr/bin/env python3
"""Records what real clients send: a Unix-socket proxy in front of a running daemon.

    capture.py DAEMON_SOCK PROXY_SOCK OUTDIR

Every client connection's byte stream goes to OUTDIR/rpc_frames/<n>, every frame of it
(length word included) to OUTDIR/frames/<n>-<i>, each call's argument payload to
OUTDIR/remote_args/ or OUTDIR/admin_args/ as the fuzz targets read them (one byte
choosing the procedure, then the payload). Stops on SIGINT/SIGTERM.
"""
import os, signal, socket, struct, sys, threading

REMOTE, ADMIN = 0x20008086, 0x06900690
# Order of virtnodedevd_fuzz::REMOTE_PROCS.
REMOTE_PROCS = [1, 60, 419, 111, 112, 285, 297, 114, 429, 430, 113, 115, 116, 436, 435,
                433, 124, 117, 374, 375, 434, 123, 428, 447]

daemon, proxy, out = sys.argv[1:4]
for d in ("rpc_frames", "remote_args", "admin_args"):
    os.makedirs(os.path.join(out, d), exist_ok=True)
count = [0]
lock = threading.Lock()

def save(sub, name, data):
    with open(os.path.join(out, sub, name), "wb") as f:
        f.write(data)

def record(n, data):
    save("rpc_frames", f"session-{n}", data)
    i = 0
    while len(data) - i >= 28:
        (length,) = struct.unpack(">I", data[i:i + 4])
        if length < 28 or i + length > len(data):
            break
        prog, _vers, proc, mtype = struct.unpack(">IIiI", data[i + 4:i + 20])
        payload = data[i + 28:i + length]
        if mtype == 0:
            if prog == REMOTE and proc in REMOTE_PROCS:
                save("remote_args", f"s{n}-{i}-proc{proc}", bytes([REMOTE_PROCS.index(proc)]) + payload)
            elif prog == ADMIN and 1 <= proc <= 19:
                save("admin_args", f"s{n}-{i}-proc{proc}", bytes([proc - 1]) + payload)
        i += length

def pump(src, dst, buf):
    try:
        while True:
            b = src.recv(65536)
            if not b:
                break
            if buf is not None:
                buf.extend(b)
            dst.sendall(b)
    except OSError:
        pass
    for s in (dst,):
        try:
            s.shutdown(socket.SHUT_WR)
        except OSError:
            pass

def handle(c):
    with lock:
        count[0] += 1
        n = count[0]
    s = socket.socket(socket.AF_UNIX)
    s.connect(daemon)
    buf = bytearray()
    t = threading.Thread(target=pump, args=(s, c, None))
    t.start()
    pump(c, s, buf)
    t.join()
    record(n, bytes(buf))
    c.close()
    s.close()

if os.path.exists(proxy):
    os.unlink(proxy)
l = socket.socket(socket.AF_UNIX)
l.bind(proxy)
l.listen(16)
signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
while True:
    c, _ = l.accept()
    threading.Thread(target=handle, args=(c,), daemon=True).start()
