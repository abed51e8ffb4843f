//! The wire protocol, driven by our own client against the real binary.

mod common;

use std::io::Read;
use std::process::Command;

use common::{sample_tree, Daemon};
use protocol::remote::{self as r, proc};
use protocol::{list_flags, REMOTE_PROGRAM};
use rpc::client::{decode_error, CallError, Client};
use rpc::header::{frame, Header, MessageType, Status, KEEPALIVE_PROGRAM};

fn remote_err<T: std::fmt::Debug>(r: Result<T, CallError>) -> rpc::VirError {
    match r {
        Err(CallError::Remote(e)) => e,
        other => panic!("expected a libvirt error, got {other:?}"),
    }
}

fn fake_daemon() -> (tempfile::TempDir, Daemon) {
    let tree = tempfile::tempdir().unwrap();
    sample_tree(tree.path());
    let d = Daemon::start(Some(tree.path()), "");
    (tree, d)
}

fn list_all(c: &mut Client, flags: u32) -> Vec<String> {
    let ret: r::ListAllRet = c
        .call(
            proc::CONNECT_LIST_ALL_NODE_DEVICES,
            &r::ListAllArgs {
                need_results: 1,
                flags,
            },
        )
        .unwrap();
    let mut names: Vec<String> = ret.devices.into_iter().map(|d| d.name).collect();
    names.sort();
    names
}

#[test]
fn list_all_returns_the_fake_tree() {
    let (_t, d) = fake_daemon();
    let mut c = d.open_client();
    let names = list_all(&mut c, 0);
    assert!(names.contains(&"computer".to_string()), "{names:?}");
    assert!(names.contains(&"pci_0000_01_00_0".to_string()), "{names:?}");
    assert!(
        names.contains(&"block_sdz_Test_Disk_TD123".to_string()),
        "{names:?}"
    );
    let pci = list_all(&mut c, 0x2);
    assert!(pci.iter().all(|n| n.starts_with("pci_")));
    assert_eq!(list_all(&mut c, list_flags::INACTIVE), Vec::<String>::new());
    let count: r::ListAllRet = c
        .call(
            proc::CONNECT_LIST_ALL_NODE_DEVICES,
            &r::ListAllArgs {
                need_results: 0,
                flags: 0,
            },
        )
        .unwrap();
    assert!(count.devices.is_empty());
    assert_eq!(count.ret as usize, names.len());
}

#[test]
fn list_all_with_unknown_flags_gives_libvirts_error() {
    let (_t, d) = fake_daemon();
    let mut c = d.open_client();
    let e = remote_err(c.call::<_, r::ListAllRet>(
        proc::CONNECT_LIST_ALL_NODE_DEVICES,
        &r::ListAllArgs {
            need_results: 1,
            flags: 0x2000000,
        },
    ));
    assert_eq!((e.code, e.domain), (8, 22));
    assert_eq!(
        e.message,
        "unsupported flags (0x2000000) in function nodeConnectListAllNodeDevices"
    );
}

#[test]
fn calls_before_open_are_refused_as_libvirt_does() {
    let (_t, d) = fake_daemon();
    let mut c = d.client();
    let e = remote_err(c.call::<_, r::NodeDeviceRet>(
        proc::NODE_DEVICE_LOOKUP_BY_NAME,
        &r::NameArgs {
            name: "computer".into(),
        },
    ));
    assert_eq!(e.message, "internal error: connection not open");
    let e = remote_err(c.call::<_, r::StringRet>(proc::CONNECT_GET_TYPE, &()));
    assert_eq!(e.message, "internal error: hypervisor connection not open");
    // Keepalive may be negotiated before OPEN.
    let f: r::IntRet = c
        .call(
            proc::CONNECT_SUPPORTS_FEATURE,
            &r::SupportsFeatureArgs { feature: 10 },
        )
        .unwrap();
    assert_eq!(f.value, 1);
}

#[test]
fn sasl_sockets_admit_no_one_without_a_mechanism() {
    // No SASL mechanism is implemented: a socket configured for SASL offers it and lets
    // nobody in, root included, rather than falling open to "none".
    let tree = tempfile::tempdir().unwrap();
    sample_tree(tree.path());
    let d = Daemon::start(Some(tree.path()), "auth_unix_rw = \"sasl\"");
    let mut c = d.client();
    let l: r::AuthListRet = c.call(proc::AUTH_LIST, &()).unwrap();
    assert_eq!(l.types, [r::auth_type::SASL]);
    let e = remote_err(c.call::<_, ()>(
        proc::CONNECT_OPEN,
        &r::ConnectOpenArgs {
            name: Some("nodedev:///system".into()),
            flags: 0,
        },
    ));
    assert_eq!(e.message, "authentication required");
    let e = remote_err(c.call::<_, ()>(proc::AUTH_SASL_INIT, &()));
    assert_eq!(e.code, 45, "{e:?}");
    // The read-only socket keeps its own setting.
    let mut ro = d.open_client_on(&d.ro_sock());
    assert!(!list_all(&mut ro, 0).is_empty());
}

#[test]
fn second_open_is_refused() {
    let (_t, d) = fake_daemon();
    let mut c = d.open_client();
    let e = remote_err(c.call::<_, ()>(
        proc::CONNECT_OPEN,
        &r::ConnectOpenArgs {
            name: Some("nodedev:///system".into()),
            flags: 0,
        },
    ));
    assert_eq!((e.code, e.domain), (1, 7));
    assert_eq!(e.message, "internal error: connection already open");
}

#[test]
fn missing_device_and_bad_flags_errors() {
    let (_t, d) = fake_daemon();
    let mut c = d.open_client();
    let e = remote_err(c.call::<_, r::StringRet>(
        proc::NODE_DEVICE_GET_XML_DESC,
        &r::NameFlagsArgs {
            name: "nosuch".into(),
            flags: 0,
        },
    ));
    assert_eq!((e.code, e.domain), (53, 22));
    assert_eq!(
        e.message,
        "Node device not found: no node device with matching name 'nosuch'"
    );
    assert_eq!(e.str1.as_deref(), Some("Node device not found: %1$s"));
    assert_eq!((e.int1, e.int2), (-1, -1));
    // Flags are checked before the lookup (1, VIR_NODE_DEVICE_XML_INACTIVE, is known since
    // libvirt 10.1.0).
    let e = remote_err(c.call::<_, r::StringRet>(
        proc::NODE_DEVICE_GET_XML_DESC,
        &r::NameFlagsArgs {
            name: "nosuch".into(),
            flags: 2,
        },
    ));
    assert_eq!(
        e.message,
        "unsupported flags (0x2) in function nodeDeviceGetXMLDesc"
    );
    assert_eq!(
        (e.str1.as_deref(), e.int1),
        (Some("nodeDeviceGetXMLDesc"), 0)
    );
}

#[test]
fn parent_of_computer_is_null_and_caps_are_listed() {
    let (_t, d) = fake_daemon();
    let mut c = d.open_client();
    let p: r::OptStringRet = c
        .call(
            proc::NODE_DEVICE_GET_PARENT,
            &r::NameArgs {
                name: "computer".into(),
            },
        )
        .unwrap();
    assert_eq!(p.value, None);
    let p: r::OptStringRet = c
        .call(
            proc::NODE_DEVICE_GET_PARENT,
            &r::NameArgs {
                name: "pci_0000_01_00_0".into(),
            },
        )
        .unwrap();
    assert_eq!(p.value.as_deref(), Some("pci_0000_00_1c_0"));
    let caps: r::NamesRet = c
        .call(
            proc::NODE_DEVICE_LIST_CAPS,
            &r::ListCapsArgs {
                name: "computer".into(),
                maxnames: 10,
            },
        )
        .unwrap();
    assert_eq!(caps.names, vec!["system".to_string()]);
    let e = remote_err(c.call::<_, r::NamesRet>(
        proc::NODE_DEVICE_LIST_CAPS,
        &r::ListCapsArgs {
            name: "computer".into(),
            maxnames: 65537,
        },
    ));
    assert_eq!((e.code, e.domain), (39, 7));
    assert_eq!(e.message, "maxnames > REMOTE_NODE_DEVICE_CAPS_LIST_MAX");
}

#[test]
fn unsupported_apis_name_themselves() {
    let (_t, d) = fake_daemon();
    let mut c = d.open_client();
    // CONNECT_NUM_OF_DOMAINS
    let e = remote_err(c.call_raw(51, &[]));
    assert_eq!((e.code, e.domain), (3, 20));
    assert_eq!(
        e.message,
        "this function is not supported by the connection driver: virConnectNumOfDomains"
    );
    // NODE_DEVICE_DETTACH is served (tests/pci.rs): on a host without VFIO the QEMU
    // driver's check answers before the device is looked up.
    let e = remote_err(c.call::<_, ()>(118, &r::NameArgs { name: "x".into() }));
    assert_eq!((e.code, e.domain), (74, 10), "{}", e.message);
    let e = remote_err(c.call_raw(376, &[]));
    assert_eq!(e.message, "unknown procedure: 376");
    let e = remote_err(c.call_raw(9999, &[]));
    assert_eq!(e.message, "unknown procedure: 9999");
}

#[test]
fn read_only_socket_refuses_changes() {
    let (_t, d) = fake_daemon();
    let mut c = d.open_client_on(&d.ro_sock());
    let e = remote_err(c.call::<_, ()>(
        proc::NODE_DEVICE_DESTROY,
        &r::NameArgs {
            name: "nosuch".into(),
        },
    ));
    assert_eq!((e.code, e.domain), (29, 22));
    assert_eq!(
        e.message,
        "operation forbidden: read only access prevents virNodeDeviceDestroy"
    );
    // libvirt 11.3 no longer refuses virNodeDeviceGetAutostart read-only (9.0 did);
    // `computer` is autostarted, as libvirt sets it.
    let autostart: r::IntRet = c
        .call(
            proc::NODE_DEVICE_GET_AUTOSTART,
            &r::NameArgs {
                name: "computer".into(),
            },
        )
        .unwrap();
    assert_eq!(autostart.value, 1);
    // Reads work.
    assert!(!list_all(&mut c, 0).is_empty());
}

#[test]
fn destroying_a_pci_device_is_unsupported() {
    let (_t, d) = fake_daemon();
    let mut c = d.open_client();
    let e = remote_err(c.call::<_, ()>(
        proc::NODE_DEVICE_DESTROY,
        &r::NameArgs {
            name: "computer".into(),
        },
    ));
    assert_eq!((e.code, e.domain), (67, 22));
    assert_eq!(
        e.message,
        "unsupported configuration: Unsupported device type"
    );
}

#[test]
fn unknown_program_and_bad_status_get_rpc_errors() {
    let (_t, d) = fake_daemon();
    let mut c = d.client();
    let h = Header {
        prog: 0x1234_5678,
        vers: 1,
        proc_: 1,
        mtype: MessageType::CALL,
        serial: 7,
        status: Status::OK,
    };
    c.send_raw(&frame(&h, |_| {})).unwrap();
    let m = c.read_message().unwrap();
    assert_eq!((m.header.serial, m.header.status), (7, Status::ERROR));
    let e = decode_error(&m.payload).unwrap();
    assert_eq!(e.message, "Cannot find program 305419896 version 1");

    let h = Header {
        prog: REMOTE_PROGRAM,
        status: Status(3),
        serial: 8,
        ..h
    };
    c.send_raw(&frame(&h, |_| {})).unwrap();
    let e = decode_error(&c.read_message().unwrap().payload).unwrap();
    assert_eq!(e.message, "Unexpected message status 3");
}

#[test]
fn truncated_arguments_keep_the_connection() {
    let (_t, d) = fake_daemon();
    let mut c = d.open_client();
    let e = remote_err(c.call_raw(proc::NODE_DEVICE_LOOKUP_BY_NAME, &[0, 0, 0, 9, b'c']));
    assert_eq!((e.code, e.domain), (39, 7));
    assert_eq!(e.message, "Unable to decode message payload");
    assert!(!list_all(&mut c, 0).is_empty());
}

#[test]
fn keepalive_ping_gets_a_pong() {
    let (_t, d) = fake_daemon();
    let mut c = d.client();
    let ping = Header::message(KEEPALIVE_PROGRAM, 1, 1, 0);
    c.send_raw(&frame(&ping, |_| {})).unwrap();
    let m = c.read_message().unwrap();
    assert_eq!(m.header, Header::message(KEEPALIVE_PROGRAM, 1, 2, 0));
}

#[test]
fn malformed_frames_close_only_that_connection() {
    let (_t, d) = fake_daemon();
    for bad in [
        &[0u8, 0, 0, 3][..],
        &[0, 0, 0, 20, 1, 2, 3, 4],
        &[0xff, 0xff, 0xff, 0xff],
    ] {
        let mut c = d.client();
        c.send_raw(bad).unwrap();
        let mut buf = [0u8; 1];
        let mut s = c.stream();
        assert_eq!(s.read(&mut buf).unwrap_or(0), 0, "connection should close");
    }
    // The daemon still serves everyone else.
    let mut c = d.open_client();
    assert!(!list_all(&mut c, 0).is_empty());
}

#[test]
fn close_replies_then_hangs_up() {
    let (_t, d) = fake_daemon();
    let mut c = d.open_client();
    let _: () = c.call(proc::CONNECT_CLOSE, &()).unwrap();
    let mut buf = [0u8; 1];
    let mut s = c.stream();
    assert_eq!(s.read(&mut buf).unwrap_or(0), 0);
}

#[test]
fn event_callbacks_are_numbered_daemon_wide_and_owned_by_their_client() {
    let (_t, d) = fake_daemon();
    let mut a = d.open_client();
    let mut b = d.open_client();
    let reg = |c: &mut Client, id| -> i32 {
        c.call::<_, r::IntRet>(
            proc::CONNECT_NODE_DEVICE_EVENT_REGISTER_ANY,
            &r::EventRegisterAnyArgs {
                event_id: id,
                dev: None,
            },
        )
        .unwrap()
        .value
    };
    let first = reg(&mut a, 0);
    let second = reg(&mut b, 1);
    assert_eq!(second, first + 1);
    let dereg = |c: &mut Client, id: i32| -> Result<(), CallError> {
        c.call(
            proc::CONNECT_NODE_DEVICE_EVENT_DEREGISTER_ANY,
            &r::EventDeregisterAnyArgs { callback_id: id },
        )
    };
    let e = remote_err(dereg(&mut b, first));
    assert_eq!(
        e.message,
        format!("internal error: node device event callback {first} not registered")
    );
    dereg(&mut a, first).unwrap();
    let e = remote_err(a.call::<_, r::IntRet>(
        proc::CONNECT_NODE_DEVICE_EVENT_REGISTER_ANY,
        &r::EventRegisterAnyArgs {
            event_id: 2,
            dev: None,
        },
    ));
    assert_eq!(
        e.message,
        "internal error: unsupported node device event ID 2"
    );
}

#[test]
fn command_line_follows_the_man_page() {
    let out = Command::new(common::BIN).arg("--version").output().unwrap();
    assert!(out.status.success());
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim_end(),
        format!("{} (libvirt) 11.3.0", common::BIN)
    );
    let out = Command::new(common::BIN).arg("--bogus").output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("unrecognized option '--bogus'"));
    let out = Command::new(common::BIN)
        .args(["-t", "x"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let out = Command::new(common::BIN).arg("--help").output().unwrap();
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--pid-file <file>"));
}

#[test]
fn a_second_daemon_on_the_same_sockets_refuses_to_start() {
    let (_t, d) = fake_daemon();
    let conf = d.dir.path().join("virtnodedevd.conf");
    let out = Command::new(common::BIN)
        .arg("-f")
        .arg(&conf)
        .arg("-p")
        .arg(d.dir.path().join("other.pid"))
        .output()
        .unwrap();
    // A socket failure: VIR_DAEMON_ERR_NETWORK.
    assert_eq!(out.status.code(), Some(6));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("another daemon is listening"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // The first one still answers.
    let mut c = d.open_client();
    assert!(!list_all(&mut c, 0).is_empty());
}

#[test]
fn sigterm_removes_sockets_and_pid_file() {
    let (_t, mut d) = fake_daemon();
    let status = d.stop();
    assert!(status.success());
    assert!(!d.sock().exists());
    assert!(!d.ro_sock().exists());
    assert!(!d.dir.path().join("virtnodedevd.pid").exists());
}

#[test]
fn idle_timeout_exits() {
    let tree = tempfile::tempdir().unwrap();
    sample_tree(tree.path());
    let dir = tempfile::tempdir().unwrap();
    let conf = dir.path().join("c.conf");
    std::fs::write(
        &conf,
        format!("unix_sock_dir = \"{}\"\n", dir.path().display()),
    )
    .unwrap();
    let status = Command::new(common::BIN)
        .args(["-t", "1", "-f"])
        .arg(&conf)
        .arg("-p")
        .arg(dir.path().join("p.pid"))
        .env("VIRTNODEDEVD_HOST_ROOT", tree.path())
        .status()
        .unwrap();
    assert!(status.success());
    assert!(!dir.path().join("virtnodedevd-sock").exists());
}

#[test]
fn largest_legal_message_is_answered() {
    let (_t, d) = fake_daemon();
    let mut c = d.open_client();
    // 32 MiB + 4 bytes in all, the most libvirt accepts; trailing argument bytes are ignored.
    let payload = vec![0u8; rpc::header::MESSAGE_MAX - rpc::header::HEADER_LEN];
    let t: r::StringRet = xdr::Xdr::decode(&mut xdr::Decoder::new(
        &c.call_raw(proc::CONNECT_GET_TYPE, &payload).unwrap(),
    ))
    .unwrap();
    assert_eq!(t.value, "nodedev");
}

/// ListAllNodeDevices and GetXMLDesc flags as libvirt 11.3 takes them, over the sample tree
/// and the s390 one (qeth groups and their members): PERSISTENT and TRANSIENT (10.1.0) alone
/// and with the state filters, the ccwgroup and ccwgroup_member bits (11.1.0), and the bits
/// still refused, whose error names only the unsupported ones (virCheckFlags).
#[test]
fn list_and_xml_flags_are_libvirt_11_3s() {
    list_and_xml_flags_over(common::sample_tree, false);
    list_and_xml_flags_over(
        |dir: &std::path::Path| fakesys::trees::s390(dir).unwrap(),
        true,
    );
}

fn list_and_xml_flags_over(build: impl Fn(&std::path::Path) -> fakesys::FakeSys, s390: bool) {
    let tree = tempfile::tempdir().unwrap();
    build(tree.path());
    let d = Daemon::start(Some(tree.path()), "");
    let Some(reference) = common::Reference::start(Some(tree.path())) else {
        return;
    };
    let mut ours = d.open_client();
    let mut theirs = reference.open_client();
    let answer = |c: &mut Client, p: i32, args: &[u8]| match c.call_raw(p, args) {
        Ok(reply) if p == proc::CONNECT_LIST_ALL_NODE_DEVICES => {
            let ret = <r::ListAllRet as xdr::Xdr>::decode(&mut xdr::Decoder::new(&reply)).unwrap();
            let mut names: Vec<String> = ret.devices.into_iter().map(|d| d.name).collect();
            names.sort();
            format!("{names:?}")
        }
        Ok(reply) => format!("ok {}", String::from_utf8_lossy(&reply[4..])),
        Err(CallError::Remote(e)) => format!("({}, {}, {})", e.code, e.domain, e.message),
        Err(e) => format!("{e:?}"),
    };
    let mut calls: Vec<(String, i32, Vec<u8>)> = Vec::new();
    for flags in [
        list_flags::PERSISTENT,
        list_flags::TRANSIENT,
        list_flags::PERSISTENT | list_flags::TRANSIENT,
        list_flags::PERSISTENT | list_flags::INACTIVE,
        list_flags::TRANSIENT | list_flags::ACTIVE,
        1 | list_flags::PERSISTENT,
        1 | list_flags::TRANSIENT,
        2 | list_flags::TRANSIENT,
        1 << 22,
        1 << 23,
        1 << 22 | 1 << 23,
        1 << 23 | 1 << 15,
        1 << 22 | list_flags::PERSISTENT,
        1 << 23 | list_flags::TRANSIENT | list_flags::ACTIVE,
        1 << 15 | list_flags::INACTIVE,
        1 << 24,
        1 << 25 | list_flags::ACTIVE,
        0x0f00_0000 | 3,
    ] {
        let mut e = xdr::Encoder::new();
        e.put_i32(1);
        e.put_u32(flags);
        calls.push((
            format!("ListAll({flags:#x})"),
            proc::CONNECT_LIST_ALL_NODE_DEVICES,
            e.into_inner(),
        ));
    }
    for flags in [1u32, 2, 3, 0x80] {
        let mut e = xdr::Encoder::new();
        e.put_str("computer");
        e.put_u32(flags);
        calls.push((
            format!("GetXMLDesc(computer, {flags:#x})"),
            proc::NODE_DEVICE_GET_XML_DESC,
            e.into_inner(),
        ));
    }
    let mut diffs = Vec::new();
    for (label, p, args) in &calls {
        let want = answer(&mut theirs, *p, args);
        let got = answer(&mut ours, *p, args);
        if want != got {
            diffs.push(format!("{label}\n  11.3: {want}\n  ours: {got}"));
        }
    }
    assert!(diffs.is_empty(), "{}", diffs.join("\n"));
    // The s390 tree has qeth groups and members for the ccwgroup bits to find.
    for bit in [1 << 22, 1 << 23] {
        assert_eq!(list_all(&mut ours, bit).is_empty(), !s390, "{bit:#x}");
    }
}
