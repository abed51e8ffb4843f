//! Mediated devices and NPIV vHBAs created, defined, started, stopped, undefined and updated
//! through the API over a fake tree, with real clients (virsh, Debian's mdevctl) and the
//! reference. Each test starts its own host through [`MdevHost`] (tree, daemon, fake kernel;
//! see `common/mdev.rs`).

mod common;

use std::path::Path;
use std::time::Duration;

use common::mdev::{
    fails, mdev_xml, mdevctl, mdevctl_ns, mdevctl_usable, ok, run, snapshot, vhba_xml, wait_until,
    Ev, MdevHost, GPU,
};
use common::{fc_mdev_s390_tree, virsh_available, Daemon, Libvirt, FC_HBA_WWN};
use protocol::remote::{self as r, proc};
use rpc::client::Client;

/// The wrapper that runs mdevctl 1.4 (libvirt 11.3's chroot) over a fake root.
fn mdevctl_ns_11_3() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/mdevctl-ns-11.3")
}

// ----------------------------------------------------------------------------------------
// Transient and persistent mdevs.

const U1: &str = "11111111-2222-4333-8444-555555555555";
const N1: &str = "mdev_11111111_2222_4333_8444_555555555555_0000_af_00_0";
const U2: &str = "22222222-2222-4333-8444-555555555555";
const N2: &str = "mdev_22222222_2222_4333_8444_555555555555_0000_af_00_0";
const U3: &str = "33333333-2222-4333-8444-555555555555";
const N3: &str = "mdev_33333333_2222_4333_8444_555555555555_0000_af_00_0";

/// Transient: create, appears with the parent's address in its name; destroy removes it.
/// The same UUID again, an exhausted type, an unknown type and parents without mdev support
/// are refused as 9.0 words it.
#[test]
fn transient_mdev_is_created_and_destroyed() {
    let Some(h) = MdevHost::start() else {
        return;
    };
    let uri = &h.uri;
    let f = h.xml_file(&mdev_xml(Some(U1), "nvidia-222"));
    let (ok, _, err) = run(uri, &["nodedev-create", f]);
    assert!(ok, "create: {err}\n{}", h.daemon.log());
    assert!(run(uri, &["nodedev-list", "--cap", "mdev"]).1.contains(N1));
    let (_, info, e) = run(uri, &["nodedev-info", N1]);
    assert!(
        info.contains("Active:         yes") && info.contains("Persistent:     no"),
        "{info:?} {e}"
    );
    // The same UUID again: refused, nothing changes.
    let (ok, _, err) = run(uri, &["nodedev-create", f]);
    assert!(
        !ok && err.contains("Unable to start mediated device"),
        "{err}"
    );
    // Exhausted type (available_instances 0), unknown type, parent without mdev support.
    for (xml, want) in [
        (mdev_xml(None, "nvidia-228"), "No available instances"),
        (mdev_xml(None, "nvidia-999"), "not supported by parent"),
        (
            "<device><parent>computer</parent><capability type='mdev'><type id='a'/></capability></device>".to_owned(),
            "Unable to find address for parent device 'computer'",
        ),
        (
            "<device><parent>nosuch</parent><capability type='mdev'><type id='a'/></capability></device>".to_owned(),
            "invalid parent device 'nosuch'",
        ),
    ] {
        let (ok, _, err) = run(uri, &["nodedev-create", h.xml_file(&xml)]);
        assert!(!ok && err.contains(want), "{want}: {err}");
    }
    let (ok, _, err) = run(uri, &["nodedev-destroy", GPU]);
    assert!(!ok && err.contains("Unsupported device type"), "{err}");
    let (ok, _, err) = run(uri, &["nodedev-destroy", N1]);
    assert!(ok, "destroy: {err}");
    wait_until("the mdev to go", || {
        !run(uri, &["nodedev-list", "--all"]).1.contains(N1)
    });
}

/// Persistent: define (inactive, listed with --inactive), autostart, start, destroy (stays
/// defined), undefine; the store file follows each step.
#[test]
fn persistent_mdev_is_defined_started_stopped_and_undefined() {
    let Some(h) = MdevHost::start() else {
        return;
    };
    let uri = &h.uri;
    let f = h.xml_file(&mdev_xml(Some(U2), "nvidia-223"));
    let (ok, _, err) = run(uri, &["nodedev-define", f]);
    assert!(ok, "define: {err}");
    let stored = h.store("0000:af:00.0").join(U2);
    let json = std::fs::read_to_string(&stored).unwrap();
    assert!(
        json.contains("\"mdev_type\": \"nvidia-223\"") && json.contains("\"start\": \"manual\""),
        "{json}"
    );
    assert!(run(uri, &["nodedev-list", "--inactive"]).1.contains(N2));
    let (_, xml, _) = run(uri, &["nodedev-dumpxml", N2]);
    assert!(
        xml.contains("<attr name='x' value='1'/>")
            && xml.contains(&format!("<parent>{GPU}</parent>")),
        "{xml}"
    );
    let (ok, _, err) = run(uri, &["nodedev-autostart", N2]);
    assert!(ok, "autostart: {err}");
    assert!(std::fs::read_to_string(&stored)
        .unwrap()
        .contains("\"start\": \"auto\""));
    let (ok, _, err) = run(uri, &["nodedev-start", N2]);
    assert!(ok, "start: {err}");
    wait_until("the defined mdev to run", || {
        run(uri, &["nodedev-info", N2])
            .1
            .contains("Active:         yes")
    });
    let (_, info, _) = run(uri, &["nodedev-info", N2]);
    assert!(
        info.contains("Persistent:     yes") && info.contains("Autostart:      yes"),
        "{info}"
    );
    let (ok, _, err) = run(uri, &["nodedev-start", N2]);
    assert!(!ok && err.contains("Device is already active"), "{err}");
    let (ok, _, err) = run(uri, &["nodedev-destroy", N2]);
    assert!(ok, "destroy persistent: {err}");
    wait_until("the persistent mdev to stop", || {
        run(uri, &["nodedev-info", N2])
            .1
            .contains("Active:         no")
    });
    let (ok, _, err) = run(uri, &["nodedev-undefine", N2]);
    assert!(ok, "undefine: {err}");
    assert!(!stored.exists());
    assert!(!run(uri, &["nodedev-list", "--all"]).1.contains(N2));
}

/// A host whose store already has the GPU's directory (as after a first definition), so
/// that what the tests write there behind the daemon's back lands in a watched directory.
fn host_with_store_dir() -> Option<MdevHost> {
    MdevHost::start_with(false, |tree| {
        std::fs::create_dir_all(tree.root().join("etc/mdevctl.d/0000:af:00.0")).unwrap();
    })
}

/// A definition written behind our back shows up; its removal undefines it.
#[test]
fn definition_written_behind_the_daemons_back_comes_and_goes() {
    let Some(h) = host_with_store_dir() else {
        return;
    };
    let uri = &h.uri;
    let dir = h.store("0000:af:00.0");
    std::fs::write(
        dir.join(U3),
        "{\"mdev_type\": \"nvidia-222\", \"start\": \"manual\"}",
    )
    .unwrap();
    wait_until("the outside definition", || {
        run(uri, &["nodedev-list", "--inactive"]).1.contains(N3)
    });
    std::fs::remove_file(dir.join(U3)).unwrap();
    wait_until("the outside undefinition", || {
        !run(uri, &["nodedev-list", "--all"]).1.contains(N3)
    });
}

/// A store that does not exist when the daemon starts is followed once it appears (the
/// first `mdevctl define` creates it): the daemon watches the nearest directory above it,
/// then the store, then the parent's directory in it.
#[test]
fn a_store_made_after_start_is_followed() {
    let Some(h) = MdevHost::start_with(false, |tree| {
        let _ = std::fs::remove_dir_all(tree.root().join("etc/mdevctl.d"));
    }) else {
        return;
    };
    let mut w = h.watcher();
    let dir = h.store("0000:af:00.0");
    // Made, removed, made again: followed each time.
    for _ in 0..2 {
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(
            dir.join(U3),
            "{\"mdev_type\": \"nvidia-222\", \"start\": \"manual\", \"attrs\": []}",
        )
        .unwrap();
        assert_eq!(w.next(), Ev::Defined(N3.into()));
        std::fs::remove_dir_all(h.root.join("etc/mdevctl.d")).unwrap();
        assert_eq!(w.next(), Ev::Undefined(N3.into()));
    }
}

#[test]
fn definitions_survive_a_restart() {
    let Some(mut h) = MdevHost::start() else {
        return;
    };
    let f = h.xml_file(&mdev_xml(Some(U2), "nvidia-223"));
    assert!(run(&h.uri, &["nodedev-define", f]).0);
    h.restart_plain();
    assert!(run(&h.uri, &["nodedev-list", "--inactive"]).1.contains(N2));
}

// ----------------------------------------------------------------------------------------
// Events, autostart.

/// Every management operation sends the events libvirt 9.0 sends: CREATED / DELETED for
/// a transient mdev, DEFINED, an UPDATE for autostart, CREATED when a defined mdev
/// starts, DELETED when it stops (it stays, inactive), UNDEFINED.
#[test]
fn management_calls_send_libvirts_events() {
    let Some(h) = MdevHost::start() else {
        return;
    };
    let uri = &h.uri;
    let mut w = h.watcher();
    let f = h.xml_file(&mdev_xml(Some(U1), "nvidia-222"));
    ok(uri, &["nodedev-create", f]);
    assert_eq!(w.next(), Ev::Created(N1.into()));
    ok(uri, &["nodedev-destroy", N1]);
    assert_eq!(w.next(), Ev::Deleted(N1.into()));

    let f = h.xml_file(&mdev_xml(Some(U2), "nvidia-223"));
    ok(uri, &["nodedev-define", f]);
    assert_eq!(w.next(), Ev::Defined(N2.into()));
    ok(uri, &["nodedev-autostart", N2]);
    assert_eq!(w.next(), Ev::Updated(N2.into()));
    // Setting it again changes nothing.
    ok(uri, &["nodedev-autostart", N2]);
    ok(uri, &["nodedev-start", N2]);
    assert_eq!(w.next(), Ev::Created(N2.into()));
    ok(uri, &["nodedev-destroy", N2]);
    assert_eq!(w.next(), Ev::Deleted(N2.into()));
    assert!(ok(uri, &["nodedev-list", "--inactive"]).contains(N2));
    // Undefining a running device leaves it running, transient.
    ok(uri, &["nodedev-start", N2]);
    assert_eq!(w.next(), Ev::Created(N2.into()));
    ok(uri, &["nodedev-undefine", N2]);
    assert_eq!(w.next(), Ev::Undefined(N2.into()));
    let info = ok(uri, &["nodedev-info", N2]);
    assert!(
        info.contains("Persistent:     no") && info.contains("Active:         yes"),
        "{info}"
    );
    ok(uri, &["nodedev-destroy", N2]);
    assert_eq!(w.next(), Ev::Deleted(N2.into()));
    assert!(!ok(uri, &["nodedev-list", "--all"]).contains(N2));
    // Undefining an inactive device removes it.
    ok(uri, &["nodedev-define", f]);
    assert_eq!(w.next(), Ev::Defined(N2.into()));
    ok(uri, &["nodedev-undefine", N2]);
    assert_eq!(w.next(), Ev::Undefined(N2.into()));
    w.quiet(600);
}

/// Changes to mdevctl's store made behind the daemon's back (mdevctl, or an editor): a new
/// file, a change, a removal send DEFINED / UPDATE / UNDEFINED.
#[test]
fn store_changes_behind_the_daemons_back_send_events() {
    let Some(h) = host_with_store_dir() else {
        return;
    };
    let mut w = h.watcher();
    let dir = h.store("0000:af:00.0");
    std::fs::create_dir_all(&dir).unwrap();
    let put = |start: &str| {
        let tmpf = dir.join(".new");
        std::fs::write(
            &tmpf,
            format!("{{\"mdev_type\": \"nvidia-222\", \"start\": \"{start}\", \"attrs\": []}}"),
        )
        .unwrap();
        std::fs::rename(&tmpf, dir.join(U3)).unwrap();
    };
    put("manual");
    assert_eq!(w.next(), Ev::Defined(N3.into()));
    put("auto");
    assert_eq!(w.next(), Ev::Updated(N3.into()));
    // Autostart starts a device when its parent appears, not when it is set.
    w.quiet(600);
    std::fs::remove_file(dir.join(U3)).unwrap();
    assert_eq!(w.next(), Ev::Undefined(N3.into()));
    w.quiet(600);
}

/// An autostart definition whose parent is absent waits; the parent's add uevent starts it.
#[test]
fn autostart_when_parent_appears() {
    let u = "44444444-2222-4333-8444-555555555555";
    let name = "mdev_44444444_2222_4333_8444_555555555555_0000_b1_00_0";
    let Some(h) = MdevHost::start_with(false, |tree| {
        let dir = tree.root().join("etc/mdevctl.d/0000:b1:00.0");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(
            dir.join(u),
            "{\"mdev_type\": \"nvidia-222\", \"start\": \"auto\", \"attrs\": []}",
        )
        .unwrap();
    }) else {
        return;
    };
    let uri = &h.uri;
    let mut w = h.watcher();
    let info = ok(uri, &["nodedev-info", name]);
    assert!(
        info.contains("Active:         no") && info.contains("Autostart:      yes"),
        "{info}"
    );
    assert!(ok(uri, &["nodedev-dumpxml", name]).contains("<parent>computer</parent>"));
    w.quiet(600);

    // The second T4 arrives.
    let gpu = common::rw_pci_fn(
        &h.tree,
        "0000:b1:00.0",
        None,
        (0x10de, 0x1eb8, 0x030200),
        Some("nvidia"),
        None,
        0,
    );
    h.tree
        .mdev_types(
            &gpu,
            &[fakesys::MdevTypeSpec::new(
                "nvidia-222",
                Some("GRID T4-1B"),
                "vfio-pci",
                16,
            )],
        )
        .unwrap();
    h.daemon.inject("add", &gpu, "pci");
    assert_eq!(w.next(), Ev::Created("pci_0000_b1_00_0".into()));
    // Its inactive child is re-parented (an update of the inactive device may come first),
    // then started by autostart.
    let mut ev = w.next();
    if ev == Ev::Updated(name.into()) {
        ev = w.next();
    }
    assert_eq!(ev, Ev::Created(name.into()));
    let info = ok(uri, &["nodedev-info", name]);
    assert!(
        info.contains("Active:         yes") && info.contains("Persistent:     yes"),
        "{info}"
    );
    assert!(ok(uri, &["nodedev-dumpxml", name]).contains("<parent>pci_0000_b1_00_0</parent>"));
}

// ----------------------------------------------------------------------------------------
// NPIV vHBAs.

/// NPIV vHBAs: created under a parent named by name, by its WWNs, by its fabric or not at
/// all (the first vport-capable host), each answered by the kernel's new SCSI host; destroy
/// through the parent's `vport_delete`.
#[test]
fn vhbas_are_created_under_each_kind_of_parent_and_destroyed() {
    let Some(h) = MdevHost::start() else {
        return;
    };
    let uri = &h.uri;
    let mut w = h.watcher();
    let (hba_wwnn, hba_wwpn) = FC_HBA_WWN;
    let parents = [
        "<parent>scsi_host11</parent>".to_owned(),
        format!("<parent wwnn='{hba_wwnn}' wwpn='{hba_wwpn}'/>"),
        "<parent fabric_wwn='100000051e0c3a5b'/>".to_owned(),
        String::new(),
    ];
    let mut made = Vec::new();
    for (i, parent) in parents.iter().enumerate() {
        let wwnn = format!("2001001b32a9e00{i}");
        let wwpn = format!("2101001b32a9e00{i}");
        let f = h.xml_file(&vhba_xml(parent, Some((&wwnn, &wwpn))));
        ok(uri, &["nodedev-create", f]);
        let name = format!("scsi_host{}", 14 + i);
        assert_eq!(w.next(), Ev::Created(name.clone()));
        let xml = ok(uri, &["nodedev-dumpxml", &name]);
        assert!(
            xml.contains(&format!("<wwnn>{wwnn}</wwnn>"))
                && xml.contains(&format!("<wwpn>{wwpn}</wwpn>"))
                && xml.contains("<parent>scsi_host11</parent>"),
            "{xml}"
        );
        assert_eq!(
            std::fs::read_to_string(h.root.join("sys/class/fc_host/host11/vport_create")).unwrap(),
            ""
        );
        made.push(name);
    }
    for name in &made {
        ok(uri, &["nodedev-destroy", name]);
        assert_eq!(w.next(), Ev::Deleted(name.clone()));
        assert!(!ok(uri, &["nodedev-list"]).contains(&format!("{name}\n")));
    }
}

/// The errors of 9.0 for vHBAs that cannot be made or destroyed; none reaches the kernel.
#[test]
fn vhba_errors_are_libvirts() {
    let Some(h) = MdevHost::start() else {
        return;
    };
    let uri = &h.uri;
    let mut w = h.watcher();
    let (hba_wwnn, hba_wwpn) = FC_HBA_WWN;
    let no_parent = "Could not find parent device for 'new device'";
    let wwns = Some(("2001001b32a9e0ff", "2101001b32a9e0ff"));
    for (xml, want) in [
        // No WWNs: libvirt 11.3 makes them up (9.0 failed with "no WWNN supplied for
        // 'new device', and auto-generation failed"), so the parent is looked at.
        (
            vhba_xml("<parent>scsi_host12</parent>", None),
            "Parent device scsi_host12 is not capable of vport operations",
        ),
        (
            vhba_xml("<parent>scsi_host12</parent>", wwns),
            "Parent device scsi_host12 is not capable of vport operations",
        ),
        (
            vhba_xml("<parent>computer</parent>", wwns),
            "Parent device computer is not capable of vport operations",
        ),
        (vhba_xml("<parent>nosuch</parent>", wwns), no_parent),
        (
            vhba_xml(
                &format!(
                    "<parent wwnn='{}' wwpn='{}'/>",
                    hba_wwnn.to_uppercase(),
                    hba_wwpn.to_uppercase()
                ),
                wwns,
            ),
            no_parent,
        ),
        (
            vhba_xml("<parent fabric_wwn='1000000000000000'/>", wwns),
            no_parent,
        ),
        (
            "<device><parent>scsi_host11</parent><capability type='scsi_host'/></device>".into(),
            "Device is not a fibre channel HBA",
        ),
    ] {
        fails(uri, &["nodedev-create", h.xml_file(&xml)], want);
    }
    fails(
        uri,
        &["nodedev-destroy", "scsi_host11"],
        "Invalid adapter name 'pci_0000_5e_00_0' for SCSI pool",
    );
    fails(
        uri,
        &["nodedev-destroy", "scsi_target11_0_0"],
        "Unsupported device type",
    );
    w.quiet(300);
}

/// The vHBA of the tree has a remote port with a LUN (a disk, its sg node): destroying it
/// takes them all away (libvirt does not check; the kernel tears them down).
#[test]
fn destroying_a_vhba_in_use_takes_its_luns_away() {
    let Some(h) = MdevHost::start() else {
        return;
    };
    let uri = &h.uri;
    let mut w = h.watcher();
    let before = ok(uri, &["nodedev-list"]);
    ok(uri, &["nodedev-destroy", "scsi_host12"]);
    let mut gone = Vec::new();
    loop {
        match w.next() {
            Ev::Deleted(n) => {
                let last = n == "scsi_host12";
                gone.push(n);
                if last {
                    break;
                }
            }
            e => panic!("unexpected {e:?}"),
        }
    }
    assert!(gone.len() > 1, "{gone:?}");
    let after = ok(uri, &["nodedev-list"]);
    for n in &gone {
        assert!(
            before.contains(n.as_str()) && !after.lines().any(|l| l == n),
            "{n}"
        );
    }
}

// ----------------------------------------------------------------------------------------
// Bad input.

/// Definitions every create/define (or only create) must refuse.
fn bad_definitions() -> Vec<(String, &'static [&'static str])> {
    let both: &[&str] = &["nodedev-create", "nodedev-define"];
    vec![
        ("<device><parent>".into(), both),
        ("<domain/>".into(), both),
        (
            format!("<device><parent>{GPU}</parent><capability type='mdev'/></device>"),
            both,
        ),
        (
            format!("<device><parent>{GPU}</parent><capability type='mdev'><type id='nvidia-222'/><uuid>nonsense</uuid></capability></device>"),
            both,
        ),
        (
            "<device><parent>computer</parent><capability type='mdev'><type id='a'/></capability></device>".into(),
            both,
        ),
        (
            "<device><parent>nosuch</parent><capability type='mdev'><type id='a'/></capability></device>".into(),
            both,
        ),
        (
            "<device><capability type='mdev'><type id='a'/></capability></device>".into(),
            both,
        ),
        (mdev_xml(None, "nvidia-228"), &["nodedev-create"]),
        (mdev_xml(None, "nvidia-999"), &["nodedev-create"]),
        (
            "<device><parent>pci_0000_5e_00_0</parent><capability type='pci'/></device>".into(),
            both,
        ),
        (
            vhba_xml("<parent>scsi_host12</parent>", Some(("2001001b32a9e0ff", "2101001b32a9e0ff"))),
            both,
        ),
    ]
}

/// Refused calls leave the host and the store exactly as they were.
#[test]
fn bad_input_changes_nothing() {
    let Some(h) = MdevHost::start() else {
        return;
    };
    let uri = &h.uri;
    // One definition to act on.
    let u = "55555555-2222-4333-8444-555555555555";
    let n = "mdev_55555555_2222_4333_8444_555555555555_0000_af_00_0";
    ok(
        uri,
        &[
            "nodedev-define",
            h.xml_file(&mdev_xml(Some(u), "nvidia-222")),
        ],
    );
    let before = snapshot(&h.root);
    let mut w = h.watcher();
    for (xml, cmds) in &bad_definitions() {
        let f = h.xml_file(xml);
        for c in *cmds {
            let (okk, _, _) = run(uri, &[c, f]);
            assert!(!okk, "{c} {xml} succeeded");
            let (okk, _, _) = run(uri, &[c, "--validate", f]);
            assert!(!okk, "{c} --validate {xml} succeeded");
        }
    }
    for args in [
        &["nodedev-undefine", GPU][..],
        &["nodedev-undefine", "nosuch"],
        &[
            "nodedev-undefine",
            "mdev_c0ffee00_1b54_4048_85b3_a6a62d165c01_0000_af_00_0",
        ],
        &["nodedev-start", GPU],
        &["nodedev-start", "nosuch"],
        &["nodedev-destroy", n],
        &["nodedev-destroy", GPU],
        &["nodedev-destroy", "nosuch"],
        &["nodedev-autostart", GPU],
        &["nodedev-autostart", "--disable", "nosuch"],
        &[
            "nodedev-autostart",
            "mdev_c0ffee00_1b54_4048_85b3_a6a62d165c01_0000_af_00_0",
        ],
    ] {
        let (okk, _, _) = run(uri, args);
        assert!(!okk, "{args:?} succeeded");
    }
    std::thread::sleep(Duration::from_millis(300));
    w.quiet(300);
    assert_eq!(snapshot(&h.root), before);
}

// ----------------------------------------------------------------------------------------
// mdevctl (Debian's 1.2.0), only ever inside a private mount namespace over the fake tree:
// with mdevctl installed the daemon drives it as libvirt 9.0 does; definitions go both ways
// (ours -> `mdevctl list --defined`, `mdevctl define` -> our list); a daemon without mdevctl
// on the same tree sees the same definitions, and the other way round.

const M1: &str = "61111111-2222-4333-8444-555555555555";
const MN1: &str = "mdev_61111111_2222_4333_8444_555555555555_0000_af_00_0";
const M2: &str = "62222222-2222-4333-8444-555555555555";
const MN2: &str = "mdev_62222222_2222_4333_8444_555555555555_0000_af_00_0";

/// `mdevctl define` of M2 on the GPU.
fn mdevctl_define_m2(root: &Path) {
    let (okk, _, err) = mdevctl(
        root,
        &[
            "define",
            "--parent",
            "0000:af:00.0",
            "--type",
            "nvidia-222",
            "--uuid",
            M2,
        ],
    );
    assert!(okk, "{err}");
}

#[test]
fn our_definitions_reach_mdevctl() {
    let Some(h) = MdevHost::with_mdevctl() else {
        return;
    };
    let (uri, root) = (&h.uri, &h.root);
    let mut w = h.watcher();
    ok(
        uri,
        &[
            "nodedev-define",
            h.xml_file(&mdev_xml(Some(M1), "nvidia-223")),
        ],
    );
    assert_eq!(w.next(), Ev::Defined(MN1.into()));
    let (okk, list, err) = mdevctl(root, &["list", "--defined", "--dumpjson"]);
    assert!(okk, "{err}");
    assert!(
        list.contains(M1) && list.contains("\"nvidia-223\"") && list.contains("\"x\": \"1\""),
        "{list}"
    );
    ok(uri, &["nodedev-autostart", MN1]);
    assert_eq!(w.next(), Ev::Updated(MN1.into()));
    let (_, list, _) = mdevctl(root, &["list", "--defined"]);
    assert!(list.contains(M1) && list.contains("auto"), "{list}");
    // The change mdevctl made in the store is ours: no second event.
    w.quiet(800);
}

/// mdevctl -> ours; then start, stop, undefine through mdevctl.
#[test]
fn mdevctl_definitions_are_ours_to_start_stop_and_undefine() {
    let Some(h) = MdevHost::with_mdevctl() else {
        return;
    };
    let (uri, root) = (&h.uri, &h.root);
    let mut w = h.watcher();
    mdevctl_define_m2(root);
    assert_eq!(w.next(), Ev::Defined(MN2.into()));
    assert!(ok(uri, &["nodedev-list", "--inactive"]).contains(MN2));
    let xml = ok(uri, &["nodedev-dumpxml", MN2]);
    assert!(xml.contains("<type id='nvidia-222'/>"), "{xml}");

    ok(uri, &["nodedev-start", MN2]);
    assert_eq!(w.next(), Ev::Created(MN2.into()));
    let (_, active, _) = mdevctl(root, &["list"]);
    assert!(active.contains(M2), "{active}");
    ok(uri, &["nodedev-destroy", MN2]);
    assert_eq!(w.next(), Ev::Deleted(MN2.into()));
    ok(uri, &["nodedev-undefine", MN2]);
    assert_eq!(w.next(), Ev::Undefined(MN2.into()));
    let (_, list, _) = mdevctl(root, &["list", "--defined"]);
    assert!(!list.contains(M2), "{list}");
}

/// A transient device through `mdevctl start --parent --jsonfile`; mdevctl's errors reach
/// the client as libvirt words them.
#[test]
fn transient_mdevs_and_errors_go_through_mdevctl() {
    let Some(h) = MdevHost::with_mdevctl() else {
        return;
    };
    let uri = &h.uri;
    let mut w = h.watcher();
    let u3 = "63333333-2222-4333-8444-555555555555";
    let n3 = "mdev_63333333_2222_4333_8444_555555555555_0000_af_00_0";
    let f = h.xml_file(&mdev_xml(Some(u3), "nvidia-222").replace("<attr name='x' value='1'/>", ""));
    ok(uri, &["nodedev-create", f]);
    assert_eq!(w.next(), Ev::Created(n3.into()));
    ok(uri, &["nodedev-destroy", n3]);
    assert_eq!(w.next(), Ev::Deleted(n3.into()));

    fails(
        uri,
        &[
            "nodedev-start",
            "mdev_c0ffee00_1b54_4048_85b3_a6a62d165c01_0000_af_00_0",
        ],
        "Device is already active",
    );
    let f = h.xml_file(&mdev_xml(None, "nvidia-999"));
    fails(
        uri,
        &["nodedev-create", f],
        "Unable to start mediated device: ",
    );
}

/// Switching: a daemon without mdevctl lists the definitions made with mdevctl (and not
/// those undefined), and what it defines mdevctl lists.
#[test]
fn a_daemon_without_mdevctl_shares_the_definitions() {
    let Some(mut h) = MdevHost::with_mdevctl() else {
        return;
    };
    // What the daemon with mdevctl leaves: M1 defined with autostart, M2 undefined.
    ok(
        &h.uri,
        &[
            "nodedev-define",
            h.xml_file(&mdev_xml(Some(M1), "nvidia-223")),
        ],
    );
    ok(&h.uri, &["nodedev-autostart", MN1]);
    mdevctl_define_m2(&h.root);
    wait_until("mdevctl's definition", || {
        ok(&h.uri, &["nodedev-list", "--inactive"]).contains(MN2)
    });
    ok(&h.uri, &["nodedev-undefine", MN2]);

    h.restart_plain();
    let uri = &h.uri;
    let inactive = ok(uri, &["nodedev-list", "--inactive"]);
    assert!(
        inactive.contains(MN1) && !inactive.contains(MN2),
        "{inactive}"
    );
    assert!(ok(uri, &["nodedev-info", MN1]).contains("Autostart:      yes"));
    let u4 = "64444444-2222-4333-8444-555555555555";
    ok(
        uri,
        &[
            "nodedev-define",
            h.xml_file(&mdev_xml(Some(u4), "nvidia-319")),
        ],
    );
    let (_, list, _) = mdevctl(&h.root, &["list", "--defined", "--dumpjson"]);
    assert!(
        list.contains(u4) && list.contains("nvidia-319") && list.contains(M1),
        "{list}"
    );
}

/// NodeDeviceDefineXML on a persistent mdev (same UUID and parent) modifies its definition,
/// as libvirt 11.3 does (`mdevctl modify --defined`, here mdevctl's store written directly):
/// the new type and attributes, autostart off (the XML has none), one UPDATE; unchanged, no
/// event. With Debian 12's mdevctl 1.2.0, which lacks `modify --jsonfile`, the call is
/// refused as 11.3 refuses it there and the definition stays.
#[test]
fn defining_a_persistent_mdev_again_modifies_it() {
    let define_u3 = |h: &MdevHost| {
        ok(
            &h.uri,
            &[
                "nodedev-define",
                h.xml_file(&mdev_xml(Some(U3), "nvidia-223")),
            ],
        )
    };
    let Some(h) = MdevHost::start() else {
        return;
    };
    let uri = &h.uri;
    define_u3(&h);
    ok(uri, &["nodedev-autostart", N3]);
    let stored = h.store("0000:af:00.0").join(U3);
    assert!(std::fs::read_to_string(&stored)
        .unwrap()
        .contains("\"start\": \"auto\""));
    let mut w = h.watcher();
    let changed = mdev_xml(Some(U3), "nvidia-222").replace("value='1'", "value='2'");
    ok(uri, &["nodedev-define", h.xml_file(&changed)]);
    assert_eq!(w.next(), Ev::Updated(N3.into()));
    let json = std::fs::read_to_string(&stored).unwrap();
    assert!(
        json.contains("\"mdev_type\": \"nvidia-222\"")
            && json.contains("\"start\": \"manual\"")
            && json.contains("\"x\": \"2\""),
        "{json}"
    );
    assert!(ok(uri, &["nodedev-info", N3]).contains("Autostart:      no"));
    ok(uri, &["nodedev-define", h.xml_file(&changed)]);
    w.quiet(500);
    drop(h);

    let Some(h) = MdevHost::with_mdevctl() else {
        return;
    };
    let uri = &h.uri;
    define_u3(&h);
    let stored = h.store("0000:af:00.0").join(U3);
    let before = std::fs::read_to_string(&stored).unwrap();
    fails(
        uri,
        &["nodedev-define", h.xml_file(&changed)],
        "Operation not supported: Unable to modify mediated device: modify unsupported",
    );
    assert_eq!(std::fs::read_to_string(&stored).unwrap(), before);
}

/// Known differences with libvirt 9.0 and 11.3 in [`defined_mdevs_like`]: a part of
/// the XML given to define/create, and why the answers differ.
const DIFFERENCES: &[(&str, &str)] = &[(
    "<capability type='pci'/>",
    "libvirt parses every capability type of a definition in full before its driver \
     refuses anything but mdev and scsi_host, so a bare <capability type='pci'/> fails \
     with the PCI parser's 'no PCI domain ID supplied'; we parse only the mdev and \
     scsi_host capabilities of definitions and answer 'Unsupported device type' (the \
     call fails either way and nothing changes)",
)];

/// Definitions for the comparison with the reference: inactive with attributes, autostart,
/// for a parent that is not there, a type with no instance left, and one for the running
/// transient mdev (which makes it persistent).
fn seed_store(root: &Path) {
    let put = |parent: &str, uuid: &str, json: &str| {
        let dir = root.join("etc/mdevctl.d").join(parent);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join(uuid), json).unwrap();
    };
    put(
        "0000:af:00.0",
        "71111111-2222-4333-8444-555555555555",
        "{\n  \"mdev_type\": \"nvidia-222\",\n  \"start\": \"manual\",\n  \"attrs\": [\n    {\n      \"a\": \"1\"\n    },\n    {\n      \"b\": \"x y\"\n    }\n  ]\n}",
    );
    put(
        "0000:af:00.0",
        "72222222-2222-4333-8444-555555555555",
        "{\n  \"mdev_type\": \"nvidia-228\",\n  \"start\": \"manual\",\n  \"attrs\": []\n}",
    );
    put(
        "0000:b1:00.0",
        "73333333-2222-4333-8444-555555555555",
        "{\n  \"mdev_type\": \"nvidia-222\",\n  \"start\": \"auto\",\n  \"attrs\": []\n}",
    );
    put(
        "0000:af:00.0",
        "c0ffee00-1b54-4048-85b3-a6a62d165c01",
        "{\n  \"mdev_type\": \"nvidia-222\",\n  \"start\": \"auto\",\n  \"attrs\": []\n}",
    );
}

/// The devices compared: the definitions of [`seed_store`] and the tree's other running mdev.
const SEEDED: [&str; 5] = [
    "mdev_71111111_2222_4333_8444_555555555555_0000_af_00_0",
    "mdev_72222222_2222_4333_8444_555555555555_0000_af_00_0",
    "mdev_73333333_2222_4333_8444_555555555555_0000_b1_00_0",
    "mdev_c0ffee00_1b54_4048_85b3_a6a62d165c01_0000_af_00_0",
    "mdev_c0ffee00_1b54_4048_85b3_a6a62d165c02_0000_af_00_0",
];

/// virsh calls compared with the reference: lists, XML and info of [`SEEDED`], and calls
/// that must fail, the same way.
fn reference_checks() -> Vec<Vec<String>> {
    let mut checks: Vec<Vec<String>> = vec![
        vec!["nodedev-list".into(), "--all".into()],
        vec!["nodedev-list".into(), "--inactive".into()],
        vec![
            "nodedev-list".into(),
            "--cap".into(),
            "mdev".into(),
            "--all".into(),
        ],
        vec!["nodedev-list".into(), "--tree".into()],
    ];
    let names = SEEDED;
    for n in names {
        for c in ["nodedev-dumpxml", "nodedev-info"] {
            checks.push(vec![c.into(), n.into()]);
        }
    }
    // Calls that must fail, the same way.
    for (c, n) in [
        ("nodedev-undefine", names[4]),
        ("nodedev-undefine", GPU),
        ("nodedev-undefine", "nosuch"),
        ("nodedev-start", names[3]),
        // These reach mdevctl: an exhausted type, a parent that is not there.
        ("nodedev-start", names[1]),
        ("nodedev-start", names[2]),
        ("nodedev-start", GPU),
        ("nodedev-start", "nosuch"),
        ("nodedev-destroy", names[0]),
        ("nodedev-destroy", "nosuch"),
        ("nodedev-autostart", GPU),
        ("nodedev-autostart", names[4]),
        ("nodedev-autostart", "nosuch"),
    ] {
        checks.push(vec![c.into(), n.into()]);
    }
    checks
}

/// The differences with libvirt 9.0 that 11.3 made, where we answer as 11.3: whether
/// libvirt 9.0's answer `want` and ours `got` differ only by them.
///
/// - libxml2's parse errors on a string: 11.3 says "at line N: ..." where 9.0 said
///   "(node_device_definition):N: ...";
/// - `--validate`: 11.3's schema and Debian 13's libxml2 word schema failures differently;
/// - offline ccw devices (`ccw_0_0_0001` in this tree), which 11.3 lists and 9.0 did not.
fn changed_in_11_3(args: &[&str], want: &str, got: &str) -> bool {
    let xml_error = want.contains("(node_device_definition):") && got.contains("error: at line ");
    let schema = args.contains(&"--validate") && want.contains("failed to validate against schema");
    let offline_ccw = |s: &str| {
        s.replace("ccw_0_0_0001", "")
            .lines()
            .filter(|l| {
                !l.trim_matches(|c: char| c == ' ' || c == '|' || c == '+' || c == '-')
                    .is_empty()
            })
            .collect::<Vec<_>>()
            .join("\n")
    };
    xml_error || schema || offline_ccw(want) == offline_ccw(got)
}

/// mdevctl 1.4 reports errors through Rust's anyhow, which appends a "Stack backtrace" when
/// RUST_BACKTRACE is set in the environment the daemon (ours or libvirtd) inherited from
/// the test run; not a difference between the daemons.
fn without_backtrace(s: &str) -> String {
    match s.split_once("\nStack backtrace:\n") {
        Some((head, _)) => format!("{head}\n"),
        None => s.to_owned(),
    }
}

/// virsh of `libvirt`'s release: (success, stdout, stderr without mdevctl's backtrace).
fn run_of(libvirt: Libvirt, uri: &str, args: &[&str]) -> (bool, String, String) {
    let o = common::virsh_of(libvirt, uri, args);
    (
        o.status.success(),
        String::from_utf8_lossy(&o.stdout).into_owned(),
        without_backtrace(&String::from_utf8_lossy(&o.stderr)),
    )
}

/// Our daemon (without and with mdevctl) beside libvirtd 11.3 with its mdevctl 1.4 (ours
/// runs the same one through `tests/mdevctl-ns-11.3`), over copies of one tree with
/// definitions in the store, driven by virsh 11.3: lists, XML and info of the defined
/// devices, the errors of define/undefine/start/destroy/autostart on bad input, and the
/// persistence filters of ListAllNodeDevices.
///
/// Differences that remain are listed in [`DIFFERENCES`] (and for 9.0 [`changed_in_11_3`]).
#[test]
fn defined_mdevs_like_libvirt_11_3() {
    if Libvirt::V11_3.clients_available() && mdevctl_usable() {
        defined_mdevs_like(Libvirt::V11_3);
    }
}

/// The same against libvirtd 9.0 with Debian 12's mdevctl 1.2.0 and virsh 9.0, without the
/// persistence filters (9.0 refuses them).
#[test]
fn defined_mdevs_like_libvirt_9_0() {
    if virsh_available() && mdevctl_usable() {
        defined_mdevs_like(Libvirt::V9_0);
    }
}

fn defined_mdevs_like(libvirt: Libvirt) {
    let tmp = tempfile::tempdir().unwrap();
    let trees: Vec<fakesys::FakeSys> = (0..3)
        .map(|i| {
            let dir = tmp.path().join(format!("t{i}"));
            std::fs::create_dir_all(&dir).unwrap();
            let t = fc_mdev_s390_tree(&dir);
            seed_store(t.root());
            t
        })
        .collect();
    let Some(reference) = common::Reference::start_version(libvirt, Some(trees[0].root())) else {
        return;
    };
    let ours = Daemon::start(Some(trees[1].root()), "");
    let wrapper = match libvirt {
        Libvirt::V11_3 => mdevctl_ns_11_3(),
        Libvirt::V9_0 => mdevctl_ns(),
    };
    let ours_mdevctl = Daemon::start_env(
        Some(trees[2].root()),
        "",
        false,
        &[("VIRTNODEDEVD_MDEVCTL", wrapper.as_path())],
    );
    let uris = [("ours", ours.uri()), ("ours+mdevctl", ours_mdevctl.uri())];
    let file = tmp.path().join("x.xml");
    let f = file.to_str().unwrap().to_owned();
    // The bad definitions that both define and create refuse.
    let xmls: Vec<String> = bad_definitions()
        .into_iter()
        .filter(|(_, cmds)| cmds.len() == 2)
        .map(|(x, _)| x)
        .collect();
    let mut calls: Vec<(Vec<String>, Option<&str>)> =
        reference_checks().into_iter().map(|c| (c, None)).collect();
    for x in xmls
        .iter()
        .filter(|x| !DIFFERENCES.iter().any(|(part, _)| x.contains(part)))
    {
        for c in ["nodedev-define", "nodedev-create"] {
            calls.push((vec![c.to_owned(), f.clone()], Some(x)));
            calls.push((
                vec![c.to_owned(), "--validate".to_owned(), f.clone()],
                Some(x),
            ));
        }
    }
    let mut diffs = Vec::new();
    for (args, setup) in &calls {
        if let Some(x) = setup {
            std::fs::write(&file, x).unwrap();
        }
        let a: Vec<&str> = args.iter().map(String::as_str).collect();
        let want = run_of(libvirt, &reference.uri, &a);
        for (who, uri) in &uris {
            let got = run_of(libvirt, uri, &a);
            let text = |(_, out, err): &(bool, String, String)| format!("{out}{err}");
            let known = libvirt == Libvirt::V9_0 && changed_in_11_3(&a, &text(&want), &text(&got));
            if got != want && !known {
                diffs.push(format!(
                    "{who}: virsh {a:?} {}\n  reference: {want:?}\n  {who}: {got:?}",
                    setup.unwrap_or("")
                ));
            }
        }
    }
    if libvirt == Libvirt::V11_3 {
        let mut rc = reference.open_client();
        let mut clients = [
            ("ours", ours.open_client()),
            ("ours+mdevctl", ours_mdevctl.open_client()),
        ];
        for flags in persistence_flag_sets() {
            let want = list_all_flags(&mut rc, flags);
            for (who, c) in &mut clients {
                let got = list_all_flags(c, flags);
                if got != want {
                    diffs.push(format!(
                        "{who}: ListAllNodeDevices({flags:#x})\n  reference: {want:?}\n  {who}: {got:?}"
                    ));
                }
            }
        }
    }
    assert!(
        diffs.is_empty(),
        "{} differences with libvirt {}:\n{}",
        diffs.len(),
        libvirt.label(),
        diffs.join("\n")
    );
}

/// ListAllNodeDevices flags of libvirt 11.3 around persistence (PERSISTENT and TRANSIENT,
/// since 10.1.0), alone and with the state and capability filters, plus bits 11.3 still
/// refuses.
fn persistence_flag_sets() -> Vec<u32> {
    use protocol::list_flags::{ACTIVE, INACTIVE, PERSISTENT, TRANSIENT};
    let mdev = 1 << 14;
    let system = 1;
    vec![
        PERSISTENT,
        TRANSIENT,
        PERSISTENT | TRANSIENT,
        PERSISTENT | ACTIVE,
        PERSISTENT | INACTIVE,
        TRANSIENT | ACTIVE,
        TRANSIENT | INACTIVE,
        PERSISTENT | TRANSIENT | ACTIVE | INACTIVE,
        mdev | PERSISTENT,
        mdev | TRANSIENT,
        mdev | PERSISTENT | ACTIVE,
        system | PERSISTENT,
        system | TRANSIENT,
        1 << 22 | PERSISTENT,
        1 << 23,
        1 << 24,
        1 << 27 | PERSISTENT,
    ]
}

/// ListAllNodeDevices: the sorted names, or the error.
fn list_all_flags(c: &mut Client, flags: u32) -> Result<Vec<String>, String> {
    let ret: Result<r::ListAllRet, _> = c.call(
        proc::CONNECT_LIST_ALL_NODE_DEVICES,
        &r::ListAllArgs {
            need_results: 1,
            flags,
        },
    );
    match ret {
        Ok(r) => {
            let mut names: Vec<String> = r.devices.into_iter().map(|d| d.name).collect();
            names.sort();
            Ok(names)
        }
        Err(rpc::client::CallError::Remote(e)) => {
            Err(format!("({}, {}, {})", e.code, e.domain, e.message))
        }
        Err(e) => Err(format!("{e:?}")),
    }
}

// ----------------------------------------------------------------------------------------
// NodeDeviceUpdate (procedure 447) and GetXMLDesc(VIR_NODE_DEVICE_XML_INACTIVE), libvirt
// 10.1.0 APIs that Debian's python3-libvirt 9.0 lacks: called through our client.

/// NodeDeviceUpdate; `Err` with the libvirt error.
fn update(c: &mut Client, name: &str, xml: &str, flags: u32) -> Result<(), rpc::VirError> {
    match c.call::<_, ()>(
        proc::NODE_DEVICE_UPDATE,
        &r::NodeDeviceUpdateArgs {
            name: name.into(),
            xml_desc: xml.into(),
            flags,
        },
    ) {
        Ok(()) => Ok(()),
        Err(rpc::client::CallError::Remote(e)) => Err(e),
        Err(e) => panic!("update {name}: {e:?}"),
    }
}

/// GetXMLDesc with flags.
fn xml_desc(c: &mut Client, name: &str, flags: u32) -> Result<String, rpc::VirError> {
    match c.call::<_, r::StringRet>(
        proc::NODE_DEVICE_GET_XML_DESC,
        &r::NameFlagsArgs {
            name: name.into(),
            flags,
        },
    ) {
        Ok(s) => Ok(s.value),
        Err(rpc::client::CallError::Remote(e)) => Err(e),
        Err(e) => panic!("xml {name}: {e:?}"),
    }
}

/// The XML of an existing mdev as NodeDeviceUpdate takes it.
fn update_xml(name: &str, parent: &str, uuid: Option<&str>, ty: &str, x: &str) -> String {
    let u = uuid
        .map(|u| format!("<uuid>{u}</uuid>"))
        .unwrap_or_default();
    format!(
        "<device><name>{name}</name><parent>{parent}</parent><capability type='mdev'>\
         <type id='{ty}'/>{u}<attr name='x' value='{x}'/></capability></device>"
    )
}

#[track_caller]
fn assert_err(r: Result<(), rpc::VirError>, code: i32, message: &str) {
    let e = r.expect_err(message);
    assert_eq!(
        (e.code, e.domain, e.message.as_str()),
        (code, 22, message),
        "{e:?}"
    );
}

/// A running mdev's sysfs attribute.
fn sysfs_attr(root: &Path, uuid: &str) -> String {
    std::fs::read_to_string(root.join("sys/bus/mdev/devices").join(uuid).join("x"))
        .unwrap_or_default()
}

// The update tests below cover every flag combination on an active persistent (A), an
// inactive persistent (B) and a transient (T) mdev, every error, what changes where (store
// file only for CONFIG, sysfs only for LIVE, the XML with and without
// VIR_NODE_DEVICE_XML_INACTIVE), and the UPDATE events; without mdevctl except the last.
// A: defined, autostart, running. B: defined, inactive. T: transient.
const UA: &str = "a1111111-2222-4333-8444-555555555555";
const NA: &str = "mdev_a1111111_2222_4333_8444_555555555555_0000_af_00_0";
const UB: &str = "b2222222-2222-4333-8444-555555555555";
const NB: &str = "mdev_b2222222_2222_4333_8444_555555555555_0000_af_00_0";
const UT: &str = "c3333333-2222-4333-8444-555555555555";
const NT: &str = "mdev_c3333333_2222_4333_8444_555555555555_0000_af_00_0";

fn xa(x: &str) -> String {
    update_xml(NA, GPU, Some(UA), "nvidia-222", x)
}

fn xb(x: &str) -> String {
    update_xml(NB, GPU, Some(UB), "nvidia-223", x)
}

fn xt(x: &str) -> String {
    update_xml(NT, GPU, Some(UT), "nvidia-222", x)
}

/// A host without mdevctl with A, B and T, a client, and a watcher that has seen none of
/// their making.
struct UpdateHost {
    h: MdevHost,
    c: Client,
    w: common::mdev::Watcher,
    store_a: std::path::PathBuf,
    store_b: std::path::PathBuf,
}

impl UpdateHost {
    fn start() -> Option<UpdateHost> {
        let h = MdevHost::start()?;
        let uri = &h.uri;
        let c = h.daemon.open_client();
        ok(
            uri,
            &[
                "nodedev-define",
                h.xml_file(&mdev_xml(Some(UA), "nvidia-222")),
            ],
        );
        ok(uri, &["nodedev-autostart", NA]);
        ok(uri, &["nodedev-start", NA]);
        ok(
            uri,
            &[
                "nodedev-define",
                h.xml_file(&mdev_xml(Some(UB), "nvidia-223")),
            ],
        );
        ok(
            uri,
            &[
                "nodedev-create",
                h.xml_file(&mdev_xml(Some(UT), "nvidia-222")),
            ],
        );
        wait_until("A to run", || {
            run(uri, &["nodedev-info", NA])
                .1
                .contains("Active:         yes")
        });
        // The fake kernel's mdevs have no attribute files (and creates them after the daemon
        // wrote the definition's attributes); the kernel would offer `x`.
        for (u, v) in [(UA, "1"), (UT, "0")] {
            std::fs::write(h.root.join("sys/bus/mdev/devices").join(u).join("x"), v).unwrap();
        }
        let w = h.watcher();
        Some(UpdateHost {
            store_a: h.store("0000:af:00.0").join(UA),
            store_b: h.store("0000:af:00.0").join(UB),
            h,
            c,
            w,
        })
    }

    fn read(p: &Path) -> String {
        std::fs::read_to_string(p).unwrap()
    }

    /// What the refused calls must leave as it was.
    fn state(&self) -> (String, String, String) {
        (
            Self::read(&self.store_a),
            Self::read(&self.store_b),
            sysfs_attr(&self.h.root, UA),
        )
    }
}

/// Errors before the device is looked at, in libvirt's order; nothing changes and no event.
#[test]
fn update_checks_access_flags_name_and_xml_first() {
    let Some(mut u) = UpdateHost::start() else {
        return;
    };
    let before = u.state();
    let c = &mut u.c;
    let mut ro = Client::connect(
        &u.h.daemon.sock(),
        protocol::REMOTE_PROGRAM,
        protocol::REMOTE_VERSION,
    )
    .unwrap();
    let _: () = ro
        .call(
            proc::CONNECT_OPEN,
            &r::ConnectOpenArgs {
                name: Some("nodedev:///system".into()),
                flags: protocol::VIR_CONNECT_RO,
            },
        )
        .unwrap();
    assert_err(
        update(&mut ro, NA, &xa("9"), 0),
        protocol::ErrorCode::OperationDenied as i32,
        "operation forbidden: read only access prevents virNodeDeviceUpdate",
    );
    assert_err(
        update(c, "nosuch", &xa("9"), 4),
        8,
        "unsupported flags (0x4) in function nodeDeviceUpdate",
    );
    assert_err(
        update(c, "nosuch", &xa("9"), 0),
        53,
        "Node device not found: no node device with matching name 'nosuch'",
    );
    let e = update(c, NA, "<device>", 0).unwrap_err();
    assert_eq!((e.code, e.domain), (35, 22), "{e:?}");
    let e = update(
        c,
        NA,
        &format!("<device><parent>{GPU}</parent><capability type='mdev'><type id='nvidia-222'/></capability></device>"),
        0,
    )
    .unwrap_err();
    assert_eq!(e.code, 92, "no <name> fails the schema check: {e:?}");
    assert_err(
        update(c, GPU, &xa("9"), 0),
        67,
        "unsupported configuration: Unsupported device type",
    );
    assert_err(
        update(
            c,
            NA,
            &update_xml(NA, "nosuch", Some(UA), "nvidia-222", "9"),
            0,
        ),
        67,
        "unsupported configuration: invalid parent device 'nosuch'",
    );
    assert_eq!(u.state(), before);
    u.w.quiet(300);
}

/// Errors about the device's state and a definition that does not match it, in libvirt's
/// order; nothing changes and no event.
#[test]
fn update_refuses_what_the_device_cannot_take() {
    let Some(mut u) = UpdateHost::start() else {
        return;
    };
    let before = u.state();
    let c = &mut u.c;
    assert_err(
        update(c, NB, &xb("9"), 1),
        55,
        "Requested operation is not valid: node device is not active",
    );
    assert_err(
        update(c, NB, &xb("9"), 3),
        55,
        "Requested operation is not valid: node device is not active",
    );
    for flags in [2, 3] {
        assert_err(
            update(c, NT, &xt("9"), flags),
            55,
            "Requested operation is not valid: transient node devices do not have any persistent config",
        );
    }
    let uuid_mismatch = format!(
        "unsupported configuration: Cannot update device '{NA}, uuid mismatch (current uuid '{UA}')"
    );
    for uuid in [Some(UB), None] {
        assert_err(
            update(c, NA, &update_xml(NA, GPU, uuid, "nvidia-222", "9"), 2),
            67,
            &uuid_mismatch,
        );
    }
    for flags in [0, 1, 3] {
        assert_err(
            update(c, NA, &update_xml(NA, GPU, Some(UA), "nvidia-223", "9"), flags),
            67,
            &format!(
                "unsupported configuration: Cannot update device '{NA}', type mismatch (current type 'nvidia-222')"
            ),
        );
    }
    assert_err(
        update(c, NA, &update_xml(NA, "ap_matrix", Some(UA), "nvidia-222", "9"), 2),
        67,
        &format!(
            "unsupported configuration: Cannot update device '{NA}', parent address mismatch (current parent address '0000:af:00.0')"
        ),
    );
    assert_eq!(u.state(), before);
    u.w.quiet(300);
}

/// XMLDesc(VIR_NODE_DEVICE_XML_INACTIVE): only for persistent devices; the same as the live
/// XML while nothing was updated.
#[test]
fn inactive_xml_is_for_persistent_devices() {
    let Some(mut u) = UpdateHost::start() else {
        return;
    };
    let c = &mut u.c;
    let e = xml_desc(c, NT, 1).unwrap_err();
    assert_eq!(
        (e.code, e.message.as_str()),
        (
            55,
            format!("Requested operation is not valid: node device '{NT}' is not persistent")
                .as_str()
        )
    );
    // Devices found by udev are transient, `computer` is persistent (as in libvirt).
    assert_eq!(
        xml_desc(c, GPU, 1).map_err(|e| e.message),
        Err(format!(
            "Requested operation is not valid: node device '{GPU}' is not persistent"
        ))
    );
    assert_eq!(
        xml_desc(c, "computer", 1).unwrap(),
        xml_desc(c, "computer", 0).unwrap()
    );
    assert_eq!(xml_desc(c, "nosuch", 1).unwrap_err().code, 53);
    assert_eq!(xml_desc(c, NA, 2).unwrap_err().code, 8);
    assert_eq!(xml_desc(c, NB, 1).unwrap(), xml_desc(c, NB, 0).unwrap());
    assert_eq!(xml_desc(c, NA, 1).unwrap(), xml_desc(c, NA, 0).unwrap());
}

/// Active persistent A: CONFIG changes the store (autostart off: libvirt 11.3 hands mdevctl
/// the parsed XML, which has no autostart, as seen in `mdevctl14.rs`), LIVE and CURRENT sysfs
/// and the running device, LIVE|CONFIG both with one UPDATE for each; the type of the
/// definition may change apart from the running device's; stopped, the device shows its
/// definition again, started, it runs with it.
#[test]
fn update_of_an_active_persistent_mdev() {
    let Some(mut u) = UpdateHost::start() else {
        return;
    };
    let (c, w, root) = (&mut u.c, &mut u.w, &u.h.root);
    let read = |p: &Path| UpdateHost::read(p);
    let store_a = &u.store_a;
    // CONFIG: the store changes (autostart off), sysfs and the running device do not.
    update(c, NA, &xa("2"), 2).unwrap();
    assert_eq!(w.next(), Ev::Updated(NA.into()));
    let j = read(store_a);
    assert!(
        j.contains("\"x\": \"2\"") && j.contains("\"start\": \"manual\""),
        "{j}"
    );
    assert_eq!(sysfs_attr(root, UA), "1");
    assert!(xml_desc(c, NA, 0)
        .unwrap()
        .contains("<attr name='x' value='1'/>"));
    assert!(xml_desc(c, NA, 1)
        .unwrap()
        .contains("<attr name='x' value='2'/>"));
    // LIVE and CURRENT (= LIVE): sysfs and the running device change, the store does not.
    for (flags, x) in [(1, "3"), (0, "4")] {
        update(c, NA, &xa(x), flags).unwrap();
        assert_eq!(w.next(), Ev::Updated(NA.into()));
        assert_eq!(sysfs_attr(root, UA), x);
        assert!(read(store_a).contains("\"x\": \"2\""));
        assert!(xml_desc(c, NA, 0)
            .unwrap()
            .contains(&format!("<attr name='x' value='{x}'/>")));
        assert!(xml_desc(c, NA, 1)
            .unwrap()
            .contains("<attr name='x' value='2'/>"));
    }
    // LIVE|CONFIG: both, one UPDATE for each.
    update(c, NA, &xa("5"), 3).unwrap();
    assert_eq!(w.next(), Ev::Updated(NA.into()));
    assert_eq!(w.next(), Ev::Updated(NA.into()));
    assert_eq!(sysfs_attr(root, UA), "5");
    assert!(read(store_a).contains("\"x\": \"5\""));
    // Nothing new: no event.
    update(c, NA, &xa("5"), 3).unwrap();
    w.quiet(300);
    // CONFIG may change the type of the definition; the running device keeps its own, and
    // a LIVE|CONFIG update then fails as mdevctl's does.
    update(c, NA, &update_xml(NA, GPU, Some(UA), "nvidia-223", "5"), 2).unwrap();
    assert_eq!(w.next(), Ev::Updated(NA.into()));
    assert!(read(store_a).contains("\"mdev_type\": \"nvidia-223\""));
    assert!(xml_desc(c, NA, 0)
        .unwrap()
        .contains("<type id='nvidia-222'/>"));
    assert!(xml_desc(c, NA, 1)
        .unwrap()
        .contains("<type id='nvidia-223'/>"));
    assert_err(
        update(c, NA, &xa("6"), 3),
        1,
        "internal error: Unable to modify mediated device: Error: 'type' of active and defined mdev does not match\n",
    );
    update(c, NA, &xa("6"), 2).unwrap();
    assert_eq!(w.next(), Ev::Updated(NA.into()));
    // Stopped, the device shows its definition again; started, it runs with it.
    ok(&u.h.uri, &["nodedev-destroy", NA]);
    assert_eq!(w.next(), Ev::Deleted(NA.into()));
    assert!(xml_desc(c, NA, 0)
        .unwrap()
        .contains("<attr name='x' value='6'/>"));
    ok(&u.h.uri, &["nodedev-start", NA]);
    assert_eq!(w.next(), Ev::Created(NA.into()));
    assert!(xml_desc(c, NA, 0)
        .unwrap()
        .contains("<attr name='x' value='6'/>"));
}

/// Inactive persistent B: CURRENT and CONFIG change the store and the device; the type of
/// an inactive device's definition may change.
#[test]
fn update_of_an_inactive_persistent_mdev() {
    let Some(mut u) = UpdateHost::start() else {
        return;
    };
    let (c, w) = (&mut u.c, &mut u.w);
    for (flags, x) in [(0, "7"), (2, "8")] {
        update(c, NB, &xb(x), flags).unwrap();
        assert_eq!(w.next(), Ev::Updated(NB.into()));
        assert!(UpdateHost::read(&u.store_b).contains(&format!("\"x\": \"{x}\"")));
        let inactive = xml_desc(c, NB, 1).unwrap();
        assert!(inactive.contains(&format!("<attr name='x' value='{x}'/>")));
        assert_eq!(xml_desc(c, NB, 0).unwrap(), inactive);
    }
    update(c, NB, &update_xml(NB, GPU, Some(UB), "nvidia-222", "8"), 0).unwrap();
    assert_eq!(w.next(), Ev::Updated(NB.into()));
    assert!(UpdateHost::read(&u.store_b).contains("\"mdev_type\": \"nvidia-222\""));
}

/// Transient T: CURRENT and LIVE change sysfs and the running device, never a store file;
/// an attribute the device does not have is refused and nothing is written.
#[test]
fn update_of_a_transient_mdev() {
    let Some(mut u) = UpdateHost::start() else {
        return;
    };
    let (c, w, root) = (&mut u.c, &mut u.w, &u.h.root);
    for (flags, x) in [(0, "10"), (1, "11")] {
        update(c, NT, &xt(x), flags).unwrap();
        assert_eq!(w.next(), Ev::Updated(NT.into()));
        assert_eq!(sysfs_attr(root, UT), x);
        assert!(xml_desc(c, NT, 0)
            .unwrap()
            .contains(&format!("<attr name='x' value='{x}'/>")));
    }
    assert!(!root.join("etc/mdevctl.d/0000:af:00.0").join(UT).exists());
    let e = update(
        c,
        NT,
        &format!(
            "<device><name>{NT}</name><parent>{GPU}</parent><capability type='mdev'>\
             <type id='nvidia-222'/><uuid>{UT}</uuid><attr name='nosuch' value='1'/>\
             </capability></device>"
        ),
        1,
    )
    .unwrap_err();
    assert!(
        e.message
            .starts_with("internal error: Unable to modify mediated device: Error: "),
        "{e:?}"
    );
    assert!(!root
        .join("sys/bus/mdev/devices")
        .join(UT)
        .join("nosuch")
        .exists());
    w.quiet(300);
}

/// With mdevctl, libvirt first asks whether it knows `modify --defined --live --jsonfile`;
/// Debian's mdevctl 1.2.0 does not, so a valid update is refused as libvirt 10.1.0 refuses
/// it there, after the same checks.
#[test]
fn update_with_mdevctl_1_2() {
    let Some(h) = MdevHost::with_mdevctl() else {
        return;
    };
    ok(
        &h.uri,
        &[
            "nodedev-define",
            h.xml_file(&mdev_xml(Some(UB), "nvidia-223")),
        ],
    );
    let store_b = h.store("0000:af:00.0").join(UB);
    let before = std::fs::read_to_string(&store_b).unwrap();
    let mut c = h.daemon.open_client();
    let mut w = h.watcher();
    assert_err(
        update(&mut c, NB, &xb("9"), 1),
        55,
        "Requested operation is not valid: node device is not active",
    );
    for flags in [0, 2] {
        assert_err(
            update(&mut c, NB, &xb("9"), flags),
            84,
            "Operation not supported: Unable to modify mediated device: modify unsupported",
        );
    }
    assert_eq!(std::fs::read_to_string(&store_b).unwrap(), before);
    w.quiet(500);
}

/// The store files the daemon writes without mdevctl are, byte for byte, the ones Debian's
/// mdevctl writes for the same definition (with and without attributes).
#[test]
fn our_store_files_are_byte_for_byte_mdevctls() {
    let Some(h) = MdevHost::with_mdevctl() else {
        return;
    };
    let cases = [
        (
            M1,
            r#"{"mdev_type":"nvidia-222","start":"auto","attrs":[{"x":"1"},{"y":"a \"b\""}]}"#,
            vec![("x", "1"), ("y", "a \"b\"")],
            true,
        ),
        (
            M2,
            r#"{"mdev_type":"nvidia-223","start":"manual"}"#,
            vec![],
            false,
        ),
    ];
    for (uuid, json, attrs, autostart) in cases {
        let file = h.scratch().join(format!("{uuid}.json"));
        std::fs::write(&file, json).unwrap();
        let (okk, _, err) = mdevctl(
            &h.root,
            &[
                "define",
                "--parent",
                "0000:af:00.0",
                "--uuid",
                uuid,
                "--jsonfile",
                file.to_str().unwrap(),
            ],
        );
        assert!(okk, "{err}");
        let theirs = std::fs::read_to_string(h.store("0000:af:00.0").join(uuid)).unwrap();
        let def = virtnodedevd::driver::Definition {
            parent_addr: "0000:af:00.0".into(),
            uuid: uuid.into(),
            type_id: mdev_type_of(json),
            attrs: attrs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            autostart,
        };
        assert_eq!(virtnodedevd::manage::store::to_json(&def), theirs, "{uuid}");
    }
}

/// The `mdev_type` of a compact configuration.
fn mdev_type_of(json: &str) -> String {
    json.split("\"mdev_type\":\"")
        .nth(1)
        .unwrap()
        .split('"')
        .next()
        .unwrap()
        .to_owned()
}
