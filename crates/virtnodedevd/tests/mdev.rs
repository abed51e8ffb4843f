//! Mediated devices created, defined, started, stopped and undefined through the API over
//! a fake tree, with a small "fake kernel" thread that turns writes to
//! `mdev_supported_types/*/create` and an mdev's `remove` into device directories and
//! uevents, as the kernel would.

mod common;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{fc_mdev_s390_tree, virsh, virsh_available, Daemon};

const GPU: &str = "pci_0000_af_00_0";

/// Watches the tree and plays the kernel's part for mdev create/remove.
struct FakeKernel {
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl FakeKernel {
    fn start(root: PathBuf, uevents: PathBuf) -> FakeKernel {
        let stop = Arc::new(AtomicBool::new(false));
        let s = stop.clone();
        let thread = std::thread::spawn(move || {
            let f = fakesys::FakeSys::new(&root).unwrap();
            let send = |action: &str, devpath: &str| {
                let devpath = devpath.strip_prefix("/sys").unwrap_or(devpath);
                let msg = format!(
                    "{action}@{devpath}\0ACTION={action}\0DEVPATH={devpath}\0SUBSYSTEM=mdev\0SEQNUM=1\0"
                );
                let sock = std::os::unix::net::UnixDatagram::unbound().unwrap();
                let _ = sock.send_to(msg.as_bytes(), &uevents);
            };
            while !s.load(Ordering::Relaxed) {
                for parent in mdev_parents(&root) {
                    let types = root
                        .join(parent.trim_start_matches('/'))
                        .join("mdev_supported_types");
                    for t in std::fs::read_dir(&types).into_iter().flatten().flatten() {
                        let create = t.path().join("create");
                        let Ok(uuid) = std::fs::read_to_string(&create) else {
                            continue;
                        };
                        let uuid = uuid.trim().to_owned();
                        if uuid.is_empty() {
                            continue;
                        }
                        std::fs::write(&create, "").unwrap();
                        let ty = t.file_name().to_string_lossy().into_owned();
                        let dev = f.mdev(&parent, &uuid, &ty, Some(200)).unwrap();
                        f.write(&format!("{dev}/remove"), "").unwrap();
                        send("add", &dev);
                    }
                    // Mdevs of this parent asked to go.
                    for e in std::fs::read_dir(root.join(parent.trim_start_matches('/')))
                        .into_iter()
                        .flatten()
                        .flatten()
                    {
                        let rm = e.path().join("remove");
                        if std::fs::read_to_string(&rm).is_ok_and(|s| s.trim() == "1") {
                            let uuid = e.file_name().to_string_lossy().into_owned();
                            let dev = format!("{parent}/{uuid}");
                            let _ = std::fs::remove_file(
                                root.join(format!("sys/bus/mdev/devices/{uuid}")),
                            );
                            for t in std::fs::read_dir(&types).into_iter().flatten().flatten() {
                                let _ = std::fs::remove_file(t.path().join("devices").join(&uuid));
                            }
                            std::fs::remove_dir_all(e.path()).unwrap();
                            send("remove", &dev);
                        }
                    }
                }
                std::thread::sleep(Duration::from_millis(10));
            }
        });
        FakeKernel {
            stop,
            thread: Some(thread),
        }
    }
}

impl Drop for FakeKernel {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Host paths of the devices under `class/mdev_bus`.
fn mdev_parents(root: &Path) -> Vec<String> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(root.join("sys/class/mdev_bus"))
        .into_iter()
        .flatten()
        .flatten()
    {
        if let Ok(p) = std::fs::canonicalize(e.path()) {
            if let Ok(rel) = p.strip_prefix(std::fs::canonicalize(root).unwrap()) {
                out.push(format!("/{}", rel.display()));
            }
        }
    }
    out
}

fn run(uri: &str, args: &[&str]) -> (bool, String, String) {
    let o = virsh(uri, args);
    (
        o.status.success(),
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

fn wait_until(what: &str, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn mdev_xml(uuid: Option<&str>, ty: &str) -> String {
    let u = uuid
        .map(|u| format!("<uuid>{u}</uuid>"))
        .unwrap_or_default();
    format!(
        "<device><parent>{GPU}</parent><capability type='mdev'><type id='{ty}'/>{u}\
         <attr name='x' value='1'/></capability></device>"
    )
}

#[test]
fn transient_and_persistent_mdevs() {
    if !virsh_available() {
        eprintln!("skipped: virsh missing");
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let tree = fc_mdev_s390_tree(tmp.path());
    let root = tree.root().to_path_buf();
    let d = Daemon::start_with(Some(&root), "", true);
    let _k = FakeKernel::start(root.clone(), d.uevent_sock());
    let uri = d.uri();
    let file = tmp.path().join("m.xml");

    // Transient: create, appears with the parent's address in its name; destroy removes it.
    let u1 = "11111111-2222-4333-8444-555555555555";
    std::fs::write(&file, mdev_xml(Some(u1), "nvidia-222")).unwrap();
    let (ok, out, err) = run(&uri, &["nodedev-create", file.to_str().unwrap()]);
    assert!(ok, "create: {err}\n{}", d.log());
    let name = "mdev_11111111_2222_4333_8444_555555555555_0000_af_00_0";
    let _ = out;
    assert!(run(&uri, &["nodedev-list", "--cap", "mdev"])
        .1
        .contains(name));
    let (_, info, e) = run(&uri, &["nodedev-info", name]);
    assert!(
        info.contains("Active:         yes") && info.contains("Persistent:     no"),
        "{info:?} {e}"
    );
    // The same UUID again: refused, nothing changes.
    let (ok, _, err) = run(&uri, &["nodedev-create", file.to_str().unwrap()]);
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
        std::fs::write(&file, xml).unwrap();
        let (ok, _, err) = run(&uri, &["nodedev-create", file.to_str().unwrap()]);
        assert!(!ok && err.contains(want), "{want}: {err}");
    }
    let (ok, _, err) = run(&uri, &["nodedev-destroy", GPU]);
    assert!(!ok && err.contains("Unsupported device type"), "{err}");
    let (ok, _, err) = run(&uri, &["nodedev-destroy", name]);
    assert!(ok, "destroy: {err}");
    wait_until("the mdev to go", || {
        !run(&uri, &["nodedev-list", "--all"]).1.contains(name)
    });

    // Persistent: define (inactive, listed with --inactive), autostart, start, destroy
    // (stays defined), undefine.
    let u2 = "22222222-2222-4333-8444-555555555555";
    std::fs::write(&file, mdev_xml(Some(u2), "nvidia-223")).unwrap();
    let (ok, out, err) = run(&uri, &["nodedev-define", file.to_str().unwrap()]);
    assert!(ok, "define: {err}");
    let name2 = "mdev_22222222_2222_4333_8444_555555555555_0000_af_00_0";
    let _ = out;
    let stored = root.join("etc/mdevctl.d/0000:af:00.0").join(u2);
    let json = std::fs::read_to_string(&stored).unwrap();
    assert!(
        json.contains("\"mdev_type\": \"nvidia-223\"") && json.contains("\"start\": \"manual\""),
        "{json}"
    );
    assert!(run(&uri, &["nodedev-list", "--inactive"]).1.contains(name2));
    let (_, xml, _) = run(&uri, &["nodedev-dumpxml", name2]);
    assert!(
        xml.contains("<attr name='x' value='1'/>")
            && xml.contains(&format!("<parent>{GPU}</parent>")),
        "{xml}"
    );
    let (ok, _, err) = run(&uri, &["nodedev-autostart", name2]);
    assert!(ok, "autostart: {err}");
    assert!(std::fs::read_to_string(&stored)
        .unwrap()
        .contains("\"start\": \"auto\""));
    let (ok, _, err) = run(&uri, &["nodedev-start", name2]);
    assert!(ok, "start: {err}");
    wait_until("the defined mdev to run", || {
        run(&uri, &["nodedev-info", name2])
            .1
            .contains("Active:         yes")
    });
    let (_, info, _) = run(&uri, &["nodedev-info", name2]);
    assert!(
        info.contains("Persistent:     yes") && info.contains("Autostart:      yes"),
        "{info}"
    );
    let (ok, _, err) = run(&uri, &["nodedev-start", name2]);
    assert!(!ok && err.contains("Device is already active"), "{err}");
    let (ok, _, err) = run(&uri, &["nodedev-destroy", name2]);
    assert!(ok, "destroy persistent: {err}");
    wait_until("the persistent mdev to stop", || {
        run(&uri, &["nodedev-info", name2])
            .1
            .contains("Active:         no")
    });
    let (ok, _, err) = run(&uri, &["nodedev-undefine", name2]);
    assert!(ok, "undefine: {err}");
    assert!(!stored.exists());
    assert!(!run(&uri, &["nodedev-list", "--all"]).1.contains(name2));

    // A definition written behind our back shows up; its removal undefines it.
    let u3 = "33333333-2222-4333-8444-555555555555";
    let dir = root.join("etc/mdevctl.d/0000:af:00.0");
    std::fs::write(
        dir.join(u3),
        "{\"mdev_type\": \"nvidia-222\", \"start\": \"manual\"}",
    )
    .unwrap();
    let name3 = "mdev_33333333_2222_4333_8444_555555555555_0000_af_00_0";
    wait_until("the outside definition", || {
        run(&uri, &["nodedev-list", "--inactive"]).1.contains(name3)
    });
    std::fs::remove_file(dir.join(u3)).unwrap();
    wait_until("the outside undefinition", || {
        !run(&uri, &["nodedev-list", "--all"]).1.contains(name3)
    });

    // Definitions survive a restart.
    std::fs::write(&file, mdev_xml(Some(u2), "nvidia-223")).unwrap();
    assert!(run(&uri, &["nodedev-define", file.to_str().unwrap()]).0);
    drop(_k);
    drop(d);
    let d = Daemon::start(Some(&root), "");
    assert!(run(&d.uri(), &["nodedev-list", "--inactive"])
        .1
        .contains(name2));
}

/// kill -9 while defining and undefining 100 devices: the store stays parseable and the
/// restarted daemon lists exactly what is on disk.
#[test]
fn store_survives_kill() {
    if !virsh_available() {
        eprintln!("skipped: virsh missing");
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let tree = fc_mdev_s390_tree(tmp.path());
    let root = tree.root().to_path_buf();
    let d = Daemon::start(Some(&root), "");
    let uri = d.uri();
    let script = (0..100)
        .map(|i| {
            let f = tmp.path().join(format!("d{i}.xml"));
            std::fs::write(
                &f,
                mdev_xml(Some(&format!("{i:08x}-0000-4000-8000-000000000000")), "nvidia-222"),
            )
            .unwrap();
            format!(
                "nodedev-define {} ; nodedev-undefine mdev_{i:08x}_0000_4000_8000_000000000000_0000_af_00_0 ; nodedev-define {}",
                f.display(),
                f.display()
            )
        })
        .collect::<Vec<_>>()
        .join(" ; ");
    let mut child = std::process::Command::new("virsh")
        .args(["-q", "-c", &uri, &script])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(700));
    let pid: i32 = std::fs::read_to_string(d.dir.path().join("virtnodedevd.pid"))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    unsafe_kill(pid);
    let _ = child.wait();
    let dir = root.join("etc/mdevctl.d/0000:af:00.0");
    let mut on_disk = Vec::new();
    for e in std::fs::read_dir(&dir).unwrap().flatten() {
        let n = e.file_name().to_string_lossy().into_owned();
        let text = std::fs::read_to_string(e.path()).unwrap();
        if n.starts_with('.') {
            continue; // a temporary file from the killed write
        }
        assert!(
            text.contains("\"mdev_type\": \"nvidia-222\"") && text.ends_with('}'),
            "{n}: {text}"
        );
        on_disk.push(format!("mdev_{}_0000_af_00_0", n.replace('-', "_")));
    }
    assert!(!on_disk.is_empty(), "nothing was defined before the kill");
    drop(d);
    let d = Daemon::start(Some(&root), "");
    let (_, listed, _) = run(&d.uri(), &["nodedev-list", "--inactive"]);
    let listed: Vec<&str> = listed.lines().filter(|l| l.starts_with("mdev_")).collect();
    on_disk.sort();
    assert_eq!(listed, on_disk);
}

fn unsafe_kill(pid: i32) {
    let _ = std::process::Command::new("kill")
        .args(["-9", &pid.to_string()])
        .status();
}
