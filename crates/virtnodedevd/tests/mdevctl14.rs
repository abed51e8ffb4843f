//! Mediated-device management through mdevctl 1.4 (the libvirt 11.3 chroot's, run over the
//! fake tree by `tests/mdevctl-ns-11.3`), driven by virsh 11.3, against libvirt 11.3 with
//! the same mdevctl over a copy of the same tree: define, redefine (NodeDeviceDefineXML on
//! an existing persistent mdev modifies it, libvirt 11.3), autostart, update (`mdevctl modify
//! --defined --jsonfile`, no longer refused with an mdevctl that knows it), undefine, with
//! the lists, XML, info and events each step gives. Definitions only: the reference has no
//! fake kernel to start devices on the fake tree.

mod common;

use std::path::{Path, PathBuf};
use std::time::Duration;

use common::mdev::{mdev_xml, Ev, FakeKernel, Watcher, GPU};
use common::{fc_mdev_s390_tree, virsh_of, Daemon, Libvirt, Reference};
use protocol::remote::{self as r, proc};
use rpc::client::Client;

const UA: &str = "a1111111-2222-4333-8444-555555555555";
const NA: &str = "mdev_a1111111_2222_4333_8444_555555555555_0000_af_00_0";

/// The wrapper that runs mdevctl 1.4 over a fake root.
fn mdevctl_ns_11_3() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/mdevctl-ns-11.3")
}

/// A client subscribed to lifecycle and update events of every device.
fn subscribe(mut c: Client) -> Watcher {
    for id in [protocol::event_id::LIFECYCLE, protocol::event_id::UPDATE] {
        let _: r::IntRet = c
            .call(
                proc::CONNECT_NODE_DEVICE_EVENT_REGISTER_ANY,
                &r::EventRegisterAnyArgs {
                    event_id: id,
                    dev: None,
                },
            )
            .unwrap();
    }
    Watcher { c }
}

/// The events about [`NA`] that arrive until the daemon has been quiet for a while.
///
/// Events about other devices are left out: libvirt 11.3 re-reads mdevctl's lists after
/// every change to its store (inotify, coalesced by a timer) and each time sends an UPDATE
/// for every running transient mdev, changed or not, as many times as the timing of the
/// inotify events makes it re-read. Those say nothing happened to the device; we do not
/// send them.
fn drain(w: &mut Watcher) -> Vec<String> {
    w.c.stream()
        .set_read_timeout(Some(Duration::from_millis(1000)))
        .unwrap();
    let mut out = Vec::new();
    while let Ok(m) = w.c.read_message() {
        let d = &mut xdr::Decoder::new(&m.payload);
        match m.header.proc_ {
            proc::NODE_DEVICE_EVENT_LIFECYCLE => {
                let e = <r::LifecycleEventMsg as xdr::Xdr>::decode(d).unwrap();
                if e.dev.name == NA {
                    out.push(format!("lifecycle {}", e.event));
                }
            }
            proc::NODE_DEVICE_EVENT_UPDATE => {
                let e = <r::UpdateEventMsg as xdr::Xdr>::decode(d).unwrap();
                if e.dev.name == NA {
                    out.push(format!("{:?}", Ev::Updated(e.dev.name)));
                }
            }
            _ => {}
        }
    }
    out
}

/// One step: virsh 11.3 arguments, with `XML` standing for a file holding `xml`.
struct Step {
    args: Vec<&'static str>,
    xml: Option<String>,
}

fn step(args: &[&'static str], xml: Option<String>) -> Step {
    Step {
        args: args.to_vec(),
        xml,
    }
}

fn xml_with(ty: &str, attr: &str) -> String {
    mdev_xml(Some(UA), ty).replace("value='1'", &format!("value='{attr}'"))
}

fn update_xml(ty: &str, attr: &str) -> String {
    xml_with(ty, attr).replace("<device>", &format!("<device><name>{NA}</name>"))
}

/// The steps, in order; each is compared with its output and the events it caused.
fn steps() -> Vec<Step> {
    let listing: &[&[&'static str]] = &[
        &["nodedev-list", "--cap", "mdev", "--all"],
        &["nodedev-list", "--cap", "mdev", "--persistent"],
        &["nodedev-list", "--cap", "mdev", "--transient"],
        &[
            "nodedev-list",
            "--cap",
            "mdev",
            "--inactive",
            "--persistent",
        ],
        &["nodedev-info", NA],
        &["nodedev-dumpxml", NA],
        &["nodedev-dumpxml", "--inactive", NA],
    ];
    let mut v = vec![step(
        &["nodedev-define", "XML"],
        Some(xml_with("nvidia-222", "1")),
    )];
    v.extend(listing.iter().map(|a| step(a, None)));
    v.push(step(&["nodedev-autostart", NA], None));
    v.push(step(&["nodedev-info", NA], None));
    // The same device again, changed: 11.3 modifies the definition.
    v.push(step(
        &["nodedev-define", "XML"],
        Some(xml_with("nvidia-223", "2")),
    ));
    v.extend(listing.iter().map(|a| step(a, None)));
    // Again, unchanged.
    v.push(step(
        &["nodedev-define", "XML"],
        Some(xml_with("nvidia-223", "2")),
    ));
    v.push(step(&["nodedev-autostart", NA], None));
    v.push(step(
        &["nodedev-update", NA, "XML", "--config"],
        Some(update_xml("nvidia-222", "3")),
    ));
    v.push(step(
        &["nodedev-update", NA, "XML"],
        Some(update_xml("nvidia-222", "4")),
    ));
    v.extend(listing.iter().map(|a| step(a, None)));
    v.push(step(
        &["nodedev-update", NA, "XML", "--live"],
        Some(update_xml("nvidia-222", "5")),
    ));
    v.push(step(
        &["nodedev-update", NA, "XML", "--config"],
        Some(update_xml("nvidia-222", "6").replace(UA, "b1111111-2222-4333-8444-555555555555")),
    ));
    v.push(step(&["nodedev-undefine", NA], None));
    v.push(step(&["nodedev-list", "--cap", "mdev", "--all"], None));
    v
}

/// Runs the steps against `uri` with virsh 11.3; one line of output and events per step.
fn play(uri: &str, file: &Path, w: &mut Watcher) -> Vec<String> {
    let mut out = Vec::new();
    for s in steps() {
        if let Some(x) = &s.xml {
            std::fs::write(file, x).unwrap();
        }
        let f = file.to_str().unwrap();
        let args: Vec<&str> = s
            .args
            .iter()
            .map(|a| if *a == "XML" { f } else { a })
            .collect();
        let o = virsh_of(Libvirt::V11_3, uri, &args);
        out.push(format!(
            "virsh {:?} => {:?}\n{}{}  events: {:?}",
            s.args,
            o.status.code(),
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr).replace(f, "XML"),
            drain(w)
        ));
    }
    out
}

#[test]
fn definitions_through_mdevctl_1_4_like_libvirt_11_3() {
    if !Libvirt::V11_3.clients_available() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let trees: Vec<fakesys::FakeSys> = (0..2)
        .map(|i| {
            let dir = tmp.path().join(format!("t{i}"));
            std::fs::create_dir_all(&dir).unwrap();
            fc_mdev_s390_tree(&dir)
        })
        .collect();
    let Some(reference) = Reference::start(Some(trees[0].root())) else {
        return;
    };
    let wrapper = mdevctl_ns_11_3();
    let ours = Daemon::start_env(
        Some(trees[1].root()),
        "",
        true,
        &[("VIRTNODEDEVD_MDEVCTL", wrapper.as_path())],
    );
    assert!(
        ours.log().contains("managing mediated devices with"),
        "{}",
        ours.log()
    );
    let _kernel = FakeKernel::start(trees[1].root().to_path_buf(), ours.uevent_sock());
    let file = tmp.path().join("m.xml");
    let mut w = subscribe(reference.open_client());
    let want = play(&reference.uri, &file, &mut w);
    let mut w = subscribe(ours.open_client());
    let got = play(&ours.uri(), &file, &mut w);
    let diffs: Vec<String> = want
        .iter()
        .zip(&got)
        .filter(|(w, g)| w != g)
        .map(|(w, g)| format!("libvirt 11.3: {w}\nours:         {g}"))
        .collect();
    assert!(diffs.is_empty(), "{}", diffs.join("\n\n"));
    assert!(want.iter().any(|l| l.contains(GPU) || l.contains(NA)));
}

/// Our daemon with mdevctl 1.4 and the fake kernel: a defined mdev, running, is updated
/// live (`mdevctl modify --live`, which mdevctl 1.4 refuses without a callout script for the
/// type; the error is mdevctl's, passed on as libvirt 11.3 does) and in its definition,
/// stopped (`mdevctl stop`) and undefined. libvirt 11.3 cannot be run beside it
/// here (no fake kernel for it), so ours is checked on its own.
///
/// The device is started by writing its UUID to the type's `create` as mdevctl would, not by
/// `mdevctl start`: mdevctl 1.4 looks at the new device right after that write, before the
/// fake kernel (a polling thread) has made it, and gives up ("Error removing device").
#[test]
fn running_mdevs_through_mdevctl_1_4() {
    if !Libvirt::V11_3.clients_available() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let tree = fc_mdev_s390_tree(tmp.path());
    let root = tree.root().to_path_buf();
    let wrapper = mdevctl_ns_11_3();
    let d = Daemon::start_env(
        Some(&root),
        "",
        true,
        &[("VIRTNODEDEVD_MDEVCTL", wrapper.as_path())],
    );
    let _kernel = FakeKernel::start(root.clone(), d.uevent_sock());
    let uri = d.uri();
    let file = tmp.path().join("m.xml");
    let try_virsh = |args: &[&str], xml: Option<&str>| {
        if let Some(x) = xml {
            std::fs::write(&file, x).unwrap();
        }
        let f = file.to_str().unwrap();
        let args: Vec<&str> = args
            .iter()
            .map(|a| if *a == "XML" { f } else { a })
            .collect();
        let o = virsh_of(Libvirt::V11_3, &uri, &args);
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        );
        (o.status.success(), text)
    };
    let virsh = |args: &[&str], xml: Option<&str>| {
        let (ok, text) = try_virsh(args, xml);
        assert!(ok, "virsh {args:?}: {text}");
        text
    };
    let info = |want: &str| {
        common::mdev::wait_until(want, || virsh(&["nodedev-info", NA], None).contains(want))
    };
    let sysfs_x = || {
        std::fs::read_to_string(root.join("sys/bus/mdev/devices").join(UA).join("x"))
            .unwrap_or_default()
    };
    virsh(
        &["nodedev-define", "XML"],
        Some(&xml_with("nvidia-222", "1")),
    );
    let gpu = std::fs::canonicalize(root.join("sys/bus/pci/devices/0000:af:00.0")).unwrap();
    std::fs::write(gpu.join("mdev_supported_types/nvidia-222/create"), UA).unwrap();
    info("Active:         yes");
    assert_eq!(sysfs_x().trim(), "");
    let (ok, err) = try_virsh(
        &["nodedev-update", NA, "XML", "--live"],
        Some(&update_xml("nvidia-222", "7")),
    );
    assert!(
        !ok && err.contains(
            "error: internal error: Unable to modify mediated device: Error: Live modification \
             is not supported for this device type."
        ),
        "{err}"
    );
    assert_eq!(sysfs_x().trim(), "");
    assert!(
        virsh(&["nodedev-dumpxml", "--inactive", NA], None).contains("<attr name='x' value='1'/>")
    );
    virsh(
        &["nodedev-update", NA, "XML", "--config"],
        Some(&update_xml("nvidia-223", "8")),
    );
    assert!(virsh(&["nodedev-dumpxml", "--inactive", NA], None).contains("<type id='nvidia-223'/>"));
    assert!(virsh(&["nodedev-dumpxml", NA], None).contains("<type id='nvidia-222'/>"));
    virsh(&["nodedev-destroy", NA], None);
    info("Active:         no");
    assert!(virsh(&["nodedev-dumpxml", NA], None).contains("<type id='nvidia-223'/>"));
    virsh(&["nodedev-undefine", NA], None);
    assert!(!virsh(&["nodedev-list", "--all"], None).contains(NA));
}
