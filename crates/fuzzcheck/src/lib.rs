//! The bodies of the fuzz targets. `fuzz/` (cargo-fuzz, nightly) wraps each in a
//! `fuzz_target!`; this crate has no libFuzzer dependency so that `cargo test` on stable
//! replays every committed seed and corpus entry through the very same code
//! (`tests/replay.rs`). A panic is a finding; nothing here catches one.
//!
//! Also: decoding the way the daemon decodes, per procedure, with checks that whatever
//! decodes also encodes back consistently.

pub mod structured;

use protocol::admin::{AdminCall, ADMIN_PROGRAM};
use protocol::remote::{self as r, proc};
use protocol::{ManageCall, RemoteCall, REMOTE_PROGRAM, REMOTE_STRING_MAX};
use rpc::header::{HEADER_LEN, LEN_LEN, MESSAGE_MAX};
use rpc::server::{next_frame, Step};
use rpc::{Header, MessageType};
use virconf::daemon::DaemonConfig;
use virconf::Conf;
use xdr::{Decoder, Encoder, Xdr};

/// Decodes a `T` from the front of `data` as the daemon does (strings limited to
/// `string_max`). When it decodes, the value must encode to exactly as many bytes as were
/// consumed (padding and discriminants may differ, lengths not), and that encoding must
/// decode again to the same encoding.
pub fn roundtrip<T: Xdr>(data: &[u8], string_max: u32) -> Option<T> {
    let mut d = Decoder::new(data).with_string_max(string_max);
    let v = T::decode(&mut d).ok()?;
    let consumed = data.len() - d.remaining();
    let bytes = xdr::to_bytes(&v);
    assert_eq!(bytes.len(), consumed, "re-encoding changed the length");
    let again = T::decode(&mut Decoder::new(&bytes).with_string_max(string_max))
        .expect("our own encoding does not decode");
    assert_eq!(xdr::to_bytes(&again), bytes, "encoding is not stable");
    Some(v)
}

/// The daemon's typed decode of `args` agrees with decoding `T` on its own: same encoding
/// (compared as bytes, since a NaN double never equals itself).
fn decoded_alike<T: Xdr>(args: &[u8], decoded: &T) {
    let alone = roundtrip::<T>(args, REMOTE_STRING_MAX).expect("decodes alone too");
    assert_eq!(xdr::to_bytes(&alone), xdr::to_bytes(decoded));
}

/// The argument decoding of one remote-program call, as `virtnodedevd`'s `remote` module
/// does it for procedure `p`: the procedure's layout check, the one typed decode
/// ([`RemoteCall::decode`], shared with the daemon), then the parsers the decoded values
/// are handed to. What decodes must round-trip.
pub fn remote_call(p: i32, args: &[u8]) {
    if !protocol::arg_layouts::args_decode(p, args) {
        return;
    }
    let Ok(call) = RemoteCall::decode(p, args) else {
        return;
    };
    match call {
        RemoteCall::Manage(ManageCall::NodeDeviceCreateXml(x))
        | RemoteCall::Manage(ManageCall::NodeDeviceDefineXml(x)) => {
            decoded_alike::<r::XmlFlagsArgs>(args, &x);
            let _ = nodedev::parse::parse_definition(&x.xml_desc, x.flags & 1 != 0);
        }
        RemoteCall::Manage(ManageCall::NodeDeviceUpdate(x)) => {
            decoded_alike::<r::NodeDeviceUpdateArgs>(args, &x);
            let _ = nodedev::parse::parse_existing(&x.xml_desc);
        }
        RemoteCall::ConnectSetIdentity(x) => {
            decoded_alike::<r::SetIdentityArgs>(args, &x);
        }
        _ => {}
    }
}

/// Every remote procedure whose arguments the daemon decodes (new ones go at the end:
/// the seeds choose by index).
pub const REMOTE_PROCS: &[i32] = &[
    proc::CONNECT_OPEN,
    proc::CONNECT_SUPPORTS_FEATURE,
    proc::CONNECT_SET_IDENTITY,
    proc::NODE_NUM_OF_DEVICES,
    proc::NODE_LIST_DEVICES,
    proc::CONNECT_LIST_ALL_NODE_DEVICES,
    proc::NODE_DEVICE_LOOKUP_SCSI_HOST_BY_WWN,
    proc::NODE_DEVICE_GET_XML_DESC,
    proc::NODE_DEVICE_UNDEFINE,
    proc::NODE_DEVICE_CREATE,
    proc::NODE_DEVICE_LOOKUP_BY_NAME,
    proc::NODE_DEVICE_GET_PARENT,
    proc::NODE_DEVICE_NUM_OF_CAPS,
    proc::NODE_DEVICE_IS_ACTIVE,
    proc::NODE_DEVICE_IS_PERSISTENT,
    proc::NODE_DEVICE_GET_AUTOSTART,
    proc::NODE_DEVICE_DESTROY,
    proc::NODE_DEVICE_LIST_CAPS,
    proc::CONNECT_NODE_DEVICE_EVENT_REGISTER_ANY,
    proc::CONNECT_NODE_DEVICE_EVENT_DEREGISTER_ANY,
    proc::NODE_DEVICE_SET_AUTOSTART,
    proc::NODE_DEVICE_CREATE_XML,
    proc::NODE_DEVICE_DEFINE_XML,
    proc::NODE_DEVICE_UPDATE,
    // Procedures the daemon does not serve: decoded against their layouts only, then
    // (some) their arguments checked as libvirt's public API checks them.
    proc::DOMAIN_GET_XML_DESC,
    proc::DOMAIN_SNAPSHOT_GET_XML_DESC,
    proc::DOMAIN_SEND_PROCESS_SIGNAL,
    proc::DOMAIN_RENAME,
    proc::DOMAIN_INTERFACE_ADDRESSES,
    proc::DOMAIN_SET_LAUNCH_SECURITY_STATE,
];

/// The argument decoding of one admin-program call: the daemon's one typed decode
/// ([`AdminCall::decode`]), then the log filter/output parsers the logging calls feed.
pub fn admin_call(p: i32, args: &[u8]) {
    match AdminCall::decode(p, args) {
        Ok(AdminCall::ConnectSetLoggingOutputs(s)) => {
            let _ = virconf::log::parse_log_outputs(s.value.as_deref().unwrap_or(""));
        }
        Ok(AdminCall::ConnectSetLoggingFilters(s)) => {
            let _ = virconf::log::parse_log_filters(s.value.as_deref().unwrap_or(""));
        }
        _ => {}
    }
}

/// A call's arguments handed to the program it names, as the daemon's sockets would.
pub fn program_call(prog: u32, p: i32, args: &[u8]) {
    match prog {
        REMOTE_PROGRAM => remote_call(p, args),
        ADMIN_PROGRAM => admin_call(p, args),
        _ => {}
    }
}

/// A target's body: one input, and a panic for a finding.
pub type Body = fn(&[u8]);

/// Every target: its name (the directory under `fuzz/seeds`, `fuzz/corpus` and the
/// cargo-fuzz binary) and its body.
pub const TARGETS: &[(&str, Body)] = &[
    ("xdr_decode", xdr_decode),
    ("rpc_frames", rpc_frames),
    ("remote_args", remote_args),
    ("admin_args", admin_args),
    ("uevent", uevent),
    ("virconf", virconf),
    ("virconf_log", virconf_log),
    ("nodedev_xml", nodedev_xml),
    ("nodedev_xml_structured", nodedev_xml_structured),
    ("vpd", vpd),
];

/// The XDR decoder driven by the input: the first bytes pick a string limit and a
/// sequence of reads, the rest is the data read. No read may panic, read past the data or
/// let `remaining()` grow; generic containers must round-trip.
pub fn xdr_decode(data: &[u8]) {
    if data.len() < 2 {
        return;
    }
    let string_max = match data[0] % 4 {
        0 => 0,
        1 => 16,
        2 => 4_194_304,
        _ => u32::MAX,
    };
    let nops = (data[1] % 32) as usize;
    let (ops, rest) = data[2..].split_at(nops.min(data.len() - 2));
    let mut d = Decoder::new(rest).with_string_max(string_max);
    for &op in ops {
        let before = d.remaining();
        let ok = match op % 10 {
            0 => d.get_u32().is_ok(),
            1 => d.get_i32().is_ok(),
            2 => d.get_u64().is_ok(),
            3 => d.get_i64().is_ok(),
            4 => d.get_fixed_opaque((op / 10) as usize).is_ok(),
            5 => d
                .get_opaque()
                .map(|b| assert!(b.len() as u64 <= string_max as u64))
                .is_ok(),
            6 => d.get_string().is_ok(),
            7 => d.get_present().is_ok(),
            8 => d.get_count((op / 10) as u32).is_ok(),
            _ => d.get_fixed_opaque(usize::MAX - (op as usize)).is_ok(),
        };
        assert!(d.remaining() <= before);
        if !ok {
            break;
        }
    }

    roundtrip::<Vec<Option<String>>>(rest, string_max);
    roundtrip::<Vec<Vec<u32>>>(rest, string_max);
    roundtrip::<Option<Option<[u8; 16]>>>(rest, string_max);
    roundtrip::<Vec<u64>>(rest, string_max);
    roundtrip::<Vec<f64>>(rest, string_max);
}

/// A client's byte stream as the server's connection loop reads it: frames split by
/// `rpc::server::next_frame`, headers decoded, `CALL_WITH_FDS` counts skipped, and each
/// call's arguments decoded by the program it names (remote or admin).
pub fn rpc_frames(data: &[u8]) {
    let mut buf = data;
    loop {
        match next_frame(buf) {
            Step::NeedMore => {
                if buf.len() >= LEN_LEN {
                    let len = u32::from_be_bytes([buf[0], buf[1], buf[2], buf[3]]) as usize;
                    assert!(len > buf.len());
                }
                break;
            }
            Step::Close => break,
            Step::Frame(len) => {
                assert!(len >= LEN_LEN + HEADER_LEN && len <= buf.len());
                assert!(len - LEN_LEN <= MESSAGE_MAX);
                let msg = &buf[LEN_LEN..len];
                buf = &buf[len..];
                let header =
                    Header::decode(&mut Decoder::new(msg)).expect("a frame always holds a header");
                let mut e = Encoder::new();
                header.encode(&mut e);
                assert_eq!(e.into_inner(), &msg[..HEADER_LEN]);
                let mut payload = &msg[HEADER_LEN..];
                match header.mtype {
                    MessageType::CALL => {}
                    MessageType::CALL_WITH_FDS if payload.len() >= 4 => payload = &payload[4..],
                    _ => {
                        let _ = rpc::client::decode_error(payload);
                        continue;
                    }
                }
                program_call(header.prog, header.proc_, payload);
            }
        }
    }
}

/// The remote program's call arguments: the first byte picks one of the procedures the
/// daemon decodes ([`REMOTE_PROCS`]), the rest is its argument payload (then handed on as
/// the daemon does, e.g. CREATE_XML's XML to the definition parser).
pub fn remote_args(data: &[u8]) {
    let Some((&sel, args)) = data.split_first() else {
        return;
    };
    remote_call(REMOTE_PROCS[sel as usize % REMOTE_PROCS.len()], args);
}

/// The admin program's call arguments: the first byte picks the procedure (1..=20), the
/// rest is its argument payload (logging calls go on to the log filter/output parsers).
pub fn admin_args(data: &[u8]) {
    let Some((&sel, args)) = data.split_first() else {
        return;
    };
    admin_call(1 + (sel % 20) as i32, args);
}

/// Netlink uevent datagrams (kernel and udevd formats). What parses must name a device
/// under /sys: an absolute DEVPATH without `..`.
pub fn uevent(data: &[u8]) {
    if let Some(ev) = virtnodedevd::uevent::parse(data) {
        assert!(!ev.action.is_empty());
        for p in std::iter::once(&ev.devpath).chain(ev.devpath_old.as_ref()) {
            assert!(p.starts_with('/'));
            assert!(!p.split('/').any(|c| c == ".."));
        }
        assert!(ev.syspath().starts_with("/sys/"));
    }
}

/// A configuration file: `Conf::parse`, then `DaemonConfig::from_conf` (privileged and
/// not) and the checks the daemon runs on the result (socket modes, logging, UUID source).
pub fn virconf(data: &[u8]) {
    let Ok(conf) = Conf::parse(data, "virtnodedevd.conf") else {
        return;
    };
    for privileged in [true, false] {
        if let Ok(cfg) = DaemonConfig::from_conf(&conf, privileged) {
            let _ = cfg.socket_modes();
            let _ = cfg.logging();
            let _ = cfg.host_uuid_source();
        }
    }
}

/// libvirt's log filter and output syntax (`log_filters`, `log_outputs`, LIBVIRT_LOG_*,
/// virt-admin's daemon-log-filters/-outputs).
pub fn virconf_log(data: &[u8]) {
    let s = String::from_utf8_lossy(data);
    let _ = virconf::log::parse_log_filters(&s);
    let _ = virconf::log::parse_log_outputs(&s);
}

/// Node-device definitions (nodedev-create / nodedev-define XML): the XML reader, the
/// definition parser and, with VALIDATE, the schema check; NodeDeviceUpdate's parse of an
/// existing device.
pub fn nodedev_xml(data: &[u8]) {
    let Ok(xml) = std::str::from_utf8(data) else {
        return;
    };
    let _ = nodedev::parse::parse_xml(xml);
    let _ = nodedev::parse::parse_definition(xml, false);
    let _ = nodedev::parse::parse_definition(xml, true);
    let _ = nodedev::parse::parse_existing(xml);
}

/// [`nodedev_xml`] over a document built by [`structured::xml`]: a few input bytes
/// describe deep nesting, long names, many attributes or huge text, which byte-level
/// mutation of XML text reaches only by luck.
pub fn nodedev_xml_structured(data: &[u8]) {
    nodedev_xml(structured::xml_within(data, structured_max()).as_bytes());
}

/// The size cap of [`nodedev_xml_structured`]'s documents: REMOTE_STRING_MAX, or
/// `FUZZ_STRUCTURED_MAX` (bytes) for a small-input campaign (`fuzz/run`).
fn structured_max() -> usize {
    static MAX: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
    *MAX.get_or_init(|| {
        std::env::var("FUZZ_STRUCTURED_MAX")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(structured::OUTPUT_MAX)
    })
}

/// PCI Vital Product Data images (a device's sysfs `vpd` file, written by its firmware).
pub fn vpd(data: &[u8]) {
    let _ = nodedev::parse_vpd(data);
}
