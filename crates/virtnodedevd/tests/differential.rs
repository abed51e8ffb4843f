//! Differential test: a reference libvirtd and our `virtnodedevd` serve the same device tree
//! at the same time, driven by the same release's clients, and every client-visible answer
//! must be identical. Each tree is compared twice: with libvirt 11.3 (the reference for
//! behaviour: its daemon, virsh, libvirt-python and xmllint with its schemas, from the chroot
//! of the shared reference tool), where no difference is allowed; and with libvirt 9.0
//! (Debian 12's, on the host), where the differences 11.3 brought are listed in
//! `KNOWN_DIFFERENCES_9_0` with their reasons.
//!
//! Trees: the real host and the fake trees of `fakesys`. For each tree both daemons are
//! started, then the same battery runs against each:
//! - virsh: `nodedev-list` (plain, `--tree`, `--all`, `--inactive`, `--cap X` for every cap
//!   name), `nodedev-dumpxml` and `nodedev-info` of every device, an error battery (exit code,
//!   stdout and stderr compared), read-only access through the read-only socket and `-r`;
//! - every dumped XML is validated against libvirt's `nodedev.rng` (with xmllint, when present);
//! - python3-libvirt: `listAllDevices` for every flag bit, `numOfDevices`/`listDevices` per cap,
//!   per-device `parent`, `listCaps`, `numOfCaps`, `isActive`, `isPersistent`, `autostart`,
//!   `XMLDesc`, connection-level calls and an error battery as (code, domain, message), also on
//!   the read-only socket. Python prints one JSON document per side, one key per line.
//!
//! Differences listed for the release are reported but do not fail the test; any other
//! difference fails it with a diff.
//!
//! Needs root, libvirtd and the clients: without them the tests fail, unless the run allows
//! skipping (VIRTNODEDEVD_ALLOW_SKIP=1).

mod common;
#[path = "../../nodedev/tests/common/versions.rs"]
mod versions;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use protocol::remote::proc;
use protocol::{REMOTE_PROGRAM, REMOTE_VERSION};
use rpc::client::{CallError, Client};

use common::{fc_mdev_s390_tree, sriov_tree, usb_sas_tree};
use common::{rich_tree, sample_tree, virsh_of};
use common::{Daemon, Libvirt, Reference};

/// `(wwnn, wwpn)` of the `fc_host` capability in a dumpxml answer.
fn fc_wwns(answer: &str) -> Option<(String, String)> {
    let fc = answer.split("<capability type='fc_host'>").nth(1)?;
    let fc = fc.split("</capability>").next()?;
    let field = |tag: &str| {
        let v = fc.split(&format!("<{tag}>")).nth(1)?;
        Some(v.split('<').next()?.to_owned())
    };
    Some((field("wwnn")?, field("wwpn")?))
}

/// Every capability name virsh accepts for `nodedev-list --cap`, in flag-bit order (11.3 adds
/// the ccwgroup ones; 9.0's virsh refuses them itself).
const CAPS: &[&str] = &[
    "system",
    "pci",
    "usb_device",
    "usb",
    "net",
    "scsi_host",
    "scsi_target",
    "scsi",
    "storage",
    "fc_host",
    "vports",
    "scsi_generic",
    "drm",
    "mdev_types",
    "mdev",
    "ccw",
    "css",
    "vdpa",
    "ap_card",
    "ap_queue",
    "ap_matrix",
    "vpd",
    "ccwgroup",
    "ccwgroup_member",
];

/// Answers that may differ from libvirt 11.3's (key prefix, reason): none. Reported, not
/// failed; a known difference that no longer differs is reported too, so the entry can go.
const KNOWN_DIFFERENCES_11_3: &[(&str, &str)] = &[];

/// Answers that differ from both releases': the PCI procedures this daemon serves and
/// libvirt's node-device daemon does not.
const PCI_DIFFERENCES: &[(&str, &str)] = &[
    ("virsh nodedev-detach computer", PCI_SERVED),
    ("virsh nodedev-reattach computer", PCI_SERVED),
    ("virsh nodedev-reset computer", PCI_SERVED),
    ("python computer.detachFlags(", PCI_SERVED),
    ("python computer.dettach()", PCI_SERVED),
    ("python computer.reAttach()", PCI_SERVED),
    ("python computer.reset()", PCI_SERVED),
];

const PCI_SERVED: &str = "PCI detach, reattach and reset are served here with the QEMU \
    driver's semantics (issue 14, tests/pci.rs); libvirt's node-device daemon answers NO_SUPPORT";

/// Answers that may differ from libvirt 9.0's: what 11.3 changed, which we follow.
const KNOWN_DIFFERENCES_9_0: &[(&str, &str)] = &[
    ("python computer.XMLDesc(1)", NEWER_API),
    ("python RO-socket computer.XMLDesc(1)", NEWER_API),
    ("raw after OPEN: GET_XML_DESC(no_such_device,1)", NEWER_API),
    ("raw after OPEN: NODE_DEVICE_UPDATE (10.1)", NEWER_API),
    // ListAllNodeDevices flags 9.0 refuses ("unsupported flags").
    ("python listAllDevices(0x400000)", CCWGROUP),
    ("python listAllDevices(0x800000)", CCWGROUP),
    ("python listAllDevices(0x10000000)", PERSISTENT),
    ("python listAllDevices(0x20000000)", PERSISTENT),
    ("python listAllDevices(0x30000000)", PERSISTENT),
    ("python listAllDevices(0x50000000)", PERSISTENT),
    ("python listAllDevices(0x60000000)", PERSISTENT),
    ("python listAllDevices(0x90000000)", PERSISTENT),
    ("python listAllDevices(0xa0000000)", PERSISTENT),
    ("python listAllDevices(0x10000001)", PERSISTENT),
    ("python listAllDevices(0x20004000)", PERSISTENT),
    // A definition whose file ends in a newline, unterminated: 11.3 shows the last line
    // with text, 9.0 "(null)".
    ("virsh nodedev-create FILE(unterminated)", XML_CONTEXT),
    ("virsh nodedev-define FILE(unterminated)", XML_CONTEXT),
    (
        "virsh nodedev-create --validate FILE(unterminated)",
        XML_CONTEXT,
    ),
    // GetAutostart is no longer refused on the read-only socket.
    ("python RO-socket computer.autostart()", RO_AUTOSTART),
    ("raw RO socket: GET_AUTOSTART(computer)", RO_AUTOSTART),
    ("virsh -c RO_URI nodedev-info ", RO_AUTOSTART),
    ("python getLibVersion()", VERSION),
    ("python RO-socket getLibVersion()", VERSION),
    // 11.3's schema makes <device>'s content an interleave: other messages.
    (
        "virsh nodedev-create --validate FILE(empty-device)",
        INTERLEAVE,
    ),
    ("python nodeDeviceCreateXML(empty-device,1)", INTERLEAVE),
];

const RO_AUTOSTART: &str = "libvirt 11.3 answers NodeDeviceGetAutostart on the read-only socket";
const VERSION: &str = "we report the version whose behaviour we reproduce, 11.3.0";
const CCWGROUP: &str = "libvirt 11.1's ccwgroup capabilities (flag bits 22 and 23)";
const PERSISTENT: &str = "libvirt 10.1's PERSISTENT and TRANSIENT list flags (bits 28, 29)";
const XML_CONTEXT: &str = "libvirt 11.3 shows the last line with text for an error at the end";
const INTERLEAVE: &str = "libvirt 11.3's nodedev.rng: <device> content is an interleave";

/// NodeDeviceUpdate and GetXMLDesc(INACTIVE), where 9.0 answers "unknown procedure: 447"
/// and "unsupported flags (0x1)".
const NEWER_API: &str = "libvirt 10.1.0's API (NodeDeviceUpdate, XML_INACTIVE), as 11.3";

/// Differences from 9.0 that run through many answers: each turns 11.3's form in our answer
/// back into 9.0's before comparing, and every answer it changes is reported as known.
const REWRITES_9_0: &[(&str, Rewrite)] = &[
    (
        "error formats numbered since libvirt 9.x (str1 'internal error: %1$s', 9.0 '%s')",
        |s| s.replace("%1$s", "%s"),
    ),
    (
        "XML errors: 'at line N: ' (11.3) for '(node_device_definition):N: ' (9.0)",
        |s| {
            let mut out = String::new();
            let mut rest = s;
            while let Some(i) = rest.find("at line ") {
                let after = &rest[i + 8..];
                let digits = after.bytes().take_while(u8::is_ascii_digit).count();
                out.push_str(&rest[..i]);
                if digits > 0 && after[digits..].starts_with(": ") {
                    out.push_str(&format!("(node_device_definition):{}: ", &after[..digits]));
                    rest = &after[digits + 2..];
                } else {
                    out.push_str("at line ");
                    rest = after;
                }
            }
            out.push_str(rest);
            out
        },
    ),
];

/// Turns an answer's text from one release's form into another's.
type Rewrite = fn(&str) -> String;

/// `answer` as 9.0 would have given it, with the reasons of the rewrites that changed it.
fn rewrite_9_0(answer: &str) -> (String, Vec<&'static str>) {
    let mut text = answer.to_owned();
    let mut why = Vec::new();
    for (reason, f) in REWRITES_9_0 {
        let next = f(&text);
        if next != text {
            why.push(*reason);
            text = next;
        }
    }
    (text, why)
}

/// The differences allowed against `libvirt`'s reference.
fn known_differences(libvirt: Libvirt) -> &'static [(&'static str, &'static str)] {
    match libvirt {
        Libvirt::V11_3 => KNOWN_DIFFERENCES_11_3,
        Libvirt::V9_0 => KNOWN_DIFFERENCES_9_0,
    }
}

/// One daemon as clients see it, and the release whose clients ask.
struct Side {
    uri: String,
    ro_uri: String,
    libvirt: Libvirt,
}

/// Answers keyed by what was asked.
type Answers = BTreeMap<String, String>;

/// A virsh run as text: exit code, stdout and stderr.
fn virsh_text(libvirt: Libvirt, uri: &str, args: &[&str]) -> String {
    let o = virsh_of(libvirt, uri, args);
    format!(
        "exit={}\n--- stdout\n{}--- stderr\n{}",
        o.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// Device names (all, active and inactive) as virsh lists them.
fn device_names(side: &Side) -> Vec<String> {
    let uri = &side.uri;
    let o = virsh_of(side.libvirt, uri, &["nodedev-list", "--all"]);
    assert!(
        o.status.success(),
        "nodedev-list --all on {uri}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout)
        .lines()
        .filter(|l| !l.is_empty())
        .map(str::to_owned)
        .collect()
}

/// The virsh battery. `names` is the union of both sides' devices, so a device missing on one
/// side shows up as a difference of its dumpxml/info answers.
fn virsh_answers(side: &Side, names: &[String], scratch: &Path) -> Answers {
    let mut a = Answers::new();
    let v = side.libvirt;
    let mut ask = |key: String, uri: &str, args: &[&str]| {
        a.insert(key, virsh_text(v, uri, args));
    };
    let uri = side.uri.as_str();
    let ro = side.ro_uri.as_str();
    ask("virsh nodedev-list".into(), uri, &["nodedev-list"]);
    for extra in [
        &["--tree"][..],
        &["--all"],
        &["--inactive"],
        &["--all", "--cap", "net,pci"],
        &["--inactive", "--cap", "pci"],
        &["--cap", "bogus"],
        // libvirt 10.1's.
        &["--persistent"],
        &["--transient"],
        &["--all", "--persistent"],
        &["--all", "--transient"],
        &["--inactive", "--persistent"],
        &["--inactive", "--transient"],
        &["--persistent", "--transient"],
        &["--tree", "--persistent"],
        &["--cap", "ccw,ccwgroup_member", "--all"],
    ] {
        let mut args = vec!["nodedev-list"];
        args.extend_from_slice(extra);
        ask(format!("virsh {}", args.join(" ")), uri, &args);
    }
    for cap in CAPS {
        let args = ["nodedev-list", "--cap", cap];
        ask(format!("virsh {}", args.join(" ")), uri, &args);
    }
    for n in names {
        ask(
            format!("virsh nodedev-dumpxml {n}"),
            uri,
            &["nodedev-dumpxml", n],
        );
        ask(format!("virsh nodedev-info {n}"), uri, &["nodedev-info", n]);
        for extra in [
            &["--inactive"][..],
            &["--xpath", "/device/capability/@type"],
            &["--xpath", "//name", "--wrap"],
        ] {
            let mut args = vec!["nodedev-dumpxml", n];
            args.extend_from_slice(extra);
            ask(format!("virsh {}", args.join(" ")), uri, &args);
        }
    }

    // Errors.
    for cmd in [
        "nodedev-dumpxml",
        "nodedev-info",
        "nodedev-destroy",
        "nodedev-detach",
        "nodedev-reattach",
        "nodedev-reset",
        "nodedev-undefine",
        "nodedev-start",
        "nodedev-autostart",
    ] {
        ask(
            format!("virsh {cmd} no_such_device"),
            uri,
            &[cmd, "no_such_device"],
        );
    }
    for args in [
        &["list"][..],
        &["hostname"],
        &["version", "--daemon"],
        &["nodedev-destroy", "computer"],
        &["nodedev-autostart", "computer"],
        &["nodedev-autostart", "--disable", "computer"],
        &["nodedev-start", "computer"],
        &["nodedev-undefine", "computer"],
        &["nodedev-detach", "computer"],
        &["nodedev-reattach", "computer"],
        &["nodedev-reset", "computer"],
        &["nodedev-dumpxml", "a,b"],
        &["nodedev-event", "--event", "lifecycle", "--timeout", "1"],
        &[
            "nodedev-event",
            "--event",
            "update",
            "--device",
            "computer",
            "--timeout",
            "1",
        ],
        &[
            "nodedev-event",
            "--event",
            "lifecycle",
            "--device",
            "no_such_device",
        ],
        &["nodedev-event", "--event", "bogus", "--timeout", "1"],
    ] {
        ask(format!("virsh {}", args.join(" ")), uri, args);
    }
    // Read-only: the read-only socket (refused by the daemon) and `-r` (refused by the client
    // library, except where the daemon answers first).
    for args in [
        &["nodedev-destroy", "computer"][..],
        &["nodedev-info", "computer"],
        &["nodedev-dumpxml", "computer"],
        &["nodedev-list"],
        &["nodedev-undefine", "computer"],
        &["nodedev-start", "computer"],
        &["nodedev-autostart", "computer"],
        &["nodedev-detach", "computer"],
        &["nodedev-destroy", "no_such_device"],
    ] {
        ask(format!("virsh -c RO_URI {}", args.join(" ")), ro, args);
    }
    for args in [
        &["nodedev-info", "computer"][..],
        &["nodedev-destroy", "computer"],
    ] {
        let mut full = vec!["-r"];
        full.extend_from_slice(args);
        ask(format!("virsh -r {}", args.join(" ")), uri, &full);
    }
    // Creation from XML files that cannot describe a device.
    for (label, xml) in [
        ("garbage", "this is not XML at all\n"),
        ("unterminated", "<device>\n"),
        ("empty-device", "<device/>\n"),
        (
            "no-caps",
            "<device>\n  <name>x</name>\n  <parent>computer</parent>\n</device>\n",
        ),
    ] {
        let file = scratch.join(format!("{label}.xml"));
        std::fs::write(&file, xml).unwrap();
        let f = file.to_str().unwrap();
        for cmd in ["nodedev-create", "nodedev-define"] {
            let o = virsh_of(v, uri, &[cmd, f]);
            // The file path is ours and differs between sides; keep it out of the answer.
            a.insert(
                format!("virsh {cmd} FILE({label})"),
                format!(
                    "exit={}\n--- stdout\n{}--- stderr\n{}",
                    o.status.code().unwrap_or(-1),
                    String::from_utf8_lossy(&o.stdout),
                    String::from_utf8_lossy(&o.stderr).replace(f, "FILE")
                ),
            );
        }
        let o = virsh_of(v, uri, &["nodedev-create", "--validate", f]);
        a.insert(
            format!("virsh nodedev-create --validate FILE({label})"),
            format!(
                "exit={}\n--- stdout\n{}--- stderr\n{}",
                o.status.code().unwrap_or(-1),
                String::from_utf8_lossy(&o.stdout),
                String::from_utf8_lossy(&o.stderr).replace(f, "FILE")
            ),
        );
    }
    // SCSI hosts by WWN (`nodedev-dumpxml WWNN,WWPN`): every fc_host this side shows, and
    // ones that exist nowhere.
    let mut wwns: BTreeSet<(String, String)> = a
        .iter()
        .filter(|(k, _)| k.starts_with("virsh nodedev-dumpxml "))
        .filter_map(|(_, v)| fc_wwns(v))
        .collect();
    if let Some((n, _)) = wwns.iter().next().cloned() {
        // The node name of one port with a port name that does not exist.
        wwns.insert((n, "2100000000000001".into()));
    }
    wwns.insert(("20000024ff000000".into(), "21000024ff000000".into()));
    for (wwnn, wwpn) in wwns {
        let arg = format!("{wwnn},{wwpn}");
        a.insert(
            format!("virsh nodedev-dumpxml {arg}"),
            virsh_text(v, uri, &["nodedev-dumpxml", &arg]),
        );
    }
    a
}

const PYTHON: &str = r#"
import json, os, sys
import libvirt

libvirt.registerErrorHandler(lambda ctx, err: None, None)
URI = os.environ["URI"]
RO_URI = os.environ["RO_URI"]
CAPS = sys.argv[1].split(",")
out = {}

def call(key, f):
    try:
        out[key] = {"ok": f()}
    except libvirt.libvirtError as e:
        out[key] = {"err": [e.get_error_code(), e.get_error_domain(), e.get_error_message()]}
        # The other fields of the error, which python exposes too.
        out[key + " fields"] = [e.get_str1(), e.get_str2(), e.get_str3(), e.get_int1(), e.get_int2()]

conn = libvirt.open(URI)
flags = [0] + [1 << i for i in range(22)] + [1 << 30, 1 << 31, (1 << 30) | (1 << 31),
         0x80000012, 0x2000000, 0x400000, 0x800000, 1 << 28, 1 << 29, (1 << 28) | (1 << 29),
         (1 << 28) | (1 << 30), (1 << 29) | (1 << 31), (1 << 28) | (1 << 31), (1 << 29) | (1 << 30),
         (1 << 28) | 1, (1 << 29) | 0x4000, 1 << 24, 1 << 27]
for f in flags:
    call("listAllDevices(%#x)" % f, lambda: sorted(d.name() for d in conn.listAllDevices(f)))
for cap in [None] + CAPS + ["bogus"]:
    call("numOfDevices(%s)" % cap, lambda: conn.numOfDevices(cap, 0))
    call("listDevices(%s)" % cap, lambda: sorted(conn.listDevices(cap, 0)))
call("numOfDevices(None, 1)", lambda: conn.numOfDevices(None, 1))
call("listDevices(None, 1)", lambda: conn.listDevices(None, 1))

names = sorted(d.name() for d in conn.listAllDevices(0))
for n in names:
    d = conn.nodeDeviceLookupByName(n)
    for m in ["parent", "listCaps", "numOfCaps", "isActive", "isPersistent", "autostart"]:
        call("%s.%s()" % (n, m), getattr(d, m))
    call("%s.XMLDesc(0)" % n, lambda: d.XMLDesc(0))
    xml = d.XMLDesc(0)
    if "<capability type='fc_host'>" in xml:
        fc = xml.split("<capability type='fc_host'>")[1]
        wwnn = fc.split("<wwnn>")[1].split("<")[0]
        wwpn = fc.split("<wwpn>")[1].split("<")[0]
        for fl in [0, 1]:
            call("nodeDeviceLookupSCSIHostByWWN(wwns of %s,%d)" % (n, fl),
                 lambda: conn.nodeDeviceLookupSCSIHostByWWN(wwnn, wwpn, fl).name())
        call("nodeDeviceLookupSCSIHostByWWN(swapped wwns of %s,0)" % n,
             lambda: conn.nodeDeviceLookupSCSIHostByWWN(wwpn, wwnn, 0).name())
        call("nodeDeviceLookupSCSIHostByWWN(upper-case wwns of %s,0)" % n,
             lambda: conn.nodeDeviceLookupSCSIHostByWWN(wwnn.upper(), wwpn.upper(), 0).name())
call("nodeDeviceLookupSCSIHostByWWN(missing,0)",
     lambda: conn.nodeDeviceLookupSCSIHostByWWN("20000024ff000000", "21000024ff000000", 0).name())

call("getLibVersion()", conn.getLibVersion)
call("getType()", conn.getType)
call("isSecure()", conn.isSecure)
call("isEncrypted()", conn.isEncrypted)
call("getHostname()", conn.getHostname)
call("getVersion()", conn.getVersion)
call("getCapabilities()", conn.getCapabilities)
call("getInfo()", conn.getInfo)
call("getSysinfo(0)", lambda: conn.getSysinfo(0))
call("getMaxVcpus(None)", lambda: conn.getMaxVcpus(None))
call("listAllDomains(0)", lambda: conn.listAllDomains(0))
call("numOfDomains()", conn.numOfDomains)
call("lookupByName(dom)", lambda: conn.lookupByName("dom"))
call("nodeDeviceLookupSCSIHostByWWN(a,b,0)", lambda: conn.nodeDeviceLookupSCSIHostByWWN("a", "b", 0))
call("nodeDeviceLookupSCSIHostByWWN(a,b,1)", lambda: conn.nodeDeviceLookupSCSIHostByWWN("a", "b", 1))
call("nodeDeviceLookupByName(no_such_device)", lambda: conn.nodeDeviceLookupByName("no_such_device").name())

comp = conn.nodeDeviceLookupByName("computer")
call("computer.XMLDesc(1)", lambda: comp.XMLDesc(1))
call("computer.XMLDesc(2)", lambda: comp.XMLDesc(2))
call("computer.destroy()", comp.destroy)
call("computer.undefine(0)", lambda: comp.undefine(0))
call("computer.undefine(1)", lambda: comp.undefine(1))
call("computer.create(0)", lambda: comp.create(0))
call("computer.create(1)", lambda: comp.create(1))
call("computer.setAutostart(1)", lambda: comp.setAutostart(1))
call("computer.setAutostart(0)", lambda: comp.setAutostart(0))
call("computer.dettach()", comp.dettach)
call("computer.detachFlags(None,0)", lambda: comp.detachFlags(None, 0))
call("computer.detachFlags(vfio,0)", lambda: comp.detachFlags("vfio", 0))
call("computer.reAttach()", comp.reAttach)
call("computer.reset()", comp.reset)

for label, xml in [("garbage", "this is not XML at all"), ("unterminated", "<device>"),
                   ("empty-device", "<device/>"),
                   ("no-caps", "<device><name>x</name><parent>computer</parent></device>")]:
    call("nodeDeviceCreateXML(%s,0)" % label, lambda: conn.nodeDeviceCreateXML(xml, 0).name())
    call("nodeDeviceCreateXML(%s,1)" % label, lambda: conn.nodeDeviceCreateXML(xml, 1).name())
    call("nodeDeviceDefineXML(%s,0)" % label, lambda: conn.nodeDeviceDefineXML(xml, 0).name())
call("nodeDeviceCreateXML(empty-device,2)", lambda: conn.nodeDeviceCreateXML("<device/>", 2).name())
call("nodeDeviceDefineXML(empty-device,2)", lambda: conn.nodeDeviceDefineXML("<device/>", 2).name())

# A read-write client library on the read-only socket: the daemon refuses changes.
rw_on_ro = libvirt.open(RO_URI)
call("RO-socket listAllDevices(0)", lambda: sorted(d.name() for d in rw_on_ro.listAllDevices(0)))
call("RO-socket getType()", rw_on_ro.getType)
call("RO-socket getLibVersion()", rw_on_ro.getLibVersion)
c = rw_on_ro.nodeDeviceLookupByName("computer")
call("RO-socket computer.XMLDesc(0)", lambda: c.XMLDesc(0))
call("RO-socket computer.parent()", c.parent)
call("RO-socket computer.listCaps()", c.listCaps)
call("RO-socket computer.isActive()", c.isActive)
call("RO-socket computer.isPersistent()", c.isPersistent)
call("RO-socket computer.autostart()", c.autostart)
call("RO-socket computer.destroy()", c.destroy)
call("RO-socket computer.undefine(0)", lambda: c.undefine(0))
call("RO-socket computer.create(0)", lambda: c.create(0))
call("RO-socket computer.setAutostart(1)", lambda: c.setAutostart(1))
call("RO-socket computer.dettach()", c.dettach)
call("RO-socket computer.detachFlags(None,0)", lambda: c.detachFlags(None, 0))
call("RO-socket computer.reAttach()", c.reAttach)
call("RO-socket computer.reset()", c.reset)
call("RO-socket computer.XMLDesc(1)", lambda: c.XMLDesc(1))
call("RO-socket nodeDeviceCreateXML(empty-device,0)", lambda: rw_on_ro.nodeDeviceCreateXML("<device/>", 0).name())
call("RO-socket nodeDeviceDefineXML(empty-device,0)", lambda: rw_on_ro.nodeDeviceDefineXML("<device/>", 0).name())
call("RO-socket nodeDeviceLookupByName(no_such_device)", lambda: rw_on_ro.nodeDeviceLookupByName("no_such_device").name())
call("RO-socket listAllDevices(0x2000000)", lambda: rw_on_ro.listAllDevices(0x2000000))
call("RO-socket getHostname()", rw_on_ro.getHostname)

# A read-only client library (refuses changes itself, except where 9.0 asks the daemon).
ro_lib = libvirt.openReadOnly(URI)
r = ro_lib.nodeDeviceLookupByName("computer")
call("openReadOnly computer.autostart()", r.autostart)
call("openReadOnly computer.isActive()", r.isActive)
call("openReadOnly computer.destroy()", r.destroy)
call("openReadOnly nodeDeviceCreateXML(empty-device,0)", lambda: ro_lib.nodeDeviceCreateXML("<device/>", 0).name())

print("{")
print(",\n".join("%s: %s" % (json.dumps(k), json.dumps(out[k])) for k in sorted(out)))
print("}")
"#;

/// The python battery: one JSON object, one key per line, parsed back into answers.
fn python_answers(side: &Side) -> Answers {
    let o = side
        .libvirt
        .command("/usr/bin/python3")
        .arg("-c")
        .arg(PYTHON)
        .arg(CAPS.join(","))
        .env("URI", &side.uri)
        .env("RO_URI", &side.ro_uri)
        .output()
        .expect("run python3");
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert!(
        o.status.success(),
        "python battery failed on {}: {}\n{stdout}",
        side.uri,
        String::from_utf8_lossy(&o.stderr)
    );
    let mut a = Answers::new();
    for line in stdout.lines() {
        let line = line.trim_end_matches(',');
        if line == "{" || line == "}" || line.is_empty() {
            continue;
        }
        let (k, v) = line
            .split_once("\": ")
            .unwrap_or_else(|| panic!("python output line: {line}"));
        a.insert(
            format!("python {}", k.trim_start_matches('"')),
            v.to_owned(),
        );
    }
    a
}

/// XDR encoding for the raw battery.
#[derive(Default)]
struct Xdr(Vec<u8>);

impl Xdr {
    fn int(mut self, v: i32) -> Self {
        self.0.extend_from_slice(&v.to_be_bytes());
        self
    }
    fn str(mut self, s: &str) -> Self {
        self = self.int(s.len() as i32);
        self.0.extend_from_slice(s.as_bytes());
        self.0.resize(self.0.len().div_ceil(4) * 4, 0);
        self
    }
    fn opt(self, s: Option<&str>) -> Self {
        match s {
            Some(s) => self.int(1).str(s),
            None => self.int(0),
        }
    }
}

/// One raw call as text: the reply payload in hex, or every field of the error.
fn raw_text(c: &mut Client, proc_: i32, args: Xdr) -> String {
    match c.call_raw(proc_, &args.0) {
        Ok(p) => format!(
            "ok {}",
            p.iter().map(|b| format!("{b:02x}")).collect::<String>()
        ),
        Err(CallError::Remote(e)) => format!(
            "error code={} domain={} message={:?} str1={:?} str2={:?} str3={:?} int1={} int2={}",
            e.code, e.domain, e.message, e.str1, e.str2, e.str3, e.int1, e.int2
        ),
        Err(CallError::Io(e)) => format!("i/o error {:?}", e.kind()),
        Err(CallError::Decode) => "undecodable reply".into(),
    }
}

/// The socket path of a `...?socket=PATH` URI.
fn socket_of(uri: &str) -> PathBuf {
    PathBuf::from(uri.split_once("socket=").expect("socket in URI").1)
}

/// Calls on the wire with our own client: what happens before CONNECT_OPEN, bad OPEN names,
/// a second OPEN, argument limits, unknown procedures and event registration errors, with
/// every field of every error compared.
fn raw_answers(side: &Side) -> Answers {
    let mut a = Answers::new();
    let sock = socket_of(&side.uri);
    let connect = || Client::connect(&sock, REMOTE_PROGRAM, REMOTE_VERSION).unwrap();
    let open = |c: &mut Client, name: Option<&str>| {
        raw_text(c, proc::CONNECT_OPEN, Xdr::default().opt(name).int(0))
    };

    let mut c = connect();
    for (label, p, args) in [
        ("AUTH_LIST", proc::AUTH_LIST, Xdr::default()),
        (
            "SUPPORTS_FEATURE(10)",
            proc::CONNECT_SUPPORTS_FEATURE,
            Xdr::default().int(10),
        ),
        (
            "SUPPORTS_FEATURE(14)",
            proc::CONNECT_SUPPORTS_FEATURE,
            Xdr::default().int(14),
        ),
        ("GET_TYPE", proc::CONNECT_GET_TYPE, Xdr::default()),
        (
            "GET_LIB_VERSION",
            proc::CONNECT_GET_LIB_VERSION,
            Xdr::default(),
        ),
        (
            "LIST_ALL(1,0)",
            proc::CONNECT_LIST_ALL_NODE_DEVICES,
            Xdr::default().int(1).int(0),
        ),
        (
            "LOOKUP_BY_NAME(computer)",
            proc::NODE_DEVICE_LOOKUP_BY_NAME,
            Xdr::default().str("computer"),
        ),
        ("DETTACH(computer)", 118, Xdr::default().str("computer")),
        (
            "CONNECT_LIST_ALL_DOMAINS(1,0)",
            273,
            Xdr::default().int(1).int(0),
        ),
    ] {
        a.insert(
            format!("raw before OPEN: {label}"),
            raw_text(&mut c, p, args),
        );
    }
    for name in [
        Some("nodedev:///session"),
        Some("bogus:///system"),
        Some("NODEDEV:///system"),
        Some("nodedev"),
        None,
    ] {
        let mut c = connect();
        a.insert(format!("raw OPEN({name:?})"), open(&mut c, name));
    }
    let mut c = connect();
    a.insert("raw OPEN".into(), open(&mut c, Some("nodedev:///system")));
    a.insert(
        "raw second OPEN".into(),
        open(&mut c, Some("nodedev:///system")),
    );
    a.insert(
        "raw GET_TYPE after second OPEN".into(),
        raw_text(&mut c, proc::CONNECT_GET_TYPE, Xdr::default()),
    );
    a.insert(
        "raw third OPEN".into(),
        open(&mut c, Some("nodedev:///system")),
    );
    a.insert(
        "raw GET_TYPE after third OPEN".into(),
        raw_text(&mut c, proc::CONNECT_GET_TYPE, Xdr::default()),
    );

    let mut c = connect();
    open(&mut c, Some("nodedev:///system"));
    for (label, p, args) in [
        (
            "LIST_ALL(0,0)",
            proc::CONNECT_LIST_ALL_NODE_DEVICES,
            Xdr::default().int(0).int(0),
        ),
        (
            "LIST_ALL(1,0x40000000)",
            proc::CONNECT_LIST_ALL_NODE_DEVICES,
            Xdr::default().int(1).int(0x4000_0000),
        ),
        (
            "NUM_OF_DEVICES(bogus)",
            proc::NODE_NUM_OF_DEVICES,
            Xdr::default().opt(Some("bogus")).int(0),
        ),
        (
            "NUM_OF_DEVICES(system)",
            proc::NODE_NUM_OF_DEVICES,
            Xdr::default().opt(Some("system")).int(0),
        ),
        (
            "LIST_DEVICES(system,65537)",
            proc::NODE_LIST_DEVICES,
            Xdr::default().opt(Some("system")).int(65537).int(0),
        ),
        (
            "LIST_DEVICES(system,-1)",
            proc::NODE_LIST_DEVICES,
            Xdr::default().opt(Some("system")).int(-1).int(0),
        ),
        (
            "LIST_DEVICES(system,0)",
            proc::NODE_LIST_DEVICES,
            Xdr::default().opt(Some("system")).int(0).int(0),
        ),
        (
            "LIST_DEVICES(system,5)",
            proc::NODE_LIST_DEVICES,
            Xdr::default().opt(Some("system")).int(5).int(0),
        ),
        (
            "LIST_CAPS(computer,65537)",
            proc::NODE_DEVICE_LIST_CAPS,
            Xdr::default().str("computer").int(65537),
        ),
        (
            "LIST_CAPS(computer,-1)",
            proc::NODE_DEVICE_LIST_CAPS,
            Xdr::default().str("computer").int(-1),
        ),
        (
            "LIST_CAPS(computer,0)",
            proc::NODE_DEVICE_LIST_CAPS,
            Xdr::default().str("computer").int(0),
        ),
        (
            "LIST_CAPS(no_such_device,1)",
            proc::NODE_DEVICE_LIST_CAPS,
            Xdr::default().str("no_such_device").int(1),
        ),
        (
            "GET_PARENT(computer)",
            proc::NODE_DEVICE_GET_PARENT,
            Xdr::default().str("computer"),
        ),
        (
            "GET_PARENT(no_such_device)",
            proc::NODE_DEVICE_GET_PARENT,
            Xdr::default().str("no_such_device"),
        ),
        (
            "GET_XML_DESC(no_such_device,1)",
            proc::NODE_DEVICE_GET_XML_DESC,
            Xdr::default().str("no_such_device").int(1),
        ),
        (
            "DESTROY(no_such_device)",
            proc::NODE_DEVICE_DESTROY,
            Xdr::default().str("no_such_device"),
        ),
        (
            "IS_ACTIVE(no_such_device)",
            436,
            Xdr::default().str("no_such_device"),
        ),
        (
            "GET_AUTOSTART(no_such_device)",
            433,
            Xdr::default().str("no_such_device"),
        ),
        (
            "CREATE_XML(<device/>,2)",
            proc::NODE_DEVICE_CREATE_XML,
            Xdr::default().str("<device/>").int(2),
        ),
        (
            "LOOKUP_SCSI_HOST_BY_WWN(a,b,0)",
            proc::NODE_DEVICE_LOOKUP_SCSI_HOST_BY_WWN,
            Xdr::default().str("a").str("b").int(0),
        ),
        (
            "EVENT_REGISTER_ANY(5,NULL)",
            proc::CONNECT_NODE_DEVICE_EVENT_REGISTER_ANY,
            Xdr::default().int(5).int(0),
        ),
        (
            "EVENT_DEREGISTER_ANY(12345)",
            proc::CONNECT_NODE_DEVICE_EVENT_DEREGISTER_ANY,
            Xdr::default().int(12345),
        ),
        (
            "CONNECT_LIST_ALL_DOMAINS(1,0)",
            273,
            Xdr::default().int(1).int(0),
        ),
        ("CONNECT_GET_HOSTNAME", 59, Xdr::default()),
        ("NODE_DEVICE_UPDATE (10.1)", 447, Xdr::default()),
        ("unknown procedure 100000", 100_000, Xdr::default()),
    ] {
        a.insert(
            format!("raw after OPEN: {label}"),
            raw_text(&mut c, p, args),
        );
    }
    // Read-only socket.
    let mut c = Client::connect(&socket_of(&side.ro_uri), REMOTE_PROGRAM, REMOTE_VERSION).unwrap();
    a.insert(
        "raw RO OPEN".into(),
        open(&mut c, Some("nodedev:///system")),
    );
    for (label, p, args) in [
        (
            "DESTROY(no_such_device)",
            proc::NODE_DEVICE_DESTROY,
            Xdr::default().str("no_such_device"),
        ),
        (
            "CREATE_XML(garbage,0)",
            proc::NODE_DEVICE_CREATE_XML,
            Xdr::default().str("garbage").int(0),
        ),
        (
            "GET_AUTOSTART(computer)",
            433,
            Xdr::default().str("computer"),
        ),
        ("DETTACH(computer)", 118, Xdr::default().str("computer")),
    ] {
        a.insert(format!("raw RO socket: {label}"), raw_text(&mut c, p, args));
    }
    a
}

/// Validates an XML document against `libvirt`'s node-device schema, with its xmllint.
fn validate(libvirt: Libvirt, xml: &str, scratch: &Path) -> Result<(), String> {
    let file = scratch.join("validate.xml");
    std::fs::write(&file, xml).unwrap();
    let o = libvirt
        .command("xmllint")
        .args(["--noout", "--relaxng", libvirt.nodedev_schema()])
        .arg(&file)
        .output()
        .expect("run xmllint");
    if o.status.success() {
        Ok(())
    } else {
        Err(String::from_utf8_lossy(&o.stderr).into_owned())
    }
}

/// Line diff (longest common subsequence), `-` reference, `+` ours.
fn diff(reference: &str, ours: &str) -> String {
    let a: Vec<&str> = reference.lines().collect();
    let b: Vec<&str> = ours.lines().collect();
    let mut lcs = vec![vec![0usize; b.len() + 1]; a.len() + 1];
    for i in (0..a.len()).rev() {
        for j in (0..b.len()).rev() {
            lcs[i][j] = if a[i] == b[j] {
                lcs[i + 1][j + 1] + 1
            } else {
                lcs[i + 1][j].max(lcs[i][j + 1])
            };
        }
    }
    let (mut i, mut j) = (0, 0);
    let mut out = String::new();
    while i < a.len() || j < b.len() {
        if i < a.len() && j < b.len() && a[i] == b[j] {
            out.push_str(&format!("   {}\n", a[i]));
            i += 1;
            j += 1;
        } else if j < b.len() && (i == a.len() || lcs[i][j + 1] >= lcs[i + 1][j]) {
            out.push_str(&format!(" + {}\n", b[j]));
            j += 1;
        } else {
            out.push_str(&format!(" - {}\n", a[i]));
            i += 1;
        }
    }
    out
}

fn known_reason(libvirt: Libvirt, key: &str) -> Option<&'static str> {
    known_differences(libvirt)
        .iter()
        .chain(PCI_DIFFERENCES)
        .find(|(prefix, _)| key.starts_with(prefix))
        .map(|(_, why)| *why)
}

/// Compares two answer sets; returns (unexpected differences, known differences).
fn compare(libvirt: Libvirt, reference: &Answers, ours: &Answers) -> (Vec<String>, Vec<String>) {
    let mut failures = Vec::new();
    let mut known = Vec::new();
    let devices = (libvirt == Libvirt::V9_0).then(|| Changed11_3::find(reference, ours));
    let keys: BTreeSet<&String> = reference.keys().chain(ours.keys()).collect();
    for k in keys {
        let r = reference.get(k);
        let mut o = ours.get(k).cloned();
        if let Some(why) = devices
            .as_ref()
            .and_then(|d| d.explains(k, r, o.as_deref()))
        {
            known.push(format!("=== {k}\n(known: {why})\n"));
            continue;
        }
        if libvirt == Libvirt::V9_0 {
            if let Some((text, why)) = o.as_deref().map(rewrite_9_0) {
                if !why.is_empty() && r == Some(&text) {
                    known.push(format!("=== {k}\n(known: {})\n", why.join("; ")));
                }
                o = Some(text);
            }
        }
        let o = o.as_ref();
        if r == o {
            if let Some(why) = known_reason(libvirt, k) {
                known.push(format!(
                    "=== {k}\nnow identical; KNOWN_DIFFERENCES entry ({why}) can go\n"
                ));
            }
            continue;
        }
        let text = format!(
            "=== {k}\n{}",
            diff(
                r.map(String::as_str).unwrap_or("<not asked>"),
                o.map(String::as_str).unwrap_or("<not asked>")
            )
        );
        match known_reason(libvirt, k) {
            Some(why) => known.push(format!("{text}(known: {why})\n")),
            None => failures.push(text),
        }
    }
    (failures, known)
}

/// The devices whose answers libvirt 11.3's discovery changed (see nodedev's
/// `tests/common/versions.rs`, and nodedev's differential, which pins each change against
/// 9.0 device by device): those 9.0 does not list (offline ccw devices, ccwgroup devices)
/// and those whose XML differs only by what `versions::xml_as_9_0` undoes.
struct Changed11_3 {
    hidden: BTreeSet<String>,
    changed: BTreeSet<String>,
}

const DISCOVERY_11_3: &str =
    "libvirt 11.3's discovery (offline ccw devices and ccwgroup listed, ccw <state>, \
     ccwgroup_member, VPD escaping, block sizes); pinned device by device by nodedev's \
     differential against 9.0";

impl Changed11_3 {
    fn find(reference: &Answers, ours: &Answers) -> Self {
        let dumps = || {
            ours.iter().filter_map(|(k, o)| {
                let name = k.strip_prefix("virsh nodedev-dumpxml ")?;
                let r = reference.get(k).map(String::as_str).unwrap_or("");
                (!name.contains(' ')).then_some((name, o.as_str(), r))
            })
        };
        // 9.0 does not list them.
        let hidden: BTreeSet<String> = dumps()
            .filter(|(n, o, r)| {
                n.starts_with("ccw") && o.starts_with("exit=0") && !r.starts_with("exit=0")
            })
            .map(|(n, _, _)| n.to_owned())
            .collect();
        // Their XML is 9.0's once 11.3's changes are undone: `xml_as_9_0`; a DASD udev
        // types as a disk is a "dasd" in 11.3; a child of a device 9.0 hides hangs off the
        // next listed ancestor in 9.0.
        let as_9_0 = |o: &str, r: &str| {
            let mut x = versions::xml_as_9_0(o).replace(
                "<drive_type>dasd</drive_type>",
                "<drive_type>disk</drive_type>",
            );
            let parent = |t: &str| {
                let p = t.split("<parent>").nth(1)?;
                Some(p.split('<').next()?.to_owned())
            };
            if let (Some(ours), Some(theirs)) = (parent(&x), parent(r)) {
                if hidden.contains(&ours) {
                    x = x.replace(
                        &format!("<parent>{ours}</parent>"),
                        &format!("<parent>{theirs}</parent>"),
                    );
                }
            }
            x
        };
        let changed = dumps()
            .filter(|(_, o, r)| o != r && as_9_0(o, r) == *r)
            .map(|(n, _, _)| n.to_owned())
            .collect();
        Changed11_3 { hidden, changed }
    }

    /// Why answer `k` may differ from 9.0's, when it does because of these devices.
    fn explains(&self, k: &str, r: Option<&String>, o: Option<&str>) -> Option<&'static str> {
        if r.map(String::as_str) == o {
            return None;
        }
        let names_one =
            |set: &BTreeSet<String>| k.split([' ', '(', ')', '.', ',']).any(|w| set.contains(w));
        if names_one(&self.changed) || names_one(&self.hidden) {
            return Some(DISCOVERY_11_3);
        }
        // Lists and counts over a tree where 9.0 hides devices.
        let listing = [
            "virsh nodedev-list",
            "virsh -c RO_URI nodedev-list",
            "python listAllDevices",
            "python RO-socket listAllDevices",
            "python listDevices",
            "python numOfDevices",
            "raw after OPEN: LIST_ALL",
            "raw after OPEN: NUM_OF_DEVICES",
            "raw after OPEN: LIST_DEVICES",
        ];
        (!self.hidden.is_empty() && listing.iter().any(|p| k.starts_with(p)))
            .then_some(DISCOVERY_11_3)
    }
}

/// What the device tree under `root` (or the real host) holds: every entry of
/// `sys/class/*/`, `sys/bus/*/devices/` and `sys/block/`. When it changes during a run, the
/// two daemons may have seen different hosts and the run is repeated.
fn tree_snapshot(root: Option<&Path>) -> BTreeSet<String> {
    let sys = root.map_or_else(|| Path::new("/sys").to_path_buf(), |r| r.join("sys"));
    let mut dirs = vec![sys.join("block")];
    for (top, sub) in [("class", ""), ("bus", "devices")] {
        if let Ok(rd) = std::fs::read_dir(sys.join(top)) {
            for e in rd.flatten() {
                dirs.push(e.path().join(sub));
            }
        }
    }
    let mut out = BTreeSet::new();
    for d in dirs {
        if let Ok(rd) = std::fs::read_dir(&d) {
            for e in rd.flatten() {
                out.insert(e.path().display().to_string());
            }
        }
    }
    out
}

/// Every battery against both daemons while both serve the same tree.
fn collect(r: &Side, o: &Side, scratch: &Path) -> (Vec<String>, Answers, Answers) {
    let mut names: BTreeSet<String> = device_names(r).into_iter().collect();
    names.extend(device_names(o));
    let names: Vec<String> = names.into_iter().collect();
    let mut ref_answers = virsh_answers(r, &names, scratch);
    let mut our_answers = virsh_answers(o, &names, scratch);
    ref_answers.extend(raw_answers(r));
    our_answers.extend(raw_answers(o));
    ref_answers.extend(python_answers(r));
    our_answers.extend(python_answers(o));
    (names, ref_answers, our_answers)
}

/// Compares our daemon with each release's reference over `root` (None: the real host).
/// Both releases are compared before the test fails, so one run shows every difference.
fn run(label: &str, root: Option<&Path>) {
    let mut failures = Vec::new();
    for libvirt in Libvirt::BOTH {
        if libvirt.clients_available() {
            let label = format!("{label}, libvirt {}", libvirt.label());
            let f = run_against(libvirt, &label, root);
            if !f.is_empty() {
                failures.push(format!(
                    "[{label}] {} answers differ from the reference (- reference, + ours):\n{}",
                    f.len(),
                    f.join("\n")
                ));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// Starts both daemons over `root`, runs every battery against both with `libvirt`'s
/// clients and fails on any difference not listed for `libvirt`. If the tree changes during
/// a run (other tests adding interfaces on the real host), the run is repeated with fresh
/// daemons. Returns the differences.
fn run_against(libvirt: Libvirt, label: &str, root: Option<&Path>) -> Vec<String> {
    const ATTEMPTS: usize = 3;
    let scratch = tempfile::tempdir().unwrap();
    let mut attempt = 0;
    let (names, ref_answers, our_answers) = loop {
        attempt += 1;
        let before = tree_snapshot(root);
        let Some(reference) = Reference::start_version(libvirt, root) else {
            return Vec::new();
        };
        let ours = Daemon::start(root, "");
        let r = Side {
            uri: reference.uri.clone(),
            ro_uri: reference.ro_uri(),
            libvirt,
        };
        let o = Side {
            uri: ours.uri(),
            ro_uri: ours.ro_uri(),
            libvirt,
        };
        let got = collect(&r, &o, scratch.path());
        let after = tree_snapshot(root);
        if before == after || attempt == ATTEMPTS {
            if before != after {
                eprintln!("[{label}] note: the tree kept changing; comparing the last run anyway");
            }
            break got;
        }
        eprintln!("[{label}] the tree changed during run {attempt}; running again");
    };
    eprintln!("[{label}] {} devices", names.len());
    if let Some(dir) = std::env::var_os("VIRTNODEDEVD_DIFF_DUMP") {
        // Both answer sets, for reading what was compared.
        let dir = Path::new(&dir);
        std::fs::create_dir_all(dir).unwrap();
        for (who, answers) in [("reference", &ref_answers), ("ours", &our_answers)] {
            let text: String = answers
                .iter()
                .map(|(k, v)| format!("=== {k}\n{v}\n"))
                .collect();
            let file = format!("{}-{who}.txt", label.replace(' ', "-"));
            std::fs::write(dir.join(file), text).unwrap();
        }
    }

    let mut failures = Vec::new();
    // Our XML must validate against 11.3's schema (with 11.3's xmllint); 9.0's lacks what
    // 11.3 added (ccw <state>, ccwgroup).
    if libvirt == Libvirt::V11_3 {
        for n in &names {
            let key = format!("virsh nodedev-dumpxml {n}");
            for (who, answers) in [("reference", &ref_answers), ("ours", &our_answers)] {
                let Some(text) = answers.get(&key) else {
                    continue;
                };
                let Some(xml) = text
                    .strip_prefix("exit=0\n--- stdout\n")
                    .and_then(|t| t.split("--- stderr\n").next())
                else {
                    continue;
                };
                if let Err(e) = validate(libvirt, xml, scratch.path()) {
                    // Identical to the reference's answer: libvirt's own XML breaks its
                    // schema there (e.g. a MAC address with a tab, a disk of unknown block
                    // size), and the answer comparison covers it.
                    if who == "ours" && ref_answers.get(&key) != Some(text) {
                        failures.push(format!(
                            "=== schema: our XML of {n} fails nodedev.rng:\n{e}"
                        ));
                    } else {
                        let whose = if who == "ours" {
                            "our"
                        } else {
                            "the reference's"
                        };
                        eprintln!("[{label}] note: {whose} XML of {n} fails nodedev.rng: {e}");
                    }
                }
            }
        }
    }

    let (diffs, known) = compare(libvirt, &ref_answers, &our_answers);
    failures.extend(diffs);
    eprintln!(
        "[{label}] {} answers compared, {} unexpected differences, {} known",
        ref_answers.len(),
        failures.len(),
        known.len()
    );
    for k in &known {
        eprintln!("[{label}] known difference:\n{k}");
    }
    failures
}

fn fake_tree(label: &str, build: fn(&Path)) {
    let tree = tempfile::tempdir().unwrap();
    build(tree.path());
    run(label, Some(tree.path()));
}

#[test]
fn sample_tree_matches_reference() {
    fake_tree("sample tree", |p| {
        sample_tree(p);
    });
}

#[test]
fn rich_tree_matches_reference() {
    fake_tree("rich tree", |p| {
        rich_tree(p);
    });
}

#[test]
fn sriov_tree_matches_reference() {
    fake_tree("sriov tree", |p| {
        sriov_tree(p);
    });
}

#[test]
fn usb_sas_tree_matches_reference() {
    fake_tree("usb sas tree", |p| {
        usb_sas_tree(p);
    });
}

#[test]
fn fc_mdev_s390_tree_matches_reference() {
    fake_tree("fc mdev s390 tree", |p| {
        fc_mdev_s390_tree(p);
    });
}

/// An s390 host: qeth ccwgroup devices and their members, online and offline ccw devices,
/// DASDs, a zPCI function whose VPD needs escaping (libvirt 11.3's s390 additions).
#[test]
fn s390_tree_matches_reference() {
    fake_tree("s390 tree", |p| {
        fakesys::trees::s390(p).unwrap();
    });
}

/// Missing, empty, unreadable and symlinked attributes, dangling links and directories where
/// files belong (the UTF-8 variant: python cannot decode what libvirt passes through).
#[test]
fn hostile_tree_matches_reference() {
    fake_tree("hostile tree", |p| {
        fakesys::hostile_tree(p, false).unwrap();
    });
}

#[test]
fn real_host_matches_reference() {
    run("real host", None);
}
