//! Crash consistency, proven: the daemon is killed (SIGKILL, by the test-only hook of
//! `src/fault.rs`) at each step of every write of mdevctl's store and of the pid file,
//! and a restart must find a consistent state.
//!
//! Each case proves that the kill landed where it was aimed: the hook names the point in
//! a marker file just before it kills, and the daemon's exit status is SIGKILL.
//!
//! The store property, for each operation and each point it passes:
//! - the definition file holds exactly the old or exactly the new configuration (never a
//!   torn or missing one): the old one while the kill came before the rename (or unlink),
//!   the new one from then on;
//! - a temporary file left by the kill is never taken for a definition, and the restarted
//!   daemon removes it;
//! - the restarted daemon lists exactly what the store holds, with the stored
//!   configuration (type, attribute, autostart).
//!
//! The event property (what a client can observe): events go out only for changes
//! complete on disk, so the interrupted operation got neither a reply nor an event
//! before the kill; a client that reconnects finds the device defined if and only if
//! the store holds its definition; the restart itself sends no event (nothing the old
//! daemon reported is reported again, nothing it did not report is invented), and the
//! next change is reported exactly once.
//!
//! The pid file: a kill at any step of its write leaves no pid file or a complete one
//! (the old daemon's or the killed one's pid), and the next start succeeds and writes
//! its own.

mod common;

use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{device_names, fc_mdev_s390_tree, Daemon, BIN};
use protocol::remote::{self as r, proc};
use rpc::client::{CallError, Client};
use xdr::{Decoder, Xdr};

const GPU: &str = "pci_0000_af_00_0";
const PARENT_ADDR: &str = "0000:af:00.0";
const UUID: &str = "c4a5e000-0000-4000-8000-000000000009";
const NAME: &str = "mdev_c4a5e000_0000_4000_8000_000000000009_0000_af_00_0";

/// The hook exists in builds with debug assertions only (the profile `cargo test` uses);
/// a release test run has nothing to inject into.
fn hook_built() -> bool {
    common::available(
        cfg!(debug_assertions),
        "the fault-injection hook (a build with debug assertions)",
    )
}

/// A stored configuration, in the text mdevctl (and the daemon) writes.
#[derive(Debug, Clone, PartialEq)]
struct Conf {
    type_id: &'static str,
    autostart: bool,
    x: &'static str,
}

impl Conf {
    fn json(&self) -> String {
        format!(
            "{{\n  \"mdev_type\": \"{}\",\n  \"start\": \"{}\",\n  \"attrs\": [\n    {{\n      \"x\": \"{}\"\n    }}\n  ]\n}}",
            self.type_id,
            if self.autostart { "auto" } else { "manual" },
            self.x
        )
    }
}

const OLD: Conf = Conf {
    type_id: "nvidia-222",
    autostart: false,
    x: "1",
};

#[derive(Debug, Clone, Copy, PartialEq)]
enum Op {
    Define,
    Redefine,
    Undefine,
    Autostart,
    UpdateConfig,
}

impl Op {
    fn before(self) -> Option<Conf> {
        match self {
            Op::Define => None,
            _ => Some(OLD),
        }
    }

    fn after(self) -> Option<Conf> {
        match self {
            Op::Define => Some(OLD),
            Op::Redefine => Some(Conf {
                type_id: "nvidia-223",
                x: "2",
                ..OLD
            }),
            Op::Undefine => None,
            Op::Autostart => Some(Conf {
                autostart: true,
                ..OLD
            }),
            Op::UpdateConfig => Some(Conf { x: "2", ..OLD }),
        }
    }

    /// The points the operation passes, in order, with the hit to kill at; and whether
    /// the new configuration is in place at that point.
    fn points(self) -> Vec<(&'static str, u32, bool)> {
        let mut p = Vec::new();
        if self == Op::Define {
            // A fresh store: `mdevctl.d`, then the parent's directory.
            p.push(("store-mkdir", 1, false));
            p.push(("store-mkdir", 2, false));
        }
        if self == Op::Undefine {
            p.push(("store-removed", 1, true));
        } else {
            p.push(("store-created", 1, false));
            p.push(("store-written", 1, false));
            p.push(("store-fsynced", 1, false));
            p.push(("store-renamed", 1, true));
        }
        p.push(("store-dir-fsynced", 1, true));
        p
    }

    /// Runs the operation; the daemon is killed during it, so no reply may come.
    fn run(self, c: &mut Client) -> Result<(), CallError> {
        let define = |c: &mut Client, conf: &Conf| {
            c.call::<_, r::NodeDeviceRet>(
                proc::NODE_DEVICE_DEFINE_XML,
                &r::XmlFlagsArgs {
                    xml_desc: format!(
                        "<device><parent>{GPU}</parent><capability type='mdev'>\
                         <type id='{}'/><uuid>{UUID}</uuid><attr name='x' value='{}'/>\
                         </capability></device>",
                        conf.type_id, conf.x
                    ),
                    flags: 0,
                },
            )
            .map(|_| ())
        };
        match self {
            Op::Define | Op::Redefine => define(c, &self.after().unwrap()),
            Op::Undefine => c.call(
                proc::NODE_DEVICE_UNDEFINE,
                &r::NameFlagsArgs {
                    name: NAME.into(),
                    flags: 0,
                },
            ),
            Op::Autostart => c.call(
                proc::NODE_DEVICE_SET_AUTOSTART,
                &r::SetAutostartArgs {
                    name: NAME.into(),
                    autostart: 1,
                },
            ),
            Op::UpdateConfig => c.call(
                proc::NODE_DEVICE_UPDATE,
                &r::NodeDeviceUpdateArgs {
                    name: NAME.into(),
                    xml_desc: format!(
                        "<device><name>{NAME}</name><parent>{GPU}</parent>\
                         <capability type='mdev'><type id='nvidia-222'/><uuid>{UUID}</uuid>\
                         <attr name='x' value='2'/></capability></device>"
                    ),
                    // VIR_NODE_DEVICE_UPDATE_AFFECT_CONFIG
                    flags: 2,
                },
            ),
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
enum Ev {
    Defined(String),
    Undefined(String),
    Other(i32, i32, String),
}

/// The next event; `None` when the connection is closed (or nothing comes in 10 s).
fn next_event(c: &mut Client) -> Option<Ev> {
    loop {
        let m = c.read_message().ok()?;
        let d = &mut Decoder::new(&m.payload);
        match m.header.proc_ {
            proc::NODE_DEVICE_EVENT_LIFECYCLE => {
                let e = r::LifecycleEventMsg::decode(d).unwrap();
                return Some(match e.event {
                    2 => Ev::Defined(e.dev.name),
                    3 => Ev::Undefined(e.dev.name),
                    x => Ev::Other(376, x, e.dev.name),
                });
            }
            proc::NODE_DEVICE_EVENT_UPDATE => {
                let e = r::UpdateEventMsg::decode(d).unwrap();
                return Some(Ev::Other(377, 0, e.dev.name));
            }
            _ => continue,
        }
    }
}

fn mdev_names(c: &mut Client) -> Vec<String> {
    // The tree's own running mdevs are not ours to count.
    device_names(c)
        .into_iter()
        .filter(|n| n.starts_with("mdev_c4a5e000_"))
        .collect()
}

/// What the daemon shows of the device's configuration, as a [`Conf`].
fn shown(c: &mut Client) -> Conf {
    let xml: r::StringRet = c
        .call(
            proc::NODE_DEVICE_GET_XML_DESC,
            &r::NameFlagsArgs {
                name: NAME.into(),
                flags: 0,
            },
        )
        .unwrap();
    let auto: r::IntRet = c
        .call(
            proc::NODE_DEVICE_GET_AUTOSTART,
            &r::NameArgs { name: NAME.into() },
        )
        .unwrap();
    let xml = xml.value;
    let type_id = ["nvidia-222", "nvidia-223"]
        .into_iter()
        .find(|t| xml.contains(&format!("<type id='{t}'/>")))
        .unwrap_or_else(|| panic!("unexpected type in {xml}"));
    let x = ["1", "2"]
        .into_iter()
        .find(|v| xml.contains(&format!("<attr name='x' value='{v}'/>")))
        .unwrap_or_else(|| panic!("unexpected attribute in {xml}"));
    Conf {
        type_id,
        autostart: auto.value != 0,
        x,
    }
}

/// The parent's store directory: the definition files (name, text) and the other files.
fn store(root: &Path) -> (Vec<(String, String)>, Vec<String>) {
    let (mut defs, mut others) = (Vec::new(), Vec::new());
    let dir = root.join("etc/mdevctl.d").join(PARENT_ADDR);
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let n = e.file_name().to_string_lossy().into_owned();
        if n.starts_with('.') {
            others.push(n);
        } else {
            defs.push((n, std::fs::read_to_string(e.path()).unwrap()));
        }
    }
    (defs, others)
}

/// The stored configuration of the device, checked to be exactly one of `old` / `new`.
fn stored(root: &Path, old: &Option<Conf>, new: &Option<Conf>, case: &str) -> Option<Conf> {
    let (defs, _) = store(root);
    assert!(
        defs.iter().all(|(n, _)| n == UUID),
        "{case}: strangers in the store: {defs:?}"
    );
    let text = defs.first().map(|(_, t)| t.as_str());
    let same = |c: &Option<Conf>| c.as_ref().map(Conf::json).as_deref() == text;
    assert!(
        same(old) || same(new),
        "{case}: the store holds neither the old nor the new definition: {text:?}"
    );
    if same(new) {
        new.clone()
    } else {
        old.clone()
    }
}

/// One store case: the daemon is killed at `point` (its `nth` hit) during `op`.
fn store_case(op: Op, point: &str, nth: u32, committed: bool) {
    let case = format!("{op:?} killed at {point}:{nth}");
    let tmp = tempfile::tempdir().unwrap();
    let tree = fc_mdev_s390_tree(tmp.path());
    let root = tree.root().to_path_buf();
    let (old, new) = (op.before(), op.after());
    if let Some(c) = &old {
        let dir = root.join("etc/mdevctl.d").join(PARENT_ADDR);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join(UUID), c.json()).unwrap();
    }
    let marker = tmp.path().join("fault-marker");
    let spec = format!("{point}:{nth}");
    let mut d = Daemon::start_env(
        Some(&root),
        "",
        false,
        &[
            ("VIRTNODEDEVD_FAULT", Path::new(&spec)),
            ("VIRTNODEDEVD_FAULT_MARKER", &marker),
        ],
    );
    let mut events = d.subscriber();
    let mut actor = d.open_client();
    let before = mdev_names(&mut actor);
    assert_eq!(before.is_empty(), old.is_none(), "{case}: {before:?}");

    // The kill: no reply, the marker names the point, the status is SIGKILL.
    let r = op.run(&mut actor);
    assert!(
        matches!(r, Err(CallError::Io(_))),
        "{case}: the call was answered: {r:?}\n{}",
        d.log()
    );
    let status = d.stop();
    assert_eq!(status.signal(), Some(9), "{case}: {status:?}\n{}", d.log());
    assert_eq!(
        std::fs::read_to_string(&marker).ok().as_deref(),
        Some(point),
        "{case}: the kill did not land at the point"
    );
    // Nothing was reported for the interrupted operation.
    let seen: Vec<Ev> = std::iter::from_fn(|| next_event(&mut events)).collect();
    assert_eq!(seen, vec![], "{case}: events before the kill");

    // The store: exactly old or new, by whether the kill came after the commit.
    let want = if committed { &new } else { &old };
    let on_disk = stored(&root, &old, &new, &case);
    assert_eq!(&on_disk, want, "{case}");
    let (_, strays) = store(&root);
    if matches!(point, "store-created" | "store-written" | "store-fsynced") {
        assert_eq!(
            strays.len(),
            1,
            "{case}: the interrupted write's temporary file"
        );
    }

    // The restart: the temporary is gone, the listing is the store, no event.
    let d = Daemon::start(Some(&root), "");
    let (_, strays) = store(&root);
    assert_eq!(strays, Vec::<String>::new(), "{case}: stray files remain");
    assert_eq!(stored(&root, &old, &new, &case), on_disk, "{case}");
    let mut events = d.subscriber();
    let mut c = d.open_client();
    let listed = mdev_names(&mut c);
    match &on_disk {
        Some(conf) => {
            assert_eq!(listed, vec![NAME.to_owned()], "{case}");
            assert_eq!(&shown(&mut c), conf, "{case}");
        }
        None => assert_eq!(listed, Vec::<String>::new(), "{case}"),
    }
    // The next change, the first event the reconnected client sees: undefine what is
    // defined, define what is not; exactly one event, and the store follows.
    let follow = if on_disk.is_some() {
        let _: () = c
            .call(
                proc::NODE_DEVICE_UNDEFINE,
                &r::NameFlagsArgs {
                    name: NAME.into(),
                    flags: 0,
                },
            )
            .unwrap();
        Ev::Undefined(NAME.into())
    } else {
        Op::Define.run(&mut c).unwrap();
        Ev::Defined(NAME.into())
    };
    assert_eq!(next_event(&mut events), Some(follow), "{case}");
    let (defs, _) = store(&root);
    let want: Vec<(String, String)> = match on_disk {
        Some(_) => Vec::new(),
        None => vec![(UUID.to_owned(), OLD.json())],
    };
    assert_eq!(defs, want, "{case}");
    assert_eq!(mdev_names(&mut c).is_empty(), want.is_empty(), "{case}");
    // Exactly one: a further, unrelated event comes next, not a second copy.
    events_after_marker(&d, &mut events, &case);
}

/// Defines and undefines a second device; the next two events must be exactly those.
fn events_after_marker(d: &Daemon, events: &mut Client, case: &str) {
    let other = "c4a5e000-0000-4000-8000-00000000000a";
    let other_name = "mdev_c4a5e000_0000_4000_8000_00000000000a_0000_af_00_0";
    let mut c = d.open_client();
    let _: r::NodeDeviceRet = c
        .call(
            proc::NODE_DEVICE_DEFINE_XML,
            &r::XmlFlagsArgs {
                xml_desc: format!(
                    "<device><parent>{GPU}</parent><capability type='mdev'>\
                     <type id='nvidia-222'/><uuid>{other}</uuid></capability></device>"
                ),
                flags: 0,
            },
        )
        .unwrap();
    let _: () = c
        .call(
            proc::NODE_DEVICE_UNDEFINE,
            &r::NameFlagsArgs {
                name: other_name.into(),
                flags: 0,
            },
        )
        .unwrap();
    assert_eq!(
        (next_event(events), next_event(events)),
        (
            Some(Ev::Defined(other_name.into())),
            Some(Ev::Undefined(other_name.into()))
        ),
        "{case}"
    );
}

#[test]
fn store_writes_survive_a_kill_at_every_step() {
    if !hook_built() {
        return;
    }
    let mut ran = Vec::new();
    for op in [
        Op::Define,
        Op::Redefine,
        Op::Undefine,
        Op::Autostart,
        Op::UpdateConfig,
    ] {
        for (point, nth, committed) in op.points() {
            store_case(op, point, nth, committed);
            ran.push(format!("{op:?}@{point}:{nth}"));
        }
    }
    eprintln!("{} cases: {}", ran.len(), ran.join(" "));
    assert_eq!(ran.len(), 24);
}

// ----------------------------------------------------------------------------------------
// The pid file, written before the daemon serves: started by hand, not through `Daemon`.

fn spawn(dir: &Path, root: &Path, fault: Option<&str>) -> Child {
    let conf = dir.join("virtnodedevd.conf");
    std::fs::write(
        &conf,
        format!(
            "unix_sock_dir = \"{}\"\nauth_unix_rw = \"none\"\nauth_unix_ro = \"none\"\n",
            dir.display()
        ),
    )
    .unwrap();
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.join("daemon.log"))
        .unwrap();
    let mut cmd = Command::new(BIN);
    cmd.arg("-f")
        .arg(&conf)
        .arg("-p")
        .arg(dir.join("virtnodedevd.pid"))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::from(log))
        .env("VIRTNODEDEVD_HOST_ROOT", root)
        .env_remove("VIRTNODEDEVD_UEVENT_SOCKET")
        .env_remove("VIRTNODEDEVD_MDEVCTL")
        .env("VIRTNODEDEVD_FAULT_MARKER", dir.join("fault-marker"));
    match fault {
        Some(f) => cmd.env("VIRTNODEDEVD_FAULT", f),
        None => cmd.env_remove("VIRTNODEDEVD_FAULT"),
    };
    cmd.spawn().expect("start virtnodedevd")
}

/// Waits until the daemon serves on its socket.
fn serving(dir: &Path, child: &mut Child) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while std::os::unix::net::UnixStream::connect(dir.join("virtnodedevd-sock")).is_err() {
        let log = || std::fs::read_to_string(dir.join("daemon.log")).unwrap_or_default();
        assert!(
            child.try_wait().unwrap().is_none(),
            "the daemon exited: {}",
            log()
        );
        assert!(
            Instant::now() < deadline,
            "the daemon did not start: {}",
            log()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn signal(child: &Child, sig: nix::sys::signal::Signal) {
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(child.id() as i32), sig).unwrap();
}

/// The files of the pid file's directory that are not sockets, logs or config.
fn pid_dir_files(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains(".pid"))
        .collect();
    v.sort();
    v
}

fn pid_case(point: &str, stale: bool) {
    let case = format!("pid file, killed at {point}, stale file: {stale}");
    let tmp = tempfile::tempdir().unwrap();
    let tree = fc_mdev_s390_tree(tmp.path());
    let run = tempfile::Builder::new()
        .prefix("vnd-crash")
        .tempdir()
        .unwrap();
    let dir = run.path().to_path_buf();
    let pid_file = dir.join("virtnodedevd.pid");
    // A daemon killed while running leaves its complete pid file behind.
    let old = stale.then(|| {
        let mut first = spawn(&dir, tree.root(), None);
        serving(&dir, &mut first);
        signal(&first, nix::sys::signal::Signal::SIGKILL);
        first.wait().unwrap();
        let text = std::fs::read_to_string(&pid_file).unwrap();
        assert_eq!(text, first.id().to_string(), "{case}");
        text
    });

    let mut killed = spawn(&dir, tree.root(), Some(point));
    let status = killed.wait().unwrap();
    let log = std::fs::read_to_string(dir.join("daemon.log")).unwrap_or_default();
    assert_eq!(status.signal(), Some(9), "{case}: {status:?}\n{log}");
    assert_eq!(
        std::fs::read_to_string(dir.join("fault-marker"))
            .ok()
            .as_deref(),
        Some(point),
        "{case}: the kill did not land at the point"
    );
    std::fs::remove_file(dir.join("fault-marker")).unwrap();
    // No pid file or a complete one: the stale daemon's before the rename, the killed
    // one's from then on.
    let mine = killed.id().to_string();
    let text = std::fs::read_to_string(&pid_file).ok();
    let committed = matches!(point, "pid-renamed" | "pid-dir-fsynced");
    let want = if committed { Some(mine) } else { old };
    assert_eq!(text, want, "{case}");

    // The next start succeeds, writes its own pid, and leaves no temporary file.
    let mut next = spawn(&dir, tree.root(), None);
    serving(&dir, &mut next);
    assert_eq!(
        std::fs::read_to_string(&pid_file).unwrap(),
        next.id().to_string(),
        "{case}"
    );
    assert_eq!(
        pid_dir_files(&dir),
        vec!["virtnodedevd.pid".to_owned()],
        "{case}"
    );
    signal(&next, nix::sys::signal::Signal::SIGTERM);
    assert!(next.wait().unwrap().success(), "{case}");
    assert!(
        !pid_file.exists(),
        "{case}: a clean stop removes the pid file"
    );
}

#[test]
fn pid_file_survives_a_kill_at_every_step() {
    if !hook_built() {
        return;
    }
    let mut n = 0;
    for stale in [false, true] {
        for point in [
            "pid-created",
            "pid-written",
            "pid-fsynced",
            "pid-renamed",
            "pid-dir-fsynced",
        ] {
            pid_case(point, stale);
            n += 1;
        }
    }
    assert_eq!(n, 10);
}
