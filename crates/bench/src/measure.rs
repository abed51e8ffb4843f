//! Measuring one daemon: start-up, throughput and CPU per call, memory.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use protocol::remote::{
    proc as proc_, AuthListRet, ConnectOpenArgs, ListAllArgs, ListAllRet, NameFlagsArgs, StringRet,
};
use protocol::{REMOTE_PROGRAM, REMOTE_VERSION};
use rpc::client::{CallError, Client};

use crate::procfs;

/// What to measure and how long.
#[derive(Clone, Debug)]
pub struct Options {
    pub socket: PathBuf,
    pub pid: Option<u32>,
    pub pid_file: Option<PathBuf>,
    /// Shell command that starts the daemon; start-up is measured from its spawn.
    pub start_cmd: Option<String>,
    /// Device count that counts as the full answer at start-up (otherwise: a
    /// count unchanged for `settle`).
    pub expect: Option<usize>,
    pub settle: Duration,
    pub startup_timeout: Duration,
    /// Unmeasured passes over the device list before the measured ones (one client).
    pub warmup: usize,
    /// Passes over the device list per client, at most.
    pub sweeps: usize,
    /// Time limit of each measured phase.
    pub max_secs: f64,
    pub clients: Vec<usize>,
    /// With one client, run the client and every thread of the daemon on this CPU, so
    /// that a call's cost does not depend on whether the scheduler happens to put them
    /// on one CPU or on two (cross-CPU wake-ups cost a virtual machine several times
    /// more).
    pub pin_one_client: Option<usize>,
    /// How long LIST_ALL is measured on its own; 0 leaves it out.
    pub list_secs: f64,
}

/// One measured phase with `clients` concurrent clients.
#[derive(Clone, Debug, Default)]
pub struct Phase {
    pub calls: u64,
    pub sweeps: u64,
    pub errors: u64,
    pub wall: f64,
    pub cpu: f64,
}

/// Everything measured about one daemon, as `key=value` lines.
pub type Results = BTreeMap<String, String>;

pub fn open(socket: &Path, read_timeout: Duration) -> Result<Client, String> {
    let mut c = Client::connect(socket, REMOTE_PROGRAM, REMOTE_VERSION)
        .map_err(|e| format!("connect {}: {e}", socket.display()))?;
    c.stream()
        .set_read_timeout(Some(read_timeout))
        .map_err(|e| e.to_string())?;
    // As libvirt's clients do: it is what authenticates root on a polkit socket.
    c.call::<_, AuthListRet>(proc_::AUTH_LIST, &())
        .map_err(|e| format!("AUTH_LIST: {e}"))?;
    c.call::<_, ()>(
        proc_::CONNECT_OPEN,
        &ConnectOpenArgs {
            name: Some("nodedev:///system".into()),
            flags: 0,
        },
    )
    .map_err(|e| format!("CONNECT_OPEN: {e}"))?;
    Ok(c)
}

/// ListAllNodeDevices flag bits of the capabilities the benchmark's trees have:
/// system, pci, net.
const LIST_CAPS: [u32; 3] = [1 << 0, 1 << 1, 1 << 4];

fn list_flags(c: &mut Client, flags: u32) -> Result<Vec<String>, CallError> {
    let r: ListAllRet = c.call(
        proc_::CONNECT_LIST_ALL_NODE_DEVICES,
        &ListAllArgs {
            need_results: 1,
            flags,
        },
    )?;
    Ok(r.devices.into_iter().map(|d| d.name).collect())
}

/// Every device's name. One LIST_ALL answers up to 65,536 names
/// (REMOTE_NODE_DEVICE_LIST_MAX, the same in libvirt and here); past that the daemon
/// refuses it and the names are gathered one capability at a time, which a tree stays
/// within when no capability has more than that many devices.
pub fn list_all(c: &mut Client) -> Result<Vec<String>, CallError> {
    match list_flags(c, 0) {
        Err(CallError::Remote(e)) if e.message.contains("Too many node") => list_by_caps(c),
        r => r,
    }
}

fn list_by_caps(c: &mut Client) -> Result<Vec<String>, CallError> {
    let mut names = Vec::new();
    for flags in LIST_CAPS {
        names.extend(list_flags(c, flags)?);
    }
    names.sort_unstable();
    names.dedup();
    Ok(names)
}

/// The most names one LIST_ALL answers: REMOTE_NODE_DEVICE_LIST_MAX.
const LIST_MAX: usize = 65_536;

pub fn xml_desc(c: &mut Client, name: &str) -> Result<String, CallError> {
    let r: StringRet = c.call(
        proc_::NODE_DEVICE_GET_XML_DESC,
        &NameFlagsArgs {
            name: name.into(),
            flags: 0,
        },
    )?;
    Ok(r.value)
}

/// Start-up as observed by a polling client.
struct Startup {
    /// (time since spawn, device count) of every answered LIST_ALL.
    polls: Vec<(Duration, usize)>,
    /// CLOCK_BOOTTIME at the spawn.
    spawned_at: Duration,
    child: Child,
}

fn start_and_poll(cmd: &str, o: &Options) -> Result<Startup, String> {
    let spawned_at = procfs::boottime();
    let t0 = Instant::now();
    let child = Command::new("/bin/sh")
        .arg("-c")
        .arg(cmd)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .spawn()
        .map_err(|e| format!("cannot run {cmd}: {e}"))?;
    let mut polls: Vec<(Duration, usize)> = Vec::new();
    let mut conn: Option<Client> = None;
    let mut last_err = String::new();
    loop {
        if t0.elapsed() > o.startup_timeout {
            return Err(format!(
                "no full answer within {:?} (last: {last_err}; answers: {:?})",
                o.startup_timeout,
                polls.last()
            ));
        }
        if conn.is_none() {
            match open(&o.socket, o.startup_timeout) {
                Ok(c) => conn = Some(c),
                Err(e) => {
                    last_err = e;
                    std::thread::sleep(Duration::from_millis(2));
                    continue;
                }
            }
        }
        let c = conn.as_mut().expect("connected");
        match list_all(c) {
            Ok(names) => {
                let n = names.len();
                polls.push((t0.elapsed(), n));
                if o.expect.is_some_and(|e| n >= e) {
                    break;
                }
                // Settled: the count has not changed for `settle`.
                if n > 0 {
                    let since = polls
                        .iter()
                        .rev()
                        .take_while(|p| p.1 == n)
                        .last()
                        .map(|p| p.0)
                        .unwrap_or_default();
                    if t0.elapsed() - since >= o.settle {
                        break;
                    }
                }
                std::thread::sleep(Duration::from_millis(5));
            }
            Err(e) => {
                last_err = format!("LIST_ALL: {e}");
                conn = None;
                std::thread::sleep(Duration::from_millis(2));
            }
        }
    }
    Ok(Startup {
        polls,
        spawned_at,
        child,
    })
}

fn read_pid(o: &Options) -> Result<u32, String> {
    if let Some(p) = o.pid {
        return Ok(p);
    }
    let f = o.pid_file.as_ref().ok_or("need --pid or --pid-file")?;
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Ok(s) = std::fs::read_to_string(f) {
            if let Ok(p) = s.trim().parse::<u32>() {
                if procfs::alive(p) {
                    return Ok(p);
                }
            }
        }
        if Instant::now() > deadline {
            return Err(format!("no live pid in {}", f.display()));
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// `clients` threads, each with its own connection, each calling GET_XML_DESC over
/// `names` in turn (from its own offset) up to `passes` times over the list or until
/// `max_secs`. LIST_ALL is measured on its own ([`list_cost`]): on the references it
/// costs seconds on the large trees, which would swamp a time-limited phase.
fn xml_phase(
    o: &Options,
    pid: u32,
    names: &Arc<Vec<String>>,
    clients: usize,
    passes: usize,
    max_secs: f64,
) -> Result<Phase, String> {
    let mut conns = Vec::with_capacity(clients);
    for _ in 0..clients {
        conns.push(open(&o.socket, Duration::from_secs(120))?);
    }
    let barrier = Arc::new(Barrier::new(clients + 1));
    let limit = Duration::from_secs_f64(max_secs);
    let cap = passes.saturating_mul(names.len());
    let pin = o.pin_one_client.filter(|_| clients == 1);
    let handles: Vec<_> = conns
        .into_iter()
        .enumerate()
        .map(|(i, mut c)| {
            let (barrier, names) = (barrier.clone(), names.clone());
            std::thread::spawn(move || {
                let (mut calls, mut errors) = (0u64, 0u64);
                let offset = i * names.len() / clients;
                if let Some(cpu) = pin {
                    procfs::pin_self(cpu);
                }
                barrier.wait();
                let t0 = Instant::now();
                for n in names.iter().cycle().skip(offset).take(cap) {
                    match xml_desc(&mut c, n) {
                        Ok(_) => calls += 1,
                        // A device may go away after the listing.
                        Err(CallError::Remote(_)) => {
                            calls += 1;
                            errors += 1
                        }
                        Err(_) => {
                            errors += 1;
                            break;
                        }
                    }
                    if t0.elapsed() >= limit {
                        break;
                    }
                }
                // The connection goes back with the counts: closing it is not measured.
                (calls, errors, c)
            })
        })
        .collect();
    let pinned = pin.map(|cpu| procfs::pin(pid, cpu));
    let cpu0 = procfs::cpu_time(pid).ok_or("daemon gone")?;
    barrier.wait();
    let t0 = Instant::now();
    let mut ph = Phase::default();
    let mut open_conns = Vec::with_capacity(clients);
    for h in handles {
        let (c, e, conn) = h.join().map_err(|_| "client thread panicked")?;
        ph.calls += c;
        ph.errors += e;
        open_conns.push(conn);
    }
    ph.wall = t0.elapsed().as_secs_f64();
    let cpu1 = procfs::cpu_time(pid).ok_or("daemon gone")?;
    if let Some(p) = pinned {
        p.restore();
    }
    ph.cpu = (cpu1 - cpu0).as_secs_f64();
    ph.sweeps = ph.calls / names.len().max(1) as u64;
    Ok(ph)
}

/// LIST_ALL on one connection for `secs` (once at least, 1,000 times at most,
/// so that clock ticks measure a cheap one): the median wall time and the daemon CPU
/// per call.
fn list_cost(c: &mut Client, pid: u32, devices: usize, secs: f64) -> Result<(f64, f64), String> {
    let mut walls = Vec::with_capacity(1000);
    let cpu0 = procfs::cpu_time(pid).ok_or("daemon gone")?;
    let t0 = Instant::now();
    let limit = Duration::from_secs_f64(secs);
    while walls.len() < 1000 && (walls.is_empty() || t0.elapsed() < limit) {
        let t = Instant::now();
        // Past the limit a client that knows it lists by capability straight away.
        if devices > LIST_MAX {
            list_by_caps(c)
        } else {
            list_all(c)
        }
        .map_err(|e| format!("LIST_ALL: {e}"))?;
        walls.push(t.elapsed().as_secs_f64());
    }
    let cpu = (procfs::cpu_time(pid).ok_or("daemon gone")? - cpu0).as_secs_f64();
    let n = walls.len();
    walls.sort_by(f64::total_cmp);
    Ok((walls[n / 2], cpu / n as f64))
}

pub fn run(o: &Options, label: &str) -> Result<Results, String> {
    let mut r = Results::new();
    r.insert("label".into(), label.into());
    let startup = match &o.start_cmd {
        Some(cmd) => Some(start_and_poll(cmd, o)?),
        None => None,
    };
    let pid = read_pid(o)?;
    r.insert("pid".into(), pid.to_string());
    let mut c = open(&o.socket, Duration::from_secs(600))?;
    let names = Arc::new(list_all(&mut c).map_err(|e| format!("LIST_ALL: {e}"))?);
    let final_count = names.len();
    r.insert("devices".into(), final_count.to_string());

    let unpinned = Options {
        pin_one_client: None,
        ..o.clone()
    };
    let warm = xml_phase(&unpinned, pid, &names, 1, o.warmup, o.max_secs)?;
    eprintln!(
        "[{label}] warm-up: {} GET_XML_DESC calls in {:.2}s",
        warm.calls, warm.wall
    );
    if o.list_secs > 0.0 {
        let (list_wall, list_cpu) = list_cost(&mut c, pid, final_count, o.list_secs)?;
        eprintln!(
            "[{label}] LIST_ALL: {:.2} ms, daemon CPU {:.2} ms",
            list_wall * 1e3,
            list_cpu * 1e3
        );
        r.insert("list_s".into(), format!("{list_wall:.6}"));
        r.insert("list_cpu_s".into(), format!("{list_cpu:.6}"));
    }
    for &n in &o.clients {
        let ph = xml_phase(o, pid, &names, n, o.sweeps, o.max_secs)?;
        eprintln!(
            "[{label}] {n} client(s): {} GET_XML_DESC calls ({} errors) in {:.2}s, daemon CPU {:.3}s",
            ph.calls, ph.errors, ph.wall, ph.cpu
        );
        let k = format!("c{n}");
        r.insert(format!("{k}.calls"), ph.calls.to_string());
        r.insert(format!("{k}.sweeps"), ph.sweeps.to_string());
        r.insert(format!("{k}.errors"), ph.errors.to_string());
        r.insert(format!("{k}.wall_s"), format!("{:.6}", ph.wall));
        r.insert(format!("{k}.cpu_s"), format!("{:.6}", ph.cpu));
    }

    for key in ["VmRSS", "VmHWM"] {
        if let Some(v) = procfs::status_kib(pid, key) {
            r.insert(format!("{key}_kib"), v.to_string());
        }
    }
    if let Some(t) = procfs::threads(pid) {
        r.insert("threads".into(), t.to_string());
    }
    if let Some(s) = startup {
        startup_results(&mut r, s, pid, final_count);
    }
    if let Some(e) = o.expect {
        r.insert("expected".into(), e.to_string());
    }
    Ok(r)
}

fn startup_results(r: &mut Results, mut s: Startup, pid: u32, final_count: usize) {
    let first = s.polls.first().copied().unwrap_or_default();
    r.insert(
        "startup.first_answer_s".into(),
        format!("{:.6}", first.0.as_secs_f64()),
    );
    r.insert("startup.first_count".into(), first.1.to_string());
    // The first answer that already listed the final number of devices.
    match s.polls.iter().find(|p| p.1 >= final_count) {
        Some(p) => {
            r.insert("startup.full_s".into(), format!("{:.6}", p.0.as_secs_f64()));
            // Same moment, measured from the exec of the daemon process itself
            // (leaves out any wrapper; clock-tick resolution).
            if let Some(st) = procfs::start_boottime(pid) {
                let at = s.spawned_at + p.0;
                let d = at.saturating_sub(st.max(s.spawned_at));
                r.insert(
                    "startup.full_from_exec_s".into(),
                    format!("{:.6}", d.as_secs_f64()),
                );
            }
        }
        None => {
            r.insert(
                "startup.note".into(),
                format!(
                    "count grew after start-up polling stopped ({} -> {final_count})",
                    s.polls.last().map(|p| p.1).unwrap_or(0)
                ),
            );
        }
    }
    r.insert("startup.polls".into(), s.polls.len().to_string());
    // Reap the starter if it has finished (a wrapper that forks the daemon).
    let _ = s.child.try_wait();
}

pub fn write_results(r: &Results, path: &Path) -> std::io::Result<()> {
    let mut s = String::new();
    for (k, v) in r {
        s.push_str(&format!("{k}={v}\n"));
    }
    std::fs::write(path, s)
}

pub fn read_results(path: &Path) -> std::io::Result<Results> {
    let s = std::fs::read_to_string(path)?;
    Ok(s.lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect())
}
