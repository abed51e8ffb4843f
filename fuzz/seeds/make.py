#!/usr/bin/env python3
"""Writes the hand-made seeds next to the captured ones (capture.py): frames and
arguments no client sent in the capture, uevents, configuration, log settings,
node-device XML taken from the repository's tests, VPD images. Run from the repository
root: fuzz/seeds/make.py

Also the inputs at the limits (issue 9): documents nested 200 to 5,000 deep, 50,000-byte
names, thousands of attributes, megabyte texts, as XML, as CREATE/DEFINE/UPDATE
arguments and inside frames; the same as programs for nodedev_xml_structured; lists
nested 5,000 deep, maximal uevents and VPD images. Inputs named deep-* overflow the
stack of a parser whose recursion the input controls, wide-* take a quadratic parser
minutes: crates/fuzzcheck/tests/replay.rs runs them apart (see HELD_BACK there).
And the dictionaries, fuzz/dict/TARGET.dict."""
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
for path in sorted(p for p in glob.glob("crates/**/*.rs", recursive=True)
                  if not p.startswith("crates/fuzzcheck/")) + ["README.md"]:
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


# --- Inputs at the limits. ---
MIB = 1 << 20
CREATE_XML, DEFINE_XML, UPDATE = 123, 428, 447


def nest(depth, name="a"):
    return "<device><name>x</name>" + f"<{name}>" * depth + f"</{name}>" * depth + "</device>"


big = {}
for d in [200, 255, 256, 257, 300, 1000, 4000, 5000]:
    # Deep enough to overflow a 2 MiB stack in an unbounded recursive descent: apart.
    big[f"{'deep-' if d >= 1000 else ''}nest-{d}"] = nest(d)
big["deep-nest-4000-in-capability"] = ("<device><name>x</name><capability type='system'><hardware>"
                                       + "<a>" * 4000 + "</a>" * 4000 + "</hardware></capability></device>")
big["deep-nest-unclosed-5000"] = "<device>" + "<a>" * 5000
big["wide-siblings-100000"] = "<device><name>x</name>" + "<a/>" * 100000 + "</device>"
for ln in [50000, 50001, 100000]:
    big[f"long-element-name-{ln}"] = f"<device><name>x</name><{'n' * ln}/></device>"
big["long-attribute-name-50001"] = f"<device {'n' * 50001}='1'><name>x</name></device>"
big["long-root-name-50001"] = f"<{'d' * 50001}></{'d' * 50001}>"
for na in [1000, 10000]:
    # 10,000 take 50 s under the fuzzer's instrumentation: each attribute is compared with
    # all before it (parse.rs).
    big[f"{'wide-' if na > 1000 else ''}attributes-{na}"] = (
        "<device " + " ".join(f"a{i}='{i}'" for i in range(na))
        + "><name>x</name><capability type='system'/></device>")
big["attributes-duplicate-1000"] = "<device" + " a='1'" * 1000 + "><name>x</name></device>"
big["text-1mib"] = "<device><name>" + "x" * MIB + "</name><capability type='system'/></device>"
big["entities-text-100000"] = "<device><name>" + "&amp;&#x41;" * 100000 + "</name></device>"
big["attribute-value-1mib"] = ("<device><name>x</name><capability type='" + "v" * MIB
                               + "'/></device>")
big["entity-expansion"] = ("<!DOCTYPE device [<!ENTITY a 'aaaaaaaaaa'>" + "".join(
    f"<!ENTITY {c} '{('&' + p + ';') * 10}'>" for p, c in zip("abcdefgh", "bcdefghi")) + "]>"
    "<device><name>&i;</name></device>")
for name, doc in big.items():
    put("nodedev_xml", name, doc)
    # The same documents as a client sends them: arguments, then whole frames.
    if "attribute-value" in name or "long-root" in name:
        continue
    put("remote_args", f"{name}-create", bytes([REMOTE_PROCS.index(CREATE_XML)]) + xstr(doc) + u32(0))
    put("rpc_frames", f"{name}-define-validate", frame(REMOTE, 1, OPEN)
        + frame(REMOTE, DEFINE_XML, xstr(doc) + u32(1), serial=2))
put("remote_args", "deep-nest-4000-update", bytes([REMOTE_PROCS.index(UPDATE)]) + xstr("n")
    + xstr(nest(4000)) + u32(0))
put("remote_args", "nest-300-define-validate", bytes([REMOTE_PROCS.index(DEFINE_XML)])
    + xstr(nest(300)) + u32(1))


# Programs for nodedev_xml_structured (see crates/fuzzcheck/src/structured.rs).
def be16(n):
    return bytes([n >> 8, n & 0xFF])


A, CAPABILITY, TYPE, SYSTEM, COMPUTER = 4, 3, 0, 1, 31
put("nodedev_xml_structured", "valid-system", bytes([0, 1, 0, 2, COMPUTER]) + be16(1)
    + bytes([1, 0, CAPABILITY, 1, TYPE, SYSTEM]))
put("nodedev_xml_structured", "unclosed", bytes([0, 1, 0, 10]))
for d in [200, 255, 256, 257, 300, 1000, 4000, 5000, 65535]:
    put("nodedev_xml_structured", f"{'deep-' if d >= 1000 else ''}nest-{d}",
        bytes([0, 1, 0, 2, COMPUTER]) + be16(1) + bytes([1, 3, A]) + be16(d))
for ln in [50000, 50001, 65535]:
    put("nodedev_xml_structured", f"long-name-{ln}", bytes([4]) + be16(ln))
put("nodedev_xml_structured", "wide-attributes-65535", bytes([5, 0]) + be16(65535))
put("nodedev_xml_structured", "attribute-value-4mib", bytes([6, CAPABILITY, TYPE]) + be16(65535))
put("nodedev_xml_structured", "text-4mib", bytes([0, 1, 0]) + bytes([2, COMPUTER, 0xFF, 0xFF]) * 20)
# Found by the fuzzer (a 30 s timeout): 436 KB of text, then an element with 34,048
# attributes, each checked against all before it (parse.rs).
put("nodedev_xml_structured", "wide-fuzzer-timeout-attributes-34048",
    bytes.fromhex("02aaaa40aa1f000001108085"))
# Found by the fuzzer (a stack overflow on the 2 MiB stack): <name> nested 11,264 deep.
put("nodedev_xml_structured", "deep-fuzzer-crash-nest-11264", bytes.fromhex("001919190003012c0000"))
put("nodedev_xml_structured", "duplicate-attributes", bytes([9, 0, 0]) + be16(1000))

# Configuration and log settings at their sizes.
put("virconf", "list-nested-5000", "access_drivers = " + "[" * 5000 + '"nop"' + "]" * 5000 + "\n")
put("virconf", "list-unclosed-100000", "access_drivers = " + "[" * 100000 + "\n")
put("virconf", "keys-20000", "".join(f"k{i} = {i}\n" for i in range(20000)))
put("virconf", "string-256kib", 'log_filters = "' + "1:x " * (MIB // 16) + '"\n')
put("virconf", "list-20000", "sasl_allowed_username_list = [" + ",".join('"u"' for _ in range(20000)) + "]\n")
put("virconf_log", "filters-20000", " ".join(f"{i % 4 + 1}:+m{i}" for i in range(20000)))
# Few: dropping duplicate outputs compares each with all before it (virconf/src/log.rs).
put("virconf_log", "outputs-500", " ".join(f"{i % 4 + 1}:file:/tmp/l{i}" for i in range(500)))
put("admin_args", "set-filters-10000", bytes([16]) + u32(1) + xstr("1:x " * 10000) + u32(0))

# A uevent filling the daemon's 16 KiB receive buffer (monitor.rs MSG_MAX).
props = "ACTION=add\0DEVPATH=/devices/virtual/net/vx0\0SUBSYSTEM=net\0" + "".join(
    f"K{i}=v\0" for i in range(3000))
put("uevent", "kernel-16k", ("add@/devices/virtual/net/vx0\0" + props)[:16384])
put("uevent", "kernel-long-devpath", "add@/" + "a/" * 8000 + "\0ACTION=add\0DEVPATH=/" + "a/" * 3000 + "\0")

# VPD: the 32 KiB the 15-bit VPD address reaches, many fields, maximal resources.
fields = b"".join(kw(b"V" + bytes([0x30 + i % 10]), b"x" * 200) for i in range(100))
put("vpd", "ro-many-fields", image(b"N" * 1000, fields))
put("vpd", "string-short-read", large(0x82, b"s" * 0xFFFF)[:32768])
put("vpd", "zeros-32k", b"\0" * 32768)

# XDR: counts and lengths at and past the limits, nested containers.
put("xdr_decode", "huge-counts", bytes([3, 4, 8, 8, 8, 5]) + u32(0xFFFFFFFF) * 4 + u32(1) * 64)
put("xdr_decode", "nested", bytes([2, 0]) + (u32(1) * 2 + u32(3)) * 200)


# --- Dictionaries (libFuzzer -dict=, one file per target; fuzz/run passes them). ---
CAPS = ["system", "pci", "usb_device", "usb", "net", "scsi_host", "scsi_target", "scsi",
        "storage", "fc_host", "vports", "scsi_generic", "drm", "mdev_types", "mdev", "ccw",
        "css", "vdpa", "ap_card", "ap_queue", "ap_matrix", "vpd"]
ELEMENTS = ["device", "name", "parent", "capability", "driver", "path", "devnode", "type",
            "uuid", "attr", "wwnn", "wwpn", "fabric_wwn", "unique_id", "parent_addr", "host",
            "link", "number", "id", "address", "domain", "bus", "slot", "function",
            "vport_ops", "max_vports", "hardware", "firmware", "vendor", "product", "a"]
ATTRS = ["type", "id", "name", "value", "path", "uuid", "wwnn", "wwpn", "fabric_wwn",
         "parent", "wwnn_parent", "fabric_wwn_parent", "index"]
xml_tokens = (
    [f"<{e}>" for e in ELEMENTS] + [f"</{e}>" for e in ELEMENTS] + [f"<{e}/>" for e in ELEMENTS]
    + [f" {a}='" for a in ATTRS] + [f' {a}="' for a in ATTRS] + CAPS
    + [f"<capability type='{c}'>" for c in CAPS]
    + ["<a>" * 8, "</a>" * 8, "<a>" * 64, "</a>" * 64, "<", ">", "/>", "</", "='", "'",
       '="', '"', "&amp;", "&lt;", "&gt;", "&quot;", "&apos;", "&#x41;", "&#65;", "&#0;",
       "<![CDATA[", "]]>", "<!--", "-->", "<?xml version='1.0'?>", "<?", "?>",
       "<!DOCTYPE device [", "<!ENTITY e 'x'>", "&e;", "]>", "xmlns='urn:x'", "xmlns:n=",
       "computer", "pci_0000_00_02_0", "4b20d080-1b54-4048-85b3-a6a62d165c01",
       "20000000c9831b4b", "nvidia-222", "0x1f", "4294967296", "-1"])
CONF_KEYS = [l.split("=")[0].strip("# \t") for l in open("crates/virconf/virtnodedevd.conf")
             if re.match(r"^#?\s*[a-z_]+\s*=", l)]
conf_tokens = (sorted(set(CONF_KEYS)) + [" = ", "[", "]", ", ", '"', "'", '"""', "#", "\n",
               "\r\n", "0", "1", "-1", "0777", "0x7fffffff", "9223372036854775807", "4294967296",
               "none", "polkit", "sasl", "nop", "smbios", "machine-id", "libvirt"])
log_tokens = ["1:", "2:", "3:", "4:", "+", "file:", "syslog:", "stderr", "journald", "/",
              " ", "\n", ":", "rpc", "util.object", "virtnodedevd", "0:", "5:"]
uevent_tokens = ["add@", "remove@", "change@", "move@", "bind@", "unbind@", "online@",
                 "ACTION=", "DEVPATH=", "DEVPATH_OLD=", "SUBSYSTEM=", "SEQNUM=", "DEVTYPE=",
                 "DRIVER=", "INTERFACE=", "IFINDEX=", "MAJOR=", "MINOR=", "DEVNAME=",
                 "USEC_INITIALIZED=", "PCI_SLOT_NAME=", "MDEV_TYPE=", "/devices/", "/..",
                 "/../", "/.", "//", "\0", "libudev\0", "\xfe\xed\xca\xfe", "\x28\0\0\0"]


def be(v):
    return struct.pack(">I", v & 0xFFFFFFFF)


xdr_tokens = ([be(v) for v in [0, 1, 2, 3, 4, 0x7FFFFFFF, 0x80000000, 0xFFFFFFFF, 16, 256,
                               65536, 4194304, 4194305, 33554432, 33554436, 33554437, 28]]
              + [be(REMOTE), be(ADMIN), be(KEEP)] + [be(p) for p in sorted(set(REMOTE_PROCS))]
              + [be(p) for p in range(1, 20)] + [b"nodedev:///system", b"\0\0\0\0\0\0\0\x01"])
vpd_tokens = [b"\x82", b"\x90", b"\x91", b"\x78", b"\x0f", b"RV", b"RW", b"PN", b"EC", b"SN",
              b"MN", b"FG", b"LC", b"PG", b"CP", b"V0", b"V1", b"VZ", b"Y0", b"YA", b"YZ",
              b"\xff\xff", b"\x00\x80"]


def dict_entry(t):
    b = t.encode("latin-1") if isinstance(t, str) else t
    return '"' + "".join(chr(c) if 0x20 <= c < 0x7F and c not in b'"\\' else f"\\x{c:02x}"
                         for c in b) + '"'


def write_dict(target, *groups):
    os.makedirs("fuzz/dict", exist_ok=True)
    seen = []
    for g in groups:
        for t in g:
            if t not in seen:
                seen.append(t)
    with open(f"fuzz/dict/{target}.dict", "w") as f:
        f.write(f"# {target}: written by fuzz/seeds/make.py\n")
        f.writelines(f"{dict_entry(t)}\n" for t in seen)


write_dict("nodedev_xml", xml_tokens)
write_dict("remote_args", xml_tokens, xdr_tokens)
write_dict("rpc_frames", xdr_tokens, xml_tokens)
write_dict("admin_args", xdr_tokens, log_tokens)
write_dict("xdr_decode", xdr_tokens)
write_dict("virconf", conf_tokens, log_tokens)
write_dict("virconf_log", log_tokens)
write_dict("uevent", uevent_tokens)
write_dict("vpd", vpd_tokens)
# nodedev_xml_structured reads a program, not text: no dictionary.
print("nodedev_xml documents:", n)
