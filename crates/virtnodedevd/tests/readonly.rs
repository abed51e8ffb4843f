//! The read-only socket: every procedure of the remote program, whatever its driver, answers
//! as libvirt answers it. libvirt's daemon calls the public API on a connection opened
//! read-only for a read-only client, so an API that checks for read-only access refuses
//! with OPERATION_DENIED (29) before finding that the node-device driver does not implement
//! it, and the argument checks some APIs make before that one come first.
//!
//! The sweep sends every procedure number of the table (1..=453, libvirt 11.3's) on the
//! read-only and the read-write socket of our daemon and of libvirt 11.3 (the reference for
//! behaviour) and of libvirt 9.0, over the same fake tree, and compares
//! the answers as (code, domain, message). The arguments are 4096 zero bytes: that decodes
//! as the all-zero value of any argument layout of the remote program (empty strings, absent
//! optional values, empty arrays, zero numbers) and libvirt ignores the bytes left over, so
//! every call gets past decoding to the checks this is about. Targeted calls then vary the
//! arguments the checks depend on (flags, optional strings, arrays).
//!
//! Differences are allowed only where `KNOWN_DIFFERENCES` (both releases),
//! `KNOWN_DIFFERENCES_11_3` or `KNOWN_DIFFERENCES_9_0` (what 11.3 changed) gives the reason;
//! the procedures that crash libvirt are not sent to it (`CRASH_LIBVIRT`).

mod common;

use std::collections::BTreeMap;
use std::path::Path;

use protocol::remote::{proc, TypedParam, TypedValue};
use protocol::{procedure, ReadOnly, REMOTE_PROGRAM, REMOTE_VERSION};
use rpc::client::{CallError, Client};
use xdr::Encoder;

use common::{open_client_at, sample_tree, Daemon, Libvirt, Reference};

/// The last procedure of the table (DOMAIN_EVENT_NIC_MAC_CHANGE, libvirt 11.3).
const MAX_PROC: i32 = 453;

/// Zero bytes: the all-zero arguments of any procedure, with room to spare.
const ZERO_ARGS: usize = 4096;

/// Procedures whose public API dereferences a driver the node-device connection does not
/// have: libvirt 9.0 and 11.3 die with SIGSEGV on them, so they are not sent to the
/// reference (on the sockets named). Ours must answer NO_SUPPORT.
const CRASH_LIBVIRT: &[(i32, &str)] = &[
    (87, "ro rw"),  // STORAGE_POOL_GET_INFO
    (98, "ro rw"),  // STORAGE_VOL_GET_INFO
    (152, "ro rw"), // NETWORK_IS_ACTIVE
    (153, "ro rw"), // NETWORK_IS_PERSISTENT
    (154, "ro rw"), // STORAGE_POOL_IS_ACTIVE
    (155, "ro rw"), // STORAGE_POOL_IS_PERSISTENT
    (156, "ro rw"), // INTERFACE_IS_ACTIVE
    (378, "ro rw"), // STORAGE_VOL_GET_INFO_FLAGS
    // libvirt 11.3's network metadata APIs call conn->networkDriver without checking it
    // (9.0 does not know these procedures): GET always, SET once past its read-only check.
    (444, "rw"),    // NETWORK_SET_METADATA
    (445, "ro rw"), // NETWORK_GET_METADATA
];

/// Whether the reference is spared procedure `p` on `socket`.
fn crashes_libvirt(socket: &str, p: i32) -> bool {
    CRASH_LIBVIRT
        .iter()
        .any(|(n, s)| *n == p && s.split(' ').any(|s| s == socket))
}

const ARGUMENT_CHECK: &str = "the public API of a call that read-only access may make checks \
    its arguments before finding no driver method (no read-only matter; both sockets): this \
    daemon answers NO_SUPPORT without looking at them";
const NEWER_API: &str = "a procedure of libvirt 11.3 (NODE_DEVICE_UPDATE since 10.1.0, \
    444-453 since 9.7.0-11.2.0) that 9.0 answers \"unknown procedure\": we serve 11.3's table";
const GET_AUTOSTART_11_3: &str = "libvirt 11.3's virNodeDeviceGetAutostart no longer refuses \
    read-only connections (9.0's did): we answer as 11.3";
const EVENT_ID_11_3: &str = "an event ID libvirt 11.3 added (domain NIC_MAC_CHANGE, network \
    METADATA_CHANGE), which 9.0's dispatcher refuses as unknown: we check the IDs as 11.3";
const ARGUMENT_CHECK_9_0: &str = "libvirt 9.0's public API checks an argument here that \
    11.3 no longer checks before finding no driver method; we answer NO_SUPPORT as 11.3";

/// (socket, procedure or targeted label, reason). Sockets: "ro", "rw". These hold for
/// libvirt 11.3 and 9.0 alike.
const KNOWN_DIFFERENCES: &[(&str, &str, &str)] = &[
    // Argument checks of APIs that read-only access may call: the same on both sockets.
    ("ro rw", "20", ARGUMENT_CHECK),
    ("ro rw", "57", ARGUMENT_CHECK),
    ("ro rw", "101", ARGUMENT_CHECK),
    ("ro rw", "159", ARGUMENT_CHECK),
    ("ro rw", "162", ARGUMENT_CHECK),
    ("ro rw", "194", ARGUMENT_CHECK),
    ("ro rw", "223", ARGUMENT_CHECK),
    ("ro rw", "230", ARGUMENT_CHECK),
    ("ro rw", "280", ARGUMENT_CHECK),
    ("ro rw", "340", ARGUMENT_CHECK),
    // Argument checks that come after the read-only one: only the rw socket reaches them.
    ("rw", "26", ARGUMENT_CHECK),
    ("rw", "30", ARGUMENT_CHECK),
    ("rw", "31", ARGUMENT_CHECK),
    ("rw", "32", ARGUMENT_CHECK),
    ("rw", "58", ARGUMENT_CHECK),
    ("rw", "103", ARGUMENT_CHECK),
    ("rw", "144", ARGUMENT_CHECK),
    ("rw", "197", ARGUMENT_CHECK),
    ("rw", "199", ARGUMENT_CHECK),
    ("rw", "204", ARGUMENT_CHECK),
    ("rw", "205", ARGUMENT_CHECK),
    ("rw", "219", ARGUMENT_CHECK),
    ("rw", "225", ARGUMENT_CHECK),
    ("rw", "226", ARGUMENT_CHECK),
    ("rw", "252", ARGUMENT_CHECK),
    ("rw", "254", ARGUMENT_CHECK),
    ("rw", "256", ARGUMENT_CHECK),
    ("rw", "260", ARGUMENT_CHECK),
    ("rw", "279", ARGUMENT_CHECK),
    ("rw", "288", ARGUMENT_CHECK),
    // virDomainOpenGraphicsFD: "fd passing is not supported", after its read-only check.
    ("rw", "343", ARGUMENT_CHECK),
    ("rw", "347", ARGUMENT_CHECK),
    ("rw", "352", ARGUMENT_CHECK),
    ("rw", "356", ARGUMENT_CHECK),
    ("rw", "357", ARGUMENT_CHECK),
    ("rw", "366", ARGUMENT_CHECK),
    ("rw", "402", ARGUMENT_CHECK),
    // Served here with the QEMU driver's semantics (tests/pci.rs); the read-only socket
    // still refuses them as libvirt does.
    ("rw", "118", PCI_SERVED),
    ("rw", "119", PCI_SERVED),
    ("rw", "120", PCI_SERVED),
    ("rw", "301", PCI_SERVED),
    (
        "ro rw",
        "70",
        "AUTH_POLKIT on a socket without polkit: libvirt fails without setting an error and \
         sends whatever error the worker thread last raised (another call's); ours says so",
    ),
];

const PCI_SERVED: &str = "PCI detach, reattach and reset are served by this daemon (issue 14) \
    where libvirt's node-device daemon answers NO_SUPPORT";

const XML_ERROR_11_3: &str = "libvirt 11.3 reports libxml2's errors on a string as \
    \"at line N: MESSAGE...\" (virxml.c catchXMLError without a file name) where 9.0 said \
    \"(node_device_definition):N: ...\": we word them as 11.3";

/// Differences with libvirt 11.3 only.
const KNOWN_DIFFERENCES_11_3: &[(&str, &str, &str)] = &[
    ("ro rw", "452", ARGUMENT_CHECK),
    // Argument checks 11.3 added after the read-only one (dname must not be empty) or has in
    // an API 9.0 lacks (nparams of virDomainSetThrottleGroup).
    ("rw", "63", ARGUMENT_CHECK),
    ("rw", "109", ARGUMENT_CHECK),
    ("rw", "217", ARGUMENT_CHECK),
    ("rw", "451", ARGUMENT_CHECK),
];

/// Differences with libvirt 9.0 only: what 11.3 changed.
const KNOWN_DIFFERENCES_9_0: &[(&str, &str, &str)] = &[
    ("ro rw", "278", ARGUMENT_CHECK_9_0),
    ("ro", "433", GET_AUTOSTART_11_3),
    (
        "ro",
        "NODE_DEVICE_GET_AUTOSTART(no arguments)",
        GET_AUTOSTART_11_3,
    ),
    ("ro rw", "444", NEWER_API),
    ("ro rw", "447", NEWER_API),
    ("ro rw", "448", NEWER_API),
    ("ro rw", "449", NEWER_API),
    ("ro rw", "450", NEWER_API),
    ("ro rw", "451", NEWER_API),
    ("ro rw", "452", NEWER_API),
    ("rw", "123", XML_ERROR_11_3),
    ("rw", "428", XML_ERROR_11_3),
    (
        "ro rw",
        "CONNECT_DOMAIN_EVENT_CALLBACK_REGISTER_ANY(27)",
        EVENT_ID_11_3,
    ),
    (
        "ro rw",
        "CONNECT_NETWORK_EVENT_REGISTER_ANY(1)",
        EVENT_ID_11_3,
    ),
];

/// What a call got: "ok", or the error as (code, domain, message).
fn answer(c: &mut Client, p: i32, args: &[u8]) -> String {
    match c.call_raw(p, args) {
        Ok(_) => "ok".into(),
        Err(CallError::Remote(e)) => format!("({}, {}, {:?})", e.code, e.domain, e.message),
        Err(CallError::Io(e)) => format!("connection lost: {:?}", e.kind()),
        Err(CallError::Decode) => "undecodable reply".into(),
    }
}

/// Builds XDR argument bytes.
#[derive(Default)]
struct Args(Encoder);

impl Args {
    fn u32(mut self, v: u32) -> Self {
        self.0.put_u32(v);
        self
    }
    fn hyper(mut self, v: i64) -> Self {
        self.0.put_i64(v);
        self
    }
    fn str(mut self, s: &str) -> Self {
        self.0.put_str(s);
        self
    }
    fn opt(self, s: Option<&str>) -> Self {
        match s {
            None => self.u32(0),
            Some(s) => self.u32(1).str(s),
        }
    }
    /// `remote_nonnull_domain` (name, uuid, id).
    fn dom(mut self) -> Self {
        self.0.put_str("d");
        self.0.put_fixed_opaque(&[0; 16]);
        self.0.put_i32(-1);
        self
    }
    fn param(mut self, field: &str) -> Self {
        xdr::Xdr::encode(
            &TypedParam {
                field: field.into(),
                value: TypedValue::UInt(1),
            },
            &mut self.0,
        );
        self
    }
    fn bytes(self) -> Vec<u8> {
        self.0.into_inner()
    }
}

/// Calls whose answer depends on the arguments the checks before (or of) the read-only one
/// look at; each is asked on both sockets.
fn targeted() -> Vec<(&'static str, i32, Vec<u8>)> {
    let a = Args::default;
    vec![
        ("DOMAIN_GET_XML_DESC(secure)", 14, a().dom().u32(1).bytes()),
        (
            "DOMAIN_GET_XML_DESC(migratable)",
            14,
            a().dom().u32(8).bytes(),
        ),
        (
            "DOMAIN_GET_XML_DESC(inactive)",
            14,
            a().dom().u32(2).bytes(),
        ),
        ("DOMAIN_GET_XML_DESC(no arguments)", 14, Vec::new()),
        (
            "DOMAIN_SNAPSHOT_GET_XML_DESC(secure)",
            186,
            a().str("s").dom().u32(1).bytes(),
        ),
        (
            "DOMAIN_CHECKPOINT_GET_XML_DESC(secure)",
            412,
            a().str("c").dom().u32(1).bytes(),
        ),
        (
            "DOMAIN_MANAGED_SAVE_GET_XML_DESC(secure)",
            388,
            a().dom().u32(1).bytes(),
        ),
        (
            "DOMAIN_GET_VCPUS_FLAGS(guest)",
            200,
            a().dom().u32(8).bytes(),
        ),
        (
            "DOMAIN_GET_VCPUS_FLAGS(live)",
            200,
            a().dom().u32(1).bytes(),
        ),
        (
            "DOMAIN_INTERFACE_ADDRESSES(agent)",
            353,
            a().dom().u32(1).u32(0).bytes(),
        ),
        (
            "DOMAIN_INTERFACE_ADDRESSES(arp)",
            353,
            a().dom().u32(2).u32(0).bytes(),
        ),
        (
            "DOMAIN_INTERFACE_ADDRESSES(source 40)",
            353,
            a().dom().u32(40).u32(0).bytes(),
        ),
        (
            "DOMAIN_SEND_PROCESS_SIGNAL(pid 1)",
            295,
            a().dom().hyper(1).u32(9).u32(0).bytes(),
        ),
        (
            "DOMAIN_RENAME(empty)",
            358,
            a().dom().opt(Some("")).u32(0).bytes(),
        ),
        (
            "DOMAIN_RENAME(x)",
            358,
            a().dom().opt(Some("x")).u32(0).bytes(),
        ),
        (
            "DOMAIN_MANAGED_SAVE_DEFINE_XML(running|paused)",
            389,
            a().dom().opt(None).u32(6).bytes(),
        ),
        (
            "DOMAIN_MANAGED_SAVE_DEFINE_XML(running)",
            389,
            a().dom().opt(None).u32(2).bytes(),
        ),
        (
            "CONNECT_BASELINE_HYPERVISOR_CPU(one cpu)",
            394,
            a().opt(None)
                .opt(None)
                .opt(None)
                .opt(None)
                .u32(1)
                .str("<cpu/>")
                .u32(0)
                .bytes(),
        ),
        (
            "DOMAIN_AUTHORIZED_SSH_KEYS_SET(append, no keys)",
            425,
            a().dom().str("u").u32(0).u32(1).bytes(),
        ),
        (
            "DOMAIN_AUTHORIZED_SSH_KEYS_SET(append|remove)",
            425,
            a().dom().str("u").u32(1).str("k").u32(3).bytes(),
        ),
        (
            "DOMAIN_AUTHORIZED_SSH_KEYS_SET(one key)",
            425,
            a().dom().str("u").u32(1).str("k").u32(0).bytes(),
        ),
        (
            "DOMAIN_SET_LAUNCH_SECURITY_STATE(one param)",
            439,
            a().dom().u32(1).param("sev-secret").u32(0).bytes(),
        ),
        (
            "DOMAIN_SET_LAUNCH_SECURITY_STATE(80-byte name)",
            439,
            a().dom().u32(1).param(&"n".repeat(80)).u32(0).bytes(),
        ),
        (
            "DOMAIN_SET_LAUNCH_SECURITY_STATE(79-byte name)",
            439,
            a().dom().u32(1).param(&"n".repeat(79)).u32(0).bytes(),
        ),
        ("DOMAIN_CREATE_XML(no arguments)", 10, Vec::new()),
        ("NODE_DEVICE_DETTACH(no arguments)", 118, Vec::new()),
        (
            "CONNECT_DOMAIN_EVENT_DEREGISTER_ANY(15)",
            proc::CONNECT_DOMAIN_EVENT_DEREGISTER_ANY,
            a().u32(15).bytes(),
        ),
        (
            "CONNECT_DOMAIN_EVENT_DEREGISTER_ANY(16)",
            proc::CONNECT_DOMAIN_EVENT_DEREGISTER_ANY,
            a().u32(16).bytes(),
        ),
        (
            "CONNECT_DOMAIN_EVENT_DEREGISTER_ANY(-1)",
            proc::CONNECT_DOMAIN_EVENT_DEREGISTER_ANY,
            a().u32(u32::MAX).bytes(),
        ),
        (
            "CONNECT_SECRET_EVENT_DEREGISTER_ANY(7)",
            381,
            a().u32(7).bytes(),
        ),
        // A name of 8 bytes that are not there.
        (
            "NODE_DEVICE_DESTROY(truncated)",
            proc::NODE_DEVICE_DESTROY,
            a().u32(8).bytes(),
        ),
        ("NODE_DEVICE_GET_AUTOSTART(no arguments)", 433, Vec::new()),
        // Event IDs at and past the last one each release knows (11.3 added domain 27,
        // NIC_MAC_CHANGE, and network 1, METADATA_CHANGE).
        (
            "CONNECT_DOMAIN_EVENT_CALLBACK_REGISTER_ANY(26)",
            316,
            a().u32(26).u32(0).bytes(),
        ),
        (
            "CONNECT_DOMAIN_EVENT_CALLBACK_REGISTER_ANY(27)",
            316,
            a().u32(27).u32(0).bytes(),
        ),
        (
            "CONNECT_DOMAIN_EVENT_CALLBACK_REGISTER_ANY(28)",
            316,
            a().u32(28).u32(0).bytes(),
        ),
        (
            "CONNECT_NETWORK_EVENT_REGISTER_ANY(1)",
            313,
            a().u32(1).u32(0).bytes(),
        ),
        (
            "CONNECT_NETWORK_EVENT_REGISTER_ANY(2)",
            313,
            a().u32(2).u32(0).bytes(),
        ),
        (
            "CONNECT_STORAGE_POOL_EVENT_REGISTER_ANY(2)",
            368,
            a().u32(2).u32(0).bytes(),
        ),
        (
            "CONNECT_SECRET_EVENT_REGISTER_ANY(2)",
            380,
            a().u32(2).u32(0).bytes(),
        ),
        (
            "CONNECT_NODE_DEVICE_EVENT_REGISTER_ANY(2)",
            374,
            a().u32(2).u32(0).bytes(),
        ),
        (
            "NODE_DEVICE_CREATE_XML(truncated)",
            proc::NODE_DEVICE_CREATE_XML,
            a().str("<device/>").bytes(),
        ),
        (
            "NODE_DEVICE_SET_AUTOSTART(computer)",
            proc::NODE_DEVICE_SET_AUTOSTART,
            a().str("computer").u32(1).bytes(),
        ),
    ]
}

/// Every answer of one daemon on one socket, keyed by procedure number or targeted label.
/// `reference`: the socket's label ("ro", "rw") when `sock` is the reference's, whose
/// crashing procedures are then left out.
fn sweep(sock: &Path, reference: Option<&str>) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let zero = vec![0u8; ZERO_ARGS];
    // CONNECT_OPEN on an open connection makes libvirt drop it: its own client.
    let mut c = open_client_at(sock);
    out.insert("1".into(), answer(&mut c, proc::CONNECT_OPEN, &zero));
    let mut c = open_client_at(sock);
    out.insert("2".into(), answer(&mut c, proc::CONNECT_CLOSE, &[]));
    // Before CONNECT_OPEN: decoding first, then the missing connection.
    let mut c = Client::connect(sock, REMOTE_PROGRAM, REMOTE_VERSION).unwrap();
    for p in [10, 41, 76, 118, proc::NODE_DEVICE_DESTROY, 433] {
        out.insert(format!("unopened {p}"), answer(&mut c, p, &zero));
        out.insert(
            format!("unopened {p}, no arguments"),
            answer(&mut c, p, &[]),
        );
    }
    let mut c = open_client_at(sock);
    for p in 3..=MAX_PROC {
        if reference.is_some_and(|socket| crashes_libvirt(socket, p)) {
            continue;
        }
        out.insert(p.to_string(), answer(&mut c, p, &zero));
    }
    for (label, p, args) in targeted() {
        out.insert(label.into(), answer(&mut c, p, &args));
    }
    out
}

fn fake_tree() -> tempfile::TempDir {
    let tree = tempfile::tempdir().unwrap();
    sample_tree(tree.path());
    tree
}

fn read_only_text(api: &str) -> String {
    format!("operation forbidden: read only access prevents {api}")
}

/// The table's read-only property, verified on our daemon alone: with all-zero arguments,
/// every always-refused API answers OPERATION_DENIED on the read-only socket (except the
/// ones whose earlier argument checks fail on zeros) and nothing else does; on the
/// read-write socket nothing is refused.
#[test]
fn read_only_refusals_follow_the_table() {
    let tree = fake_tree();
    let d = Daemon::start(Some(tree.path()), "");
    let ro = sweep(&d.ro_sock(), None);
    let rw = sweep(&d.sock(), None);
    // Zero arguments fail a check libvirt makes before the read-only one.
    let checked_first = [
        proc::DOMAIN_OPEN_GRAPHICS,
        proc::DOMAIN_SEND_PROCESS_SIGNAL,
        proc::DOMAIN_RENAME,
        proc::CONNECT_BASELINE_HYPERVISOR_CPU,
        proc::DOMAIN_SET_LAUNCH_SECURITY_STATE,
        proc::DOMAIN_FD_ASSOCIATE,
    ];
    let mut refused = 0;
    for p in 3..=MAX_PROC {
        let key = p.to_string();
        let (ro, rw) = (&ro[&key], &rw[&key]);
        assert!(
            !rw.starts_with("(29,"),
            "{p} refused on the rw socket: {rw}"
        );
        let Some(info) = procedure(p) else {
            assert_eq!(ro, &format!("(39, 7, \"unknown procedure: {p}\")"));
            continue;
        };
        let denied = ro.starts_with("(29,");
        if denied {
            refused += 1;
            assert!(ro.contains(&read_only_text(info.api.unwrap())), "{p}: {ro}");
        }
        match info.read_only {
            ReadOnly::Denied if !checked_first.contains(&p) => {
                assert!(denied, "{p} {} not refused: {ro}", info.name)
            }
            ReadOnly::Denied => assert!(!denied, "{p}: {ro}"),
            _ => assert!(!denied, "{p} {} refused: {ro}", info.name),
        }
    }
    assert_eq!(refused, 201 - checked_first.len());
    for (p, sockets) in CRASH_LIBVIRT {
        for (socket, answers) in [("ro", &ro), ("rw", &rw)] {
            if sockets.split(' ').any(|s| s == socket) {
                assert!(answers[&p.to_string()].starts_with("(3, "), "{socket} {p}");
            }
        }
    }
    // The read-only error of an API in each source file of libvirt, in its error domain.
    for (p, domain, api) in [
        (10, 20, "virDomainCreateXML"),
        (41, 19, "virNetworkDefineXML"),
        (76, 18, "virStoragePoolCreateXML"),
        (118, 22, "virNodeDeviceDettach"),
        (131, 26, "virInterfaceDefineXML"),
        (142, 30, "virSecretDefineXML"),
        (180, 33, "virNWFilterDefineXML"),
        (185, 35, "virDomainSnapshotCreateXML"),
        (411, 69, "virDomainCheckpointCreateXML"),
        (proc::NODE_DEVICE_DESTROY, 22, "virNodeDeviceDestroy"),
    ] {
        assert_eq!(
            ro[&p.to_string()],
            format!("(29, {domain}, {:?})", read_only_text(api))
        );
    }
    assert_eq!(
        ro["DOMAIN_GET_XML_DESC(secure)"],
        "(29, 20, \"operation forbidden: virDomainGetXMLDesc with secure flag\")"
    );
    assert_eq!(
        rw["DOMAIN_GET_XML_DESC(secure)"],
        "(3, 20, \"this function is not supported by the connection driver: virDomainGetXMLDesc\")"
    );
    // Malformed arguments: decoding first, then the read-only check, for any procedure.
    for key in [
        "DOMAIN_CREATE_XML(no arguments)",
        "NODE_DEVICE_DETTACH(no arguments)",
        "unopened 10, no arguments",
    ] {
        assert_eq!(ro[key], "(39, 7, \"Unable to decode message payload\")");
    }
    assert_eq!(
        ro["unopened 10"],
        "(1, 7, \"internal error: hypervisor connection not open\")"
    );
    assert_eq!(
        ro["NODE_DEVICE_DESTROY(truncated)"],
        "(39, 7, \"Unable to decode message payload\")"
    );
    // The daemon is still serving both sockets.
    let mut c = open_client_at(&d.ro_sock());
    assert_eq!(answer(&mut c, proc::CONNECT_GET_TYPE, &[]), "ok");
}

/// Reports a difference list and fails on any difference `KNOWN_DIFFERENCES` does not
/// explain; known ones that no longer differ are printed so their entries can go.
fn compare(
    socket: &str,
    ours: &BTreeMap<String, String>,
    theirs: &BTreeMap<String, String>,
    also_known: &[(&str, &str, &str)],
) -> (usize, Vec<String>) {
    let known = |key: &str| {
        KNOWN_DIFFERENCES
            .iter()
            .chain(also_known)
            .find(|(s, k, _)| *k == key && s.split(' ').any(|s| s == socket))
            .map(|(_, _, why)| *why)
    };
    let mut identical = 0;
    let mut unexplained = Vec::new();
    for (key, theirs) in theirs {
        let ours = &ours[key];
        match (ours == theirs, known(key)) {
            (true, None) => identical += 1,
            (true, Some(_)) => {
                identical += 1;
                eprintln!("{socket} {key}: listed as a difference but identical: {ours}");
            }
            (false, Some(why)) => {
                eprintln!("{socket} {key}: known difference ({why})\n  libvirt: {theirs}\n  ours:    {ours}")
            }
            (false, None) => unexplained.push(format!(
                "{socket} {key}:\n  libvirt: {theirs}\n  ours:    {ours}"
            )),
        }
    }
    eprintln!(
        "{socket} socket: {} answers compared, {identical} identical, {} different ({} unexplained); {} not sent to libvirt",
        theirs.len(),
        theirs.len() - identical,
        unexplained.len(),
        ours.len() - theirs.len()
    );
    (identical, unexplained)
}

#[test]
fn read_only_sweep_matches_libvirt_11_3() {
    sweep_against(Libvirt::V11_3, KNOWN_DIFFERENCES_11_3);
}

#[test]
fn read_only_sweep_matches_libvirt_9_0() {
    sweep_against(Libvirt::V9_0, KNOWN_DIFFERENCES_9_0);
}

/// Both sockets of our daemon and of the reference `libvirt`, over the same tree.
fn sweep_against(libvirt: Libvirt, also_known: &[(&str, &str, &str)]) {
    let tree = fake_tree();
    let Some(reference) = Reference::start_version(libvirt, Some(tree.path())) else {
        return;
    };
    let d = Daemon::start(Some(tree.path()), "");
    let ref_sock =
        |uri: &str| Path::new(uri.split_once("socket=").expect("socket in URI").1).to_path_buf();
    let mut unexplained = Vec::new();
    for (socket, ours, theirs) in [
        ("ro", d.ro_sock(), ref_sock(&reference.ro_uri())),
        ("rw", d.sock(), ref_sock(&reference.uri)),
    ] {
        let ours = sweep(&ours, None);
        let theirs = sweep(&theirs, Some(socket));
        let refused = |m: &BTreeMap<String, String>| {
            m.iter()
                .filter(|(k, v)| k.parse::<i32>().is_ok() && v.starts_with("(29,"))
                .count()
        };
        eprintln!(
            "{socket} socket: procedures refused read-only with zero arguments: libvirt {}, ours {}",
            refused(&theirs),
            refused(&ours)
        );
        // The reference really was asked (a refusal, a secure-flag refusal, NO_SUPPORT).
        let create = &theirs["10"];
        let secure = &theirs["DOMAIN_GET_XML_DESC(secure)"];
        if socket == "ro" {
            assert_eq!(
                create,
                &format!("(29, 20, {:?})", read_only_text("virDomainCreateXML"))
            );
            assert!(secure.contains("virDomainGetXMLDesc with secure flag"));
        } else {
            assert!(create.starts_with("(3, 20, "), "{create}");
            assert!(secure.starts_with("(3, 20, "), "{secure}");
        }
        unexplained.extend(compare(socket, &ours, &theirs, also_known).1);
    }
    assert!(
        unexplained.is_empty(),
        "answers differ from libvirt {}:\n{}",
        libvirt.label(),
        unexplained.join("\n")
    );
}
