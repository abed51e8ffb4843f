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
//!
//! Each part of the load has its module (`sweeps`, `events`, `churn`, `abuse`); `report`
//! prints the rows and the summary; this one holds the counters and runs the whole.

mod abuse;
mod churn;
mod events;
mod report;
mod sweeps;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use bench::hostile;
use protocol::remote::{self as r, proc};
use rpc::client::Client;

use crate::measure::{list_all, open};
use crate::procfs;
use abuse::{bombs, hostile_thread};
use churn::{churn, probe, uevents, Churn};
use events::{check_events, Subscribers};
use report::{header, on_off, row, summary};
use sweeps::{real_clients, sweeper};

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
    /// The connection in `conn`, opened on the read-write socket first if needed; a
    /// failure to open counts as an error of `k` and is followed by a pause (`None`).
    fn connected<'a>(&self, conn: &'a mut Option<Client>, k: Kind) -> Option<&'a mut Client> {
        if conn.is_none() {
            match open(&self.o.socket, Duration::from_secs(60)) {
                Ok(c) => *conn = Some(c),
                Err(e) => {
                    self.stats.error(k, e);
                    self.pause(Duration::from_secs(1));
                    return None;
                }
            }
        }
        conn.as_mut()
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
    let mut ch = Churn::default();
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
