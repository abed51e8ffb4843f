#!/usr/bin/env python3
"""Writes the hand-made seeds next to the captured ones (capture.py): frames and
arguments no client sent in the capture, uevents, configuration, log settings,
node-device XML taken from the repository's tests, VPD images. Run from the repository
root: fuzz/seeds/make.py"""
import glob, os, re, struct

S = "fuzz/seeds"
REMOTE, ADMIN, KEEP = 0x20008086, 0x06900690, 0x6B656570
REMOTE_PROCS = [1, 60, 419, 111, 112, 285, 297, 114, 429, 430, 113, 115, 116, 436, 435,
                433, 124, 117, 374, 375, 434, 123, 428, 447]


def put(target, name, data):
    os.makedirs(f"{S}/{target}", exist_ok=True)
    with open(f"{S}/{target}/{name}", "wb") as f:
        f.write(data.encode() if isinstance(data, str) else data)


def u32(v):
    return struct.pack(">I", v & 0xFFFFFFFF)


def xstr(s):
    b = s.encode() if isinstance(s, str) else s
    return u32(len(b)) + b + b"\0" * ((4 - len(b) % 4) % 4)


def frame(prog, proc, payload=b"", mtype=0, serial=1, status=0):
    body = u32(prog) + u32(1) + u32(proc) + u32(mtype) + u32(serial) + u32(status) + payload
    return u32(len(body) + 4) + body


OPEN = u32(1) + xstr("nodedev:///system") + u32(0)
params = (u32(3) + xstr("user_name") + u32(7) + xstr("root") + xstr("unix_user_id")
          + u32(4) + struct.pack(">Q", 0) + xstr("x") + u32(5) + struct.pack(">d", 1.5) + u32(0))
remote = {
    419: params,
    429: xstr("mdev_4b20d080_1b54_4048_85b3_a6a62d165c01_0000_af_00_0") + u32(0),
    430: xstr("mdev_4b20d080_1b54_4048_85b3_a6a62d165c01") + u32(0),
    433: xstr("computer"),
    434: xstr("computer") + u32(1),
    435: xstr("computer"),
    124: xstr("scsi_host14"),
    374: u32(0) + u32(1) + xstr("computer"),
    447: xstr("mdev_4b20d080_1b54_4048_85b3_a6a62d165c01_0000_af_00_0")
    + xstr("<device><name>mdev_4b20d080_1b54_4048_85b3_a6a62d165c01_0000_af_00_0</name>"
           "<parent>pci_0000_af_00_0</parent><capability type='mdev'><type id='nvidia-222'/>"
           "<uuid>4b20d080-1b54-4048-85b3-a6a62d165c01</uuid><attr name='a' value='1'/>"
           "</capability></device>") + u32(2),
}
for p, payload in remote.items():
    put("remote_args", f"made-proc{p}", bytes([REMOTE_PROCS.index(p)]) + payload)
put("remote_args", "open-go-libvirt-discriminant", bytes([0]) + u32(0x01000000) + xstr("nodedev:///system") + u32(0))

put("rpc_frames", "open-virsh", frame(REMOTE, 1, OPEN, serial=2))
put("rpc_frames", "ping", frame(KEEP, 1, mtype=2, serial=0))
put("rpc_frames", "open-with-fds", frame(REMOTE, 1, u32(0) + OPEN, mtype=4))
put("rpc_frames", "admin-set-threadpool",
    frame(ADMIN, 1, u32(0)) + frame(ADMIN, 7, xstr("admin") + u32(1) + xstr("maxWorkers") + u32(2) + u32(9) + u32(0), serial=2))
put("rpc_frames", "pipelined", frame(REMOTE, 1, OPEN) + b"".join(
    frame(REMOTE, p, pl, serial=i + 2) for i, (p, pl) in enumerate(remote.items())))
put("rpc_frames", "huge-length", u32(33554437) + frame(REMOTE, 1, OPEN)[4:])
put("rpc_frames", "reply-with-error", frame(REMOTE, 1, u32(55) + u32(1) + u32(1) + xstr("x") + u32(2) + u32(0) * 6, mtype=1, status=1))

put("admin_args", "made-set-client-limits", bytes([12]) + xstr("virtnodedevd") + u32(1) + xstr("nclients_max") + u32(2) + u32(10) + u32(0))
put("admin_args", "made-client-info", bytes([9]) + xstr("admin") + struct.pack(">Qq", 3, 1700000000) + u32(0) + u32(0))

put("xdr_decode", "open", bytes([2, 8, 70, 0, 60, 0]) + OPEN)
put("xdr_decode", "strings", bytes([2, 0]) + u32(2) + u32(1) + xstr("computer") + u32(0))

# Uevents.
k = "add@/devices/virtual/net/vx0\0ACTION=add\0DEVPATH=/devices/virtual/net/vx0\0SUBSYSTEM=net\0INTERFACE=vx0\0IFINDEX=7\0SEQNUM=42\0"
put("uevent", "kernel-add", k)
put("uevent", "kernel-remove-pci", "remove@/devices/pci0000:00/0000:00:1c.0/0000:01:00.0\0ACTION=remove\0DEVPATH=/devices/pci0000:00/0000:00:1c.0/0000:01:00.0\0SUBSYSTEM=pci\0PCI_SLOT_NAME=0000:01:00.0\0SEQNUM=7\0")
props = b"ACTION=move\0DEVPATH=/devices/virtual/net/new\0DEVPATH_OLD=/devices/virtual/net/old\0SUBSYSTEM=net\0USEC_INITIALIZED=1\0"
hdr = b"libudev\0" + struct.pack(">I", 0xFEEDCAFE) + struct.pack("=III", 40, 40, len(props))
put("uevent", "udev-move", hdr + b"\0" * (40 - len(hdr)) + props)

# Configuration.
put("virconf", "shipped.conf", open("crates/virconf/virtnodedevd.conf", "rb").read())
put("virconf", "settings.conf", 'unix_sock_dir = "/run/x"\nunix_sock_group = "libvirt"\nunix_sock_rw_perms = "0770"\nauth_unix_rw = "none"\n'
    'max_clients = 10\nmax_workers = 4\nkeepalive_interval = -1\nlog_level = 1\nlog_filters = "1:rpc 3:util.object"\n'
    'log_outputs = "3:syslog:virtnodedevd 1:file:/tmp/l"\nhost_uuid_source = "machine-id"\naudit_logging = 1\n'
    'access_drivers = [ "polkit", "nop" ]\nsasl_allowed_username_list = [\n "a", # c\n "b"\n]\nadmin_max_workers = 5\n')
put("virconf_log", "filters", "1:rpc 2:+util.object 3:qemu 4:remote")
put("virconf_log", "outputs", "3:syslog:virtnodedevd 1:file:/var/log/libvirt/x.log 2:stderr 4:journald")

# Node-device definitions: every XML document in the repository's Rust sources and tests.
n = 0
for path in sorted(glob.glob("crates/**/*.rs", recursive=True)) + ["README.md"]:
    text = open(path).read()
    for m in re.finditer(r"<device>.*?</device>", text, re.S):
        doc = m.group(0).replace('\\"', '"').replace("\\n", "\n")
        if "{" in doc:  # format! templates
            doc = re.sub(r"\{[a-z_0-9.:]*\}", "x", doc)
        n += 1
        put("nodedev_xml", f"doc-{n:03}", doc)


# VPD images, laid out as in libvirt's virpcivpdtest.
def large(tag, body):
    return bytes([tag]) + struct.pack("<H", len(body)) + body


def image(name, ro, rw=None):
    img = large(0x82, name)
    img += large(0x90, ro + b"RV\x01\x00")
    img = bytearray(img)
    img[-1] = (-sum(img[:-1])) & 0xFF
    if rw is not None:
        img += large(0x91, rw)
    return bytes(img) + b"\x78"


def kw(k, v):
    return k + bytes([len(v)]) + v


put("vpd", "ro", image(b"testname", kw(b"PN", b"CP2-1234") + kw(b"EC", b"A") + kw(b"SN", b"S1") + kw(b"V1", b"vendor")))
put("vpd", "ro-rw", image(b"Card X", kw(b"PN", b"P1") + kw(b"MN", b"MFG") + kw(b"CP", b"\x01\x02"),
                          kw(b"V2", b"x") + kw(b"YA", b"asset") + kw(b"Y1", b"s") + kw(b"RW", b"\0\0")))
print("nodedev_xml documents:", n)
