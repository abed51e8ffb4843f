//! `nodedev-bench soak`: minutes of mixed load against a running daemon over a fake tree,
//! with one table row of errors, events and the daemon's resources per interval
//! (bench/soak starts the daemon and calls this).
//!
//! The load, each part in its own threads until the time is up:
//! - sweeps: clients with their own connection listing every device and fetching the XML
//!   of each, in a loop; at a lower rate the same through `virsh` and libvirt-python;
//! - event subscribers: our client (lifecycle + update) and `virsh nodedev-event --event
//!   lifecycle --loop` (virsh 9.0 watches one event type), which must receive every
//!   DEFINED/UNDEFINED (and CREATED/DELETED) the load causes, exactly once;
//! - churn: define and undefine persistent mdevs on a fake mdev-capable parent;
//! - hostile clients: random, truncated, oversized and mutated frames on the read-write,
//!   read-only and admin sockets ([`bench::hostile`]), and XML bombs (deep nesting,
//!   over-long names) unless switched off;
//! - uevents: virtual interfaces added to and removed from the fake tree, announced on the
//!   daemon's injected-uevent socket.
//!
//! An error is an unexpected error answer, a call left unanswered, a wrong answer or a
//! missing or duplicated event; a refusal of a hostile call is the expected answer.

use std::collections::VecDeque;
use std::io::{BufRead, BufReader};
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use bench::hostile::{self, Rng};
use protocol::remote::{self as r, proc};
use rpc::client::{CallError, Client};
use xdr::{Decoder, Xdr};

use crate::measure::{list_all, open};
use crate::procfs;

/// Node devices the load creates and removes; sweeps may find them gone between listing
/// and fetching, which is not an error.
const CHURN_UUID_PREFIX: &str = "50a50a50";
const CHURN_NAME_PREFIX: &str = "mdev_50a50a50_";
const UEVENT_IF_PREFIX: &str = "vndsoak";
const UEVENT_NAME_PREFIX: &str = "net_vndsoak";
/// Persistent mdevs kept defined at once by the churn.
const CHURN_WINDOW: usize = 8;
/// Pause of each hostile thread between two connections.
const HOSTILE_PAUSE: Duration = Duration::from_millis(5);
/// Error messages printed per kind of load (the rest are only counted).
const MESSAGES_PER_KIND: u64 = 5;

fn volatile(name: &str) -> bool {
    name.starts_with(CHURN_NAME_PREFIX) || name.starts_with(UEVENT_NAME_PREFIX)
}

#[derive(Clone, Debug)]
pub struct Options {
    pub socket: PathBuf,
    pub ro_socket: PathBuf,
    pub admin_socket: PathBuf,
    pub pid_file: PathBuf,
    /// The fake host root the daemon reads (for the uevent load).
    pub root: Option<PathBuf>,
    /// The daemon's injected-uevent socket (VIRTNODEDEVD_UEVENT_SOCKET).
    pub uevent_socket: Option<PathBuf>,
    pub duration: Duration,
    pub interval: Duration,
    pub sweepers: usize,
    pub hostile: usize,
    pub real_clients: bool,
    /// Seconds between two rounds of virsh + python sweeps.
    pub real_every: Duration,
    pub xml_bombs: bool,
    /// The mdev-capable parent (a node-device name) and the type to define on it.
    pub mdev_parent: Option<String>,
    pub mdev_type: String,
    /// Defines per second (each followed, CHURN_WINDOW later, by an undefine).
    pub churn_rate: f64,
    pub seed: u64,
}

/// The kinds of load, each with its own call and error counters.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Sweep,
    Real,
    Churn,
    Event,
    Hostile,
    Bomb,
    Uevent,
}

const KINDS: [Kind; 7] = [
    Kind::Sweep,
    Kind::Real,
    Kind::Churn,
    Kind::Event,
    Kind::Hostile,
    Kind::Bomb,
    Kind::Uevent,
];

impl Kind {
    fn label(self) -> &'static str {
        match self {
            Kind::Sweep => "sweep",
            Kind::Real => "real",
            Kind::Churn => "churn",
            Kind::Event => "event",
            Kind::Hostile => "host",
            Kind::Bomb => "bomb",
            Kind::Uevent => "uev",
        }
    }
}

/// Lifecycle events of the volatile devices, by libvirt's event number (CREATED, DELETED,
/// DEFINED, UNDEFINED).
#[derive(Default)]
struct EventCounts([AtomicU64; 4]);

impl EventCounts {
    fn add(&self, event: i32) {
        if let Some(c) = self.0.get(event as usize) {
            c.fetch_add(1, Relaxed);
        }
    }
    fn get(&self) -> [u64; 4] {
        [0, 1, 2, 3].map(|i| self.0[i].load(Relaxed))
    }
    fn total(&self) -> u64 {
        self.get().iter().sum()
    }
}

#[derive(Default)]
struct Stats {
    calls: [AtomicU64; 7],
    errors: [AtomicU64; 7],
    /// What the load caused, and what each subscriber received.
    expected: EventCounts,
    ours: EventCounts,
    virsh: EventCounts,
    hostile: hostile::Counters,
    log: Mutex<()>,
    daemon_dead: AtomicBool,
    /// The XML bomb in flight or last answered, to name a likely killer.
    last_bomb: Mutex<String>,
}

impl Stats {
    fn call(&self, k: Kind, n: u64) {
        self.calls[k as usize].fetch_add(n, Relaxed);
    }
    fn error(&self, k: Kind, msg: impl std::fmt::Display) {
        let n = self.errors[k as usize].fetch_add(1, Relaxed);
        // Once the daemon is dead every thread fails; the first messages tell why.
        if self.daemon_dead.load(Relaxed) {
            return;
        }
        if n < MESSAGES_PER_KIND {
            let _g = self.log.lock();
            eprintln!("soak: {} error: {msg}", k.label());
        } else if n == MESSAGES_PER_KIND {
            eprintln!("soak: {} error: (further ones only counted)", k.label());
        }
    }
    fn errors(&self, k: Kind) -> u64 {
        self.errors[k as usize].load(Relaxed)
    }
    fn total_calls(&self) -> u64 {
        self.calls.iter().map(|c| c.load(Relaxed)).sum()
    }
    fn total_errors(&self) -> u64 {
        self.errors.iter().map(|c| c.load(Relaxed)).sum()
    }
}

struct Shared {
    o: Options,
    stats: Stats,
    stop: AtomicBool,
}

impl Shared {
    fn stopping(&self) -> bool {
        self.stop.load(Relaxed)
    }
    /// Sleeps up to `d`, waking early when the load stops.
    fn pause(&self, d: Duration) {
        let end = Instant::now() + d;
        while !self.stopping() && Instant::now() < end {
            std::thread::sleep(Duration::from_millis(50).min(end - Instant::now()));
        }
    }
    fn uri(&self) -> String {
        format!("nodedev+unix:///system?socket={}", self.o.socket.display())
    }
}

/// One sample of the daemon's resources.
#[derive(Clone, Copy, Default)]
struct Sample {
    rss_kib: u64,
    fds: u64,
    threads: u64,
    cpu_s: f64,
}

fn sample(pid: u32) -> Option<Sample> {
    Some(Sample {
        rss_kib: procfs::status_kib(pid, "VmRSS")?,
        fds: std::fs::read_dir(format!("/proc/{pid}/fd")).ok()?.count() as u64,
        threads: procfs::threads(pid)?,
        cpu_s: procfs::cpu_time(pid)?.as_secs_f64(),
    })
}

/// Running, not a zombie.
fn alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| s.rfind(')').map(|i| s[i + 1..].trim_start().to_owned()))
        .is_some_and(|rest| !rest.starts_with('Z') && !rest.starts_with('X'))
}

fn read_pid(f: &Path) -> Result<u32, String> {
    std::fs::read_to_string(f)
        .map_err(|e| format!("{}: {e}", f.display()))?
        .trim()
        .parse()
        .map_err(|_| format!("{}: no pid", f.display()))
}

// ----------------------------------------------------------------------------------------
// The load.

fn xml_desc(c: &mut Client, name: &str) -> Result<String, CallError> {
    let x: r::StringRet = c.call(
        proc::NODE_DEVICE_GET_XML_DESC,
        &r::NameFlagsArgs {
            name: name.into(),
            flags: 0,
        },
    )?;
    Ok(x.value)
}

fn sweeper(s: &Shared) {
    let mut conn: Option<Client> = None;
    while !s.stopping() {
        let c = match conn.as_mut() {
            Some(c) => c,
            None => match open(&s.o.socket, Duration::from_secs(60)) {
                Ok(c) => conn.insert(c),
                Err(e) => {
                    s.stats.error(Kind::Sweep, e);
                    s.pause(Duration::from_secs(1));
                    continue;
                }
            },
        };
        let names = match list_all(c) {
            Ok(n) => n,
            Err(e) => {
                s.stats.error(Kind::Sweep, format!("LIST_ALL: {e}"));
                conn = None;
                continue;
            }
        };
        s.stats.call(Kind::Sweep, 1);
        for n in &names {
            if s.stopping() {
                break;
            }
            match xml_desc(c, n) {
                Ok(x) if x.starts_with("<device>") => s.stats.call(Kind::Sweep, 1),
                Ok(x) => s.stats.error(Kind::Sweep, format!("XML of {n}: {x:.80}")),
                Err(CallError::Remote(_)) if volatile(n) => s.stats.call(Kind::Sweep, 1),
                Err(CallError::Remote(e)) => s
                    .stats
                    .error(Kind::Sweep, format!("XML of {n}: {}", e.message)),
                Err(e) => {
                    s.stats.error(Kind::Sweep, format!("XML of {n}: {e}"));
                    conn = None;
                    break;
                }
            }
        }
    }
}

fn output(cmd: &mut Command) -> Result<std::process::Output, String> {
    cmd.stdin(Stdio::null())
        .output()
        .map_err(|e| format!("cannot run {cmd:?}: {e}"))
}

/// virsh under coreutils' `timeout`: a hung daemon must not hang the soak.
fn virsh(s: &Shared, args: &[&str]) -> Command {
    let mut c = Command::new("timeout");
    c.args(["300", "virsh", "-q", "-c", &s.uri()]).args(args);
    c
}

/// Runs virsh commands read from its standard input (a command line could not hold a
/// few thousand); returns stdout and stderr. virsh goes on after a failed command and
/// then reports it only on stderr.
fn virsh_script(s: &Shared, script: String) -> Result<(String, String), String> {
    let mut child = virsh(s, &[])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot run virsh: {e}"))?;
    let mut stdin = child.stdin.take().expect("piped");
    // Written from another thread: virsh answers while it reads, and its output would
    // fill the pipe before all the commands are written.
    let writer = std::thread::spawn(move || {
        use std::io::Write;
        let _ = stdin.write_all(script.as_bytes());
    });
    let o = child
        .wait_with_output()
        .map_err(|e| format!("virsh: {e}"))?;
    let _ = writer.join();
    if !o.status.success() {
        return Err(format!(
            "virsh exited with {}: {:.300}",
            o.status,
            String::from_utf8_lossy(&o.stderr).trim()
        ));
    }
    Ok((
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    ))
}

/// libvirt-python's sweep: every device's XML; a device of the load may vanish.
const PY_SWEEP: &str = r#"
import os, sys, libvirt
volatile = tuple(os.environ["VOLATILE"].split(","))
conn = libvirt.open(os.environ["URI"])
n = 0
for d in conn.listAllDevices(0):
    try:
        if not d.XMLDesc(0).startswith("<device>"):
            sys.exit("bad XML for " + d.name())
        n += 1
    except libvirt.libvirtError as e:
        if not d.name().startswith(volatile):
            sys.exit("%s: %s" % (d.name(), e))
print(n)
"#;

/// One sweep through virsh (one process running every `nodedev-dumpxml`) and one through
/// libvirt-python, then a pause.
fn real_clients(s: &Shared) {
    while !s.stopping() {
        let list = output(&mut virsh(s, &["nodedev-list", "--all"]));
        match list {
            Ok(o) if o.status.success() => {
                let names: Vec<String> = String::from_utf8_lossy(&o.stdout)
                    .lines()
                    .map(str::trim)
                    .filter(|n| !n.is_empty() && !volatile(n))
                    .map(str::to_owned)
                    .collect();
                s.stats.call(Kind::Real, 1);
                let script: String = names
                    .iter()
                    .map(|n| format!("nodedev-dumpxml {n}\n"))
                    .collect();
                match virsh_script(s, script) {
                    Ok((out, err)) => {
                        let got = out.matches("<device>").count();
                        if got == names.len() && err.trim().is_empty() {
                            s.stats.call(Kind::Real, got as u64);
                        } else {
                            s.stats.error(
                                Kind::Real,
                                format!(
                                    "virsh dumped {got} of {} devices: {:.300}",
                                    names.len(),
                                    err.trim()
                                ),
                            );
                        }
                    }
                    Err(e) => s.stats.error(Kind::Real, e),
                }
            }
            Ok(o) => s.stats.error(
                Kind::Real,
                format!(
                    "virsh nodedev-list: {}",
                    String::from_utf8_lossy(&o.stderr).trim()
                ),
            ),
            Err(e) => s.stats.error(Kind::Real, e),
        }
        if s.stopping() {
            break;
        }
        let py = output(
            Command::new("timeout")
                .args(["300", "/usr/bin/python3", "-c", PY_SWEEP])
                .env("URI", s.uri())
                .env(
                    "VOLATILE",
                    format!("{CHURN_NAME_PREFIX},{UEVENT_NAME_PREFIX}"),
                ),
        );
        match py {
            Ok(o) if o.status.success() => {
                let n: u64 = String::from_utf8_lossy(&o.stdout)
                    .trim()
                    .parse()
                    .unwrap_or(0);
                s.stats.call(Kind::Real, n + 1);
            }
            Ok(o) => s.stats.error(
                Kind::Real,
                format!("python: {}", String::from_utf8_lossy(&o.stderr).trim()),
            ),
            Err(e) => s.stats.error(Kind::Real, e),
        }
        s.pause(s.o.real_every);
    }
}

/// Our subscriber: registered for lifecycle and update events of every device.
fn subscribe(o: &Options) -> Result<Client, String> {
    let mut c = open(&o.socket, Duration::from_secs(60))?;
    for id in [0, 1] {
        let _: r::IntRet = c
            .call(
                proc::CONNECT_NODE_DEVICE_EVENT_REGISTER_ANY,
                &r::EventRegisterAnyArgs {
                    event_id: id,
                    dev: None,
                },
            )
            .map_err(|e| format!("EVENT_REGISTER_ANY {id}: {e}"))?;
    }
    // Events may be minutes apart; the main thread ends the wait by shutting the socket.
    c.stream()
        .set_read_timeout(None)
        .map_err(|e| e.to_string())?;
    Ok(c)
}

fn our_events(s: &Shared, mut c: Client) {
    loop {
        let m = match c.read_message() {
            Ok(m) => m,
            Err(e) => {
                if !s.stopping() {
                    s.stats.error(
                        Kind::Event,
                        format!("our subscriber lost its connection: {e}"),
                    );
                }
                return;
            }
        };
        let d = &mut Decoder::new(&m.payload);
        // Every event received counts as a call of this kind of load.
        s.stats.call(Kind::Event, 1);
        match m.header.proc_ {
            proc::NODE_DEVICE_EVENT_LIFECYCLE => match r::LifecycleEventMsg::decode(d) {
                Ok(e) if volatile(&e.dev.name) => s.stats.ours.add(e.event),
                Ok(_) => {}
                Err(_) => s.stats.error(Kind::Event, "undecodable lifecycle event"),
            },
            proc::NODE_DEVICE_EVENT_UPDATE if r::UpdateEventMsg::decode(d).is_err() => {
                s.stats.error(Kind::Event, "undecodable update event")
            }
            _ => {}
        }
    }
}

const VIRSH_EVENTS: [&str; 4] = ["Created", "Deleted", "Defined", "Undefined"];

/// `virsh nodedev-event --event lifecycle --loop`, its lines counted as they come.
fn virsh_events(s: Arc<Shared>) -> Result<(Child, JoinHandle<()>), String> {
    let mut child = Command::new("stdbuf")
        .args([
            "-oL",
            "virsh",
            "-c",
            &s.uri(),
            "nodedev-event",
            "--event",
            "lifecycle",
            "--loop",
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| format!("cannot run virsh nodedev-event: {e}"))?;
    let out = child.stdout.take().expect("piped");
    let t = std::thread::spawn(move || {
        for line in BufReader::new(out).lines() {
            let Ok(line) = line else { break };
            // event 'lifecycle' for node device NAME: Defined
            let Some(rest) = line.strip_prefix("event 'lifecycle' for node device ") else {
                continue;
            };
            let Some((name, ev)) = rest.rsplit_once(": ") else {
                continue;
            };
            if volatile(name) {
                match VIRSH_EVENTS.iter().position(|e| *e == ev) {
                    Some(i) => s.stats.virsh.add(i as i32),
                    None => s
                        .stats
                        .error(Kind::Event, format!("virsh printed {line:?}")),
                }
            }
        }
        if !s.stopping() {
            s.stats.error(Kind::Event, "virsh nodedev-event ended");
        }
    });
    Ok((child, t))
}

fn churn_uuid(i: u64) -> String {
    format!(
        "{CHURN_UUID_PREFIX}-{:04x}-4000-8000-{:012x}",
        (i >> 48) & 0xffff,
        i & 0xffff_ffff_ffff
    )
}

/// Defines persistent mdevs and undefines them, CHURN_WINDOW defined at any time.
struct Churn {
    c: Option<Client>,
    next: u64,
    defined: VecDeque<String>,
}

impl Churn {
    /// A call on the churn's connection, reopened after a transport error.
    fn call<A: Xdr, R: Xdr>(&mut self, s: &Shared, p: i32, args: &A) -> Result<R, String> {
        let c = match self.c {
            Some(ref mut c) => c,
            None => self.c.insert(open(&s.o.socket, Duration::from_secs(60))?),
        };
        c.call(p, args).map_err(|e| {
            if !matches!(e, CallError::Remote(_)) {
                self.c = None;
            }
            e.to_string()
        })
    }

    fn define(&mut self, s: &Shared, parent: &str) {
        let uuid = churn_uuid(self.next);
        self.next += 1;
        let xml = format!(
            "<device><parent>{parent}</parent><capability type='mdev'><type id='{}'/>\
             <uuid>{uuid}</uuid><attr name='soak' value='{}'/></capability></device>",
            s.o.mdev_type, self.next
        );
        let r: Result<r::NodeDeviceRet, String> = self
            .call(
                s,
                proc::NODE_DEVICE_DEFINE_XML,
                &r::XmlFlagsArgs {
                    xml_desc: xml,
                    flags: 0,
                },
            )
            .map_err(|e| format!("define {uuid}: {e}"));
        s.stats.call(Kind::Churn, 1);
        match r {
            Ok(d) if d.dev.name.starts_with(CHURN_NAME_PREFIX) => {
                s.stats.expected.add(2);
                self.defined.push_back(d.dev.name);
            }
            Ok(d) => s
                .stats
                .error(Kind::Churn, format!("define named it {}", d.dev.name)),
            Err(e) => s.stats.error(Kind::Churn, e),
        }
    }

    fn undefine_oldest(&mut self, s: &Shared) {
        let Some(name) = self.defined.pop_front() else {
            return;
        };
        let r: Result<(), String> = self
            .call(
                s,
                proc::NODE_DEVICE_UNDEFINE,
                &r::NameFlagsArgs {
                    name: name.clone(),
                    flags: 0,
                },
            )
            .map_err(|e| format!("undefine {name}: {e}"));
        s.stats.call(Kind::Churn, 1);
        match r {
            Ok(()) => s.stats.expected.add(3),
            Err(e) => s.stats.error(Kind::Churn, e),
        }
    }
}

fn churn(s: &Shared, parent: &str, mut ch: Churn) {
    let period = Duration::from_secs_f64(1.0 / s.o.churn_rate.max(0.01));
    let mut next = Instant::now();
    while !s.stopping() {
        ch.define(s, parent);
        while ch.defined.len() > CHURN_WINDOW {
            ch.undefine_oldest(s);
        }
        next += period;
        let now = Instant::now();
        if next > now {
            s.pause(next - now);
        } else {
            next = now;
        }
    }
    while !ch.defined.is_empty() {
        ch.undefine_oldest(s);
    }
}

/// Virtual interfaces `vndsoakN` added to the fake tree and announced, then removed and
/// announced: one CREATED and one DELETED each.
fn uevents(s: &Shared, root: &Path, sock: &Path) {
    let f = match fakesys::FakeSys::new(root) {
        Ok(f) => f,
        Err(e) => {
            return s
                .stats
                .error(Kind::Uevent, format!("{}: {e}", root.display()))
        }
    };
    let tx = match UnixDatagram::unbound() {
        Ok(t) => t,
        Err(e) => return s.stats.error(Kind::Uevent, e),
    };
    let send = |action: &str, devpath: &str| {
        let devpath = devpath.strip_prefix("/sys").unwrap_or(devpath);
        let msg = format!(
            "{action}@{devpath}\0ACTION={action}\0DEVPATH={devpath}\0SUBSYSTEM=net\0SEQNUM=1\0"
        );
        tx.send_to(msg.as_bytes(), sock).map(|_| ())
    };
    let mut i = 0u32;
    while !s.stopping() {
        let name = format!("{UEVENT_IF_PREFIX}{i}");
        let spec = fakesys::NetSpec::new(
            &name,
            100_000 + i,
            &format!("52:54:00:5a:{:02x}:{:02x}", i >> 8 & 0xff, i & 0xff),
        );
        let r = f
            .net(None, &spec)
            .map_err(|e| e.to_string())
            .and_then(|dev| {
                send("add", &dev).map_err(|e| format!("add {name}: {e}"))?;
                s.stats.expected.add(0);
                s.stats.call(Kind::Uevent, 1);
                s.pause(Duration::from_millis(500));
                std::fs::remove_file(f.path(&format!("/sys/class/net/{name}")))
                    .and_then(|()| std::fs::remove_dir_all(f.path(&dev)))
                    .map_err(|e| format!("remove {name}: {e}"))?;
                send("remove", &dev).map_err(|e| format!("remove {name}: {e}"))?;
                s.stats.expected.add(1);
                s.stats.call(Kind::Uevent, 1);
                Ok(())
            });
        if let Err(e) = r {
            s.stats.error(Kind::Uevent, e);
        }
        i += 1;
        s.pause(Duration::from_millis(1500));
    }
}

/// Hostile thread `t`: the read-write socket, the read-only one, the admin one, and then
/// the read-write one again.
fn hostile_thread(s: &Shared, t: usize) {
    let mut rng = Rng(Rng::seed(s.o.seed, t as u64));
    let valid = hostile::valid_remote_calls();
    let n = &s.stats.hostile;
    while !s.stopping() {
        let before = n.frames.load(Relaxed);
        let r = match t % 3 {
            2 => hostile::admin_abuse(&mut rng, &s.o.admin_socket, n),
            1 => hostile::remote_abuse(&mut rng, &s.o.ro_socket, &valid, n),
            _ => hostile::remote_abuse(&mut rng, &s.o.socket, &valid, n),
        };
        s.stats
            .call(Kind::Hostile, n.frames.load(Relaxed).saturating_sub(before));
        if let Err(e) = r {
            s.stats.error(Kind::Hostile, e);
            s.pause(Duration::from_millis(500));
        }
        // A breath between connections: enough abuse to matter, not so much that the
        // rest of the load starves on a small machine.
        s.pause(HOSTILE_PAUSE);
    }
}

/// One XML bomb a second, through CREATE_XML and DEFINE_XML in turn.
fn bombs(s: &Shared) {
    let bombs = hostile::xml_bombs();
    let mut c: Option<Client> = None;
    let mut i = 0usize;
    while !s.stopping() {
        let (label, xml) = &bombs[i % bombs.len()];
        let define = (i / bombs.len()) % 2 == 1;
        i += 1;
        let conn = match c.as_mut() {
            Some(c) => c,
            None => match open(&s.o.socket, Duration::from_secs(60)) {
                Ok(x) => c.insert(x),
                Err(e) => {
                    s.stats.error(Kind::Bomb, e);
                    s.pause(Duration::from_secs(1));
                    continue;
                }
            },
        };
        s.stats.call(Kind::Bomb, 1);
        *s.stats.last_bomb.lock().unwrap_or_else(|e| e.into_inner()) = format!(
            "{label} ({} bytes) through {}",
            xml.len(),
            if define { "DEFINE_XML" } else { "CREATE_XML" },
        );
        if let Err(e) = hostile::send_bomb(conn, define, label, xml) {
            s.stats.error(Kind::Bomb, e);
            c = None;
        }
        s.pause(Duration::from_secs(1));
    }
}

// ----------------------------------------------------------------------------------------
// The report.

fn header() -> String {
    let mut h = format!("{:>8} {:>10}  errors:", "elapsed", "calls");
    for k in KINDS {
        h.push_str(&format!(" {:>5}", k.label()));
    }
    h.push_str(&format!(
        "  {:>8} {:>8} {:>8}  {:>8} {:>5} {:>4} {:>8}",
        "ev.want", "ev.ours", "ev.virsh", "RSS.MiB", "fds", "thr", "cpu.s"
    ));
    h
}

fn row(s: &Shared, elapsed: Duration, smp: Option<Sample>, virsh: bool) -> String {
    let secs = elapsed.as_secs();
    let mut l = format!(
        "{:>5}:{:02} {:>10}         ",
        secs / 60,
        secs % 60,
        s.stats.total_calls()
    );
    for k in KINDS {
        l.push_str(&format!(" {:>5}", s.stats.errors(k)));
    }
    let v = if virsh {
        s.stats.virsh.total().to_string()
    } else {
        "-".into()
    };
    l.push_str(&format!(
        "  {:>8} {:>8} {:>8}",
        s.stats.expected.total(),
        s.stats.ours.total(),
        v
    ));
    match smp {
        Some(m) => l.push_str(&format!(
            "  {:>8.1} {:>5} {:>4} {:>8.2}",
            m.rss_kib as f64 / 1024.0,
            m.fds,
            m.threads,
            m.cpu_s
        )),
        None => l.push_str("  (daemon gone)"),
    }
    l
}

/// Compares what a subscriber received with what the load caused.
fn check_events(s: &Shared, who: &str, got: &EventCounts) {
    let want = s.stats.expected.get();
    let got = got.get();
    for (i, name) in VIRSH_EVENTS.iter().enumerate() {
        if got[i] != want[i] {
            s.stats.error(
                Kind::Event,
                format!("{who}: {} {name} events, expected {}", got[i], want[i]),
            );
        }
    }
}

/// Whether the daemon answers a fresh client, and its device count.
fn answering(o: &Options) -> Result<usize, String> {
    let mut c = open(&o.socket, Duration::from_secs(30))?;
    let t: r::StringRet = c
        .call(proc::CONNECT_GET_TYPE, &())
        .map_err(|e| format!("CONNECT_GET_TYPE: {e}"))?;
    if t.value != "nodedev" {
        return Err(format!("CONNECT_GET_TYPE answered {:?}", t.value));
    }
    list_all(&mut c)
        .map(|n| n.len())
        .map_err(|e| format!("LIST_ALL: {e}"))
}

/// Waits (bounded) until `got` has caught up with the expected events.
fn settle(s: &Shared, got: &EventCounts, limit: Duration) {
    let end = Instant::now() + limit;
    while got.total() < s.stats.expected.total() && Instant::now() < end {
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Our subscriber and `virsh nodedev-event`, and what ends them.
struct Subscribers {
    threads: Vec<JoinHandle<()>>,
    ours: std::os::unix::net::UnixStream,
    virsh: Option<Child>,
}

impl Subscribers {
    fn start(s: &Arc<Shared>) -> Result<Subscribers, String> {
        let sub = subscribe(&s.o)?;
        let ours = sub.stream().try_clone().map_err(|e| e.to_string())?;
        let s2 = s.clone();
        let mut threads = vec![std::thread::spawn(move || our_events(&s2, sub))];
        let mut virsh = None;
        if s.o.real_clients {
            let (child, t) = virsh_events(s.clone())?;
            virsh = Some(child);
            threads.push(t);
        }
        Ok(Subscribers {
            threads,
            ours,
            virsh,
        })
    }

    /// Lets them catch up with what the load caused (bounded), then ends them.
    fn stop(self, s: &Shared, daemon_alive: bool) {
        if daemon_alive {
            settle(s, &s.stats.ours, Duration::from_secs(20));
            if self.virsh.is_some() {
                settle(s, &s.stats.virsh, Duration::from_secs(20));
            }
        }
        let _ = self.ours.shutdown(std::net::Shutdown::Both);
        if let Some(mut c) = self.virsh {
            let _ = c.kill();
            let _ = c.wait();
        }
        for t in self.threads {
            let _ = t.join();
        }
    }
}

/// Defines and undefines an mdev until every subscriber has seen it, so that expected
/// and received count the same events from then on (virsh says nothing once subscribed).
fn probe(s: &Shared, parent: &str, ch: &mut Churn) -> Result<(), String> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        ch.define(s, parent);
        ch.undefine_oldest(s);
        std::thread::sleep(Duration::from_millis(300));
        if s.stats.total_errors() > 0 {
            return Err("the probe define/undefine failed (see above)".into());
        }
        let virsh_ready = !s.o.real_clients || s.stats.virsh.total() > 0;
        if virsh_ready && s.stats.ours.total() > 0 {
            // The probe rounds virsh ran before it subscribed count as seen.
            std::thread::sleep(Duration::from_millis(500));
            let (want, got) = (s.stats.expected.get(), s.stats.virsh.get());
            for i in 0..4 {
                s.stats.virsh.0[i].fetch_add(want[i].saturating_sub(got[i]), Relaxed);
            }
            return Ok(());
        }
        if Instant::now() > deadline {
            return Err("the subscribers saw no event of the probe within 30 s".into());
        }
    }
}

/// One part of the load, run in its own thread.
type Part = Box<dyn FnOnce(&Shared) + Send>;

/// Every part of the load but the subscribers, each in its own thread(s).
fn start_load(s: &Arc<Shared>, ch: Churn) -> Vec<JoinHandle<()>> {
    let o = &s.o;
    let mut parts: Vec<Part> = Vec::new();
    for _ in 0..o.sweepers {
        parts.push(Box::new(sweeper));
    }
    if o.real_clients {
        parts.push(Box::new(real_clients));
    }
    if let Some(parent) = o.mdev_parent.clone() {
        parts.push(Box::new(move |s: &Shared| churn(s, &parent, ch)));
    }
    if let (Some(root), Some(sock)) = (o.root.clone(), o.uevent_socket.clone()) {
        parts.push(Box::new(move |s: &Shared| uevents(s, &root, &sock)));
    }
    for t in 0..o.hostile {
        parts.push(Box::new(move |s: &Shared| hostile_thread(s, t)));
    }
    if o.xml_bombs {
        parts.push(Box::new(bombs));
    }
    parts
        .into_iter()
        .map(|f| {
            let s = s.clone();
            std::thread::spawn(move || f(&s))
        })
        .collect()
}

fn on_off(b: bool) -> &'static str {
    if b {
        "on"
    } else {
        "off"
    }
}

/// Runs the soak; true when there was no error and the daemon still answers as before.
pub fn run(o: Options) -> Result<bool, String> {
    let pid = read_pid(&o.pid_file)?;
    let devices = answering(&o)?;
    let first = sample(pid).ok_or("daemon gone")?;
    let s = Arc::new(Shared {
        o: o.clone(),
        stats: Stats::default(),
        stop: AtomicBool::new(false),
    });

    let subscribers = Subscribers::start(&s)?;
    let mut ch = Churn {
        c: None,
        next: 0,
        defined: VecDeque::new(),
    };
    match &o.mdev_parent {
        Some(parent) => probe(&s, parent, &mut ch)?,
        // Nothing to probe with: give virsh the time it usually needs.
        None => std::thread::sleep(Duration::from_secs(2)),
    }

    println!(
        "soak: {devices} devices, {} sweepers, {} hostile threads, XML bombs {}, real clients \
         {}, churn {}/s on {}, uevents {}; a row every {} s for {} min",
        o.sweepers,
        o.hostile,
        on_off(o.xml_bombs),
        on_off(o.real_clients),
        o.churn_rate,
        o.mdev_parent.as_deref().unwrap_or("(none)"),
        on_off(o.uevent_socket.is_some()),
        o.interval.as_secs_f64(),
        o.duration.as_secs_f64() / 60.0
    );
    println!(
        "errors are cumulative per kind of load; ev.* count lifecycle events of the load's own \
         devices (caused / received)"
    );
    println!("{}", header());
    println!("{}", row(&s, Duration::ZERO, Some(first), o.real_clients));

    let t0 = Instant::now();
    let load = start_load(&s, ch);
    let mut samples = vec![first];
    let mut died: Option<Duration> = None;
    let mut next_row = o.interval;
    while t0.elapsed() < o.duration {
        std::thread::sleep(Duration::from_millis(200));
        if !alive(pid) {
            s.stats.daemon_dead.store(true, Relaxed);
            died = Some(t0.elapsed());
            println!("{}", row(&s, t0.elapsed(), None, o.real_clients));
            break;
        }
        if t0.elapsed() >= next_row {
            let smp = sample(pid);
            samples.extend(smp);
            println!("{}", row(&s, t0.elapsed(), smp, o.real_clients));
            next_row += o.interval;
        }
    }

    // The churn undefines what it still holds before its thread ends.
    s.stop.store(true, Relaxed);
    for t in load {
        let _ = t.join();
    }
    subscribers.stop(&s, died.is_none());
    if died.is_none() {
        check_events(&s, "our subscriber", &s.stats.ours);
        if o.real_clients {
            check_events(&s, "virsh nodedev-event", &s.stats.virsh);
        }
    }
    let last = sample(pid);
    if died.is_none() {
        println!("{}", row(&s, t0.elapsed(), last, o.real_clients));
    }
    samples.extend(last);
    let end = match died {
        Some(at) => Err(format!("DIED after {:.1} s", at.as_secs_f64())),
        None => answering(&o).map_err(|e| format!("alive but not answering: {e}")),
    };
    Ok(summary(&s, t0.elapsed(), devices, &samples, end))
}

/// Prints the summary; true when there was no error and the daemon ends as it started.
fn summary(
    s: &Shared,
    elapsed: Duration,
    devices: usize,
    samples: &[Sample],
    end: Result<usize, String>,
) -> bool {
    println!();
    println!("summary after {:.1} min:", elapsed.as_secs_f64() / 60.0);
    let first = samples[0];
    let first_row = samples.get(1).copied().unwrap_or(first);
    let last = *samples.last().expect("one sample");
    println!(
        "  VmRSS   {:>8.1} MiB at start, {:>8.1} at the first row, {:>8.1} at the end",
        first.rss_kib as f64 / 1024.0,
        first_row.rss_kib as f64 / 1024.0,
        last.rss_kib as f64 / 1024.0
    );
    println!(
        "  fds     {:>8} at start, {:>8} at the first row, {:>8} at the end",
        first.fds, first_row.fds, last.fds
    );
    println!(
        "  threads {:>8} at start, {:>8} at the first row, {:>8} at the end",
        first.threads, first_row.threads, last.threads
    );
    let h = &s.stats.hostile;
    println!(
        "  daemon CPU {:.1} s over the run; hostile: {} connections, {} frames, {} checked answers",
        last.cpu_s - first.cpu_s,
        h.connections.load(Relaxed),
        h.frames.load(Relaxed),
        h.checked.load(Relaxed)
    );
    let want = s.stats.expected.get();
    print!(
        "  events of the load: {} created, {} deleted, {} defined, {} undefined; received: ours {:?}",
        want[0],
        want[1],
        want[2],
        want[3],
        s.stats.ours.get()
    );
    if s.o.real_clients {
        print!(", virsh {:?}", s.stats.virsh.get());
    }
    println!();
    let per_kind = |f: &dyn Fn(Kind) -> u64| {
        KINDS
            .iter()
            .map(|k| format!("{} {}", k.label(), f(*k)))
            .collect::<Vec<_>>()
            .join(", ")
    };
    println!(
        "  calls:  {} in all ({})",
        s.stats.total_calls(),
        per_kind(&|k| s.stats.calls[k as usize].load(Relaxed))
    );
    println!(
        "  errors: {} in all ({})",
        s.stats.total_errors(),
        per_kind(&|k| s.stats.errors(k))
    );
    let ok = match end {
        Ok(n) if n == devices => {
            println!("  daemon: alive and answering ({n} devices, as at the start)");
            true
        }
        Ok(n) => {
            println!(
                "  daemon: alive and answering, but lists {n} devices ({devices} at the start)"
            );
            false
        }
        Err(e) => {
            println!("  daemon: {e}");
            let bomb = s.stats.last_bomb.lock().unwrap_or_else(|e| e.into_inner());
            if !bomb.is_empty() {
                println!("  the last XML bomb sent: {bomb}");
            }
            false
        }
    };
    ok && s.stats.total_errors() == 0
}
