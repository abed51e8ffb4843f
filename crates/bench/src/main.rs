//! nodedev-bench: measures a node-device daemon (ours, a reference libvirtd, the floor)
//! over its RPC socket, with a cheap blocking Rust client.
//!
//! Modes:
//!   nodedev-bench --uri-socket PATH (--pid PID | --pid-file FILE) [options]
//!       measure a daemon (started by --start-cmd, or already running)
//!   nodedev-bench gen-tree DIR [--pci N] [--net N] [--mdev] | [--vfs N [--vf-netdevs] --veths N]
//!       build a fake device tree; prints its node-device count
//!   nodedev-bench floor --record-from SOCKET --socket PATH [--pid-file FILE]
//!       the echo floor: replays replies recorded from a daemon
//!   nodedev-bench syscalls --uri-socket PATH (--pid PID | --pid-file FILE) [--calls N]
//!       system calls per GET_XML_DESC (strace -c -f)
//!   nodedev-bench soak --uri-socket PATH --pid-file FILE [options]
//!       minutes of mixed load, a row of errors and resources per interval (bench/soak)
//!   nodedev-bench report --title T [--clients 1,8] [--host] NAME=FILE[,FILE]...
//!       print the comparison table from result files
//!   nodedev-bench bytes-per-device SMALL_RESULTS BIG_RESULTS
//!
//! Nothing here asserts on timings: it reports numbers.

mod floor;
mod measure;
mod procfs;
mod report;
mod soak;
mod syscalls;
mod trees;
mod watch;

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

const USAGE: &str = "\
usage:
  nodedev-bench --uri-socket PATH (--pid PID | --pid-file FILE) [--start-cmd CMD]
                [--expect N] [--settle SECS] [--startup-timeout SECS]
                [--warmup N] [--sweeps N] [--max-secs SECS] [--clients 1,8]
                [--pin-cpu N|none] [--list-secs SECS] [--label NAME] [--out FILE]
      Measures one daemon. With --start-cmd the daemon is started by `sh -c CMD` and
      start-up is timed until LIST_ALL_NODE_DEVICES returns the full count (--expect N,
      or a count unchanged for --settle seconds, default 2). Then a warm-up (--warmup
      passes over the devices, one client), LIST_ALL alone for --list-secs (default 1; past
      65,536 devices: one LIST_ALL per capability), and, for each client count, each
      client (own connection, own thread) calls GET_XML_DESC over the device list from
      its own offset, up to --sweeps passes or until --max-secs has passed. Daemon CPU
      is utime+stime from /proc/PID/stat; memory is VmRSS/VmHWM from /proc/PID/status
      after the phases. Results go to --out as key=value lines (and a summary to stderr).
      In the one-client phase the client and every daemon thread run on CPU --pin-cpu
      (default 0; `none` leaves them to the scheduler): on a VM a call costs several
      times more when the two happen to sit on different CPUs, which made that phase
      swing 3x between runs.
  nodedev-bench gen-tree DIR [--pci N] [--net N] [--mdev]
  nodedev-bench gen-tree DIR --vfs N [--vf-netdevs] --veths N
      Builds a fake tree with fakesys; prints the number of node devices it describes
      (including `computer`). The first form: --pci Ethernet functions (default 4000)
      and --net interfaces (default 6000); --mdev adds an mdev-capable GPU,
      pci_0000_af_00_0, with types nvidia-222 and nvidia-223. The second: SR-IOV
      physical functions with 250 VFs each (--vfs in all; on iavf with an interface
      each with --vf-netdevs, else on vfio-pci) and --veths virtual interfaces.
  nodedev-bench floor --record-from SOCKET --socket PATH [--pid-file FILE]
      Asks the daemon at SOCKET every call a sweep makes (CONNECT_OPEN, LIST_ALL,
      GET_XML_DESC of each device), then serves those replies on PATH, a thread per
      connection, until killed: the floor any daemon is compared with.
  nodedev-bench syscalls --uri-socket PATH (--pid PID | --pid-file FILE) [--calls N]
                [--out FILE]
      Attaches `strace -c -f` to the daemon and makes N GET_XML_DESC calls (default
      2000) over the listed devices; prints system calls per call, in all and by name.
  nodedev-bench soak --uri-socket PATH --pid-file FILE [--ro-socket PATH]
                [--admin-socket PATH] [--root DIR] [--uevent-socket PATH]
                [--minutes N] [--interval SECS] [--sweepers N] [--hostile N]
                [--no-xml-bombs] [--no-real-clients] [--real-every SECS]
                [--mdev-parent NAME] [--mdev-type TYPE] [--churn-rate PER_SEC] [--seed N]
      Mixed load on a running daemon for --minutes (default 30): sweeps (ours, virsh,
      libvirt-python), event subscribers (ours, virsh nodedev-event), define/undefine of
      persistent mdevs on --mdev-parent, hostile frames on every socket, XML bombs, and,
      with --root and --uevent-socket, interfaces added and removed through injected
      uevents. Prints a row (errors per kind of load, events, VmRSS, fds, threads, CPU)
      every --interval seconds (default 30) and a summary; fails on any error or if the
      daemon died. The read-only and admin sockets default to the read-write socket's
      path with -ro and -admin (libvirt's naming).
  nodedev-bench report --title TITLE [--clients 1,8] [--host] [--reference NAME]
                [--ours NAME] [--floor NAME] NAME=FILE[,FILE...]...
      Prints the comparison table, a column per NAME (its FILEs' key=value lines
      merged); ratios are ours/reference and ours/floor (columns named by the flags;
      default: the first column, `ours` and `floor`). --host adds the floor target.
  nodedev-bench bytes-per-device SMALL_RESULTS BIG_RESULTS
      Prints RSS growth per device between two trees, and RSS per device of the big one.
";

struct Args(Vec<String>);

impl Args {
    fn take_value(&mut self, i: usize) -> Result<String, String> {
        if i + 1 >= self.0.len() {
            return Err(format!("{} needs a value", self.0[i]));
        }
        Ok(self.0.remove(i + 1))
    }

    /// Hands every `--flag value` pair to `f`, for subcommands whose options all take
    /// a value.
    fn each_pair(
        mut self,
        mut f: impl FnMut(&str, String) -> Result<(), String>,
    ) -> Result<(), String> {
        let mut i = 0;
        while i < self.0.len() {
            let flag = self.0[i].clone();
            let v = self.take_value(i)?;
            f(&flag, v)?;
            i += 1;
        }
        Ok(())
    }
}

fn parse<T: std::str::FromStr>(flag: &str, v: &str) -> Result<T, String> {
    v.parse().map_err(|_| format!("{flag}: bad value '{v}'"))
}

fn parse_clients(v: &str) -> Result<Vec<usize>, String> {
    v.split(',')
        .map(|s| parse::<usize>("--clients", s.trim()))
        .filter(|r| !matches!(r, Ok(0)))
        .collect()
}

fn cmd_measure(args: Vec<String>) -> Result<(), String> {
    let mut o = measure::Options {
        socket: PathBuf::new(),
        pid: None,
        pid_file: None,
        start_cmd: None,
        expect: None,
        settle: Duration::from_secs(2),
        startup_timeout: Duration::from_secs(600),
        warmup: 1,
        sweeps: 100,
        max_secs: 10.0,
        clients: vec![1, 8],
        pin_one_client: Some(0),
        list_secs: 1.0,
    };
    let mut label = "daemon".to_string();
    let mut out: Option<PathBuf> = None;
    let mut a = Args(args);
    let mut i = 0;
    while i < a.0.len() {
        let flag = a.0[i].clone();
        let v = match flag.as_str() {
            "-h" | "--help" => {
                print!("{USAGE}");
                std::process::exit(0);
            }
            _ => a.take_value(i)?,
        };
        match flag.as_str() {
            "--uri-socket" | "--socket" => o.socket = v.into(),
            "--pid" => o.pid = Some(parse(&flag, &v)?),
            "--pid-file" => o.pid_file = Some(v.into()),
            "--start-cmd" => o.start_cmd = Some(v),
            "--expect" => o.expect = Some(parse(&flag, &v)?),
            "--settle" => o.settle = Duration::from_secs_f64(parse(&flag, &v)?),
            "--startup-timeout" => o.startup_timeout = Duration::from_secs_f64(parse(&flag, &v)?),
            "--warmup" => o.warmup = parse(&flag, &v)?,
            "--sweeps" => o.sweeps = parse(&flag, &v)?,
            "--max-secs" => o.max_secs = parse(&flag, &v)?,
            "--clients" => o.clients = parse_clients(&v)?,
            "--list-secs" => o.list_secs = parse(&flag, &v)?,
            "--pin-cpu" => {
                o.pin_one_client = (v != "none").then(|| parse(&flag, &v)).transpose()?
            }
            "--label" => label = v,
            "--out" => out = Some(v.into()),
            _ => return Err(format!("unknown option {flag}\n{USAGE}")),
        }
        i += 1;
    }
    if o.socket.as_os_str().is_empty() {
        return Err(format!("--uri-socket is required\n{USAGE}"));
    }
    if o.pid.is_none() && o.pid_file.is_none() {
        return Err(format!("--pid or --pid-file is required\n{USAGE}"));
    }
    let r = measure::run(&o, &label)?;
    match out {
        Some(p) => measure::write_results(&r, &p).map_err(|e| format!("{}: {e}", p.display()))?,
        None => {
            for (k, v) in &r {
                println!("{k}={v}");
            }
        }
    }
    Ok(())
}

fn cmd_gen_tree(args: Vec<String>) -> Result<(), String> {
    let (mut pci, mut net) = (4000usize, 6000usize);
    let mut mdev = false;
    let mut sriov = trees::SriovTree {
        vfs: 0,
        vf_netdevs: false,
        veths: 0,
    };
    let mut use_sriov = false;
    let mut dir: Option<PathBuf> = None;
    let mut a = Args(args);
    let mut i = 0;
    while i < a.0.len() {
        let flag = a.0[i].clone();
        match flag.as_str() {
            "--pci" => pci = parse(&flag, &a.take_value(i)?)?,
            "--net" => net = parse(&flag, &a.take_value(i)?)?,
            "--mdev" => mdev = true,
            "--vfs" => (sriov.vfs, use_sriov) = (parse(&flag, &a.take_value(i)?)?, true),
            "--veths" => (sriov.veths, use_sriov) = (parse(&flag, &a.take_value(i)?)?, true),
            "--vf-netdevs" => (sriov.vf_netdevs, use_sriov) = (true, true),
            f if f.starts_with('-') => return Err(format!("unknown option {f}\n{USAGE}")),
            d => dir = Some(d.into()),
        }
        i += 1;
    }
    let dir = dir.ok_or_else(|| format!("gen-tree needs DIR\n{USAGE}"))?;
    let mut n = if use_sriov {
        trees::sriov_tree(&dir, sriov)
    } else {
        fakesys::trees::scale(&dir, pci, net)
    }
    .map_err(|e| format!("{}: {e}", dir.display()))?;
    if mdev {
        add_mdev_parent(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        n += 1;
    }
    println!("{n}");
    Ok(())
}

/// An NVIDIA T4 on its own root bus with two vGPU types, for the soak's mdev churn.
fn add_mdev_parent(dir: &std::path::Path) -> std::io::Result<()> {
    let f = fakesys::FakeSys::new(dir)?;
    let gpu = f.pci_device(
        "0000:af:00.0",
        None,
        &fakesys::PciSpec {
            vendor: 0x10de,
            device: 0x1eb8,
            class: 0x030200,
            driver: Some("nvidia".into()),
            ..Default::default()
        },
    )?;
    f.iommu_group(&gpu, 150)?;
    f.mdev_types(
        &gpu,
        &[
            fakesys::MdevTypeSpec::new("nvidia-222", Some("GRID T4-1B"), "vfio-pci", 16),
            fakesys::MdevTypeSpec::new("nvidia-223", Some("GRID T4-2B"), "vfio-pci", 8),
        ],
    )
}

fn cmd_soak(args: Vec<String>) -> Result<(), String> {
    let mut o = soak::Options {
        socket: PathBuf::new(),
        ro_socket: PathBuf::new(),
        admin_socket: PathBuf::new(),
        pid_file: PathBuf::new(),
        root: None,
        uevent_socket: None,
        duration: Duration::from_secs(30 * 60),
        interval: Duration::from_secs(30),
        sweepers: 4,
        hostile: 3,
        real_clients: true,
        real_every: Duration::from_secs(10),
        xml_bombs: true,
        mdev_parent: None,
        mdev_type: "nvidia-222".into(),
        churn_rate: 10.0,
        seed: 0x5eed_f00d,
    };
    let mut a = Args(args);
    let mut i = 0;
    while i < a.0.len() {
        let flag = a.0[i].clone();
        match flag.as_str() {
            "-h" | "--help" => {
                print!("{USAGE}");
                std::process::exit(0);
            }
            "--no-xml-bombs" => o.xml_bombs = false,
            "--no-real-clients" => o.real_clients = false,
            _ => {
                let v = a.take_value(i)?;
                let secs = |v: &str| -> Result<Duration, String> {
                    Ok(Duration::from_secs_f64(parse::<f64>(&flag, v)?.max(0.0)))
                };
                match flag.as_str() {
                    "--uri-socket" | "--socket" => o.socket = v.into(),
                    "--ro-socket" => o.ro_socket = v.into(),
                    "--admin-socket" => o.admin_socket = v.into(),
                    "--pid-file" => o.pid_file = v.into(),
                    "--root" => o.root = Some(v.into()),
                    "--uevent-socket" => o.uevent_socket = Some(v.into()),
                    "--minutes" => o.duration = secs(&v)? * 60,
                    "--interval" => o.interval = secs(&v)?.max(Duration::from_secs(1)),
                    "--sweepers" => o.sweepers = parse(&flag, &v)?,
                    "--hostile" => o.hostile = parse(&flag, &v)?,
                    "--real-every" => o.real_every = secs(&v)?,
                    "--mdev-parent" => o.mdev_parent = Some(v),
                    "--mdev-type" => o.mdev_type = v,
                    "--churn-rate" => o.churn_rate = parse(&flag, &v)?,
                    "--seed" => o.seed = parse(&flag, &v)?,
                    _ => return Err(format!("unknown option {flag}\n{USAGE}")),
                }
            }
        }
        i += 1;
    }
    if o.socket.as_os_str().is_empty() || o.pid_file.as_os_str().is_empty() {
        return Err(format!("soak needs --uri-socket and --pid-file\n{USAGE}"));
    }
    let sibling = |suffix: &str| {
        let mut p = o.socket.clone().into_os_string();
        p.push(suffix);
        PathBuf::from(p)
    };
    if o.ro_socket.as_os_str().is_empty() {
        o.ro_socket = sibling("-ro");
    }
    if o.admin_socket.as_os_str().is_empty() {
        o.admin_socket = sibling("-admin");
    }
    if soak::run(o)? {
        Ok(())
    } else {
        Err("soak: FAILED (errors above, or the daemon died)".into())
    }
}

fn cmd_report(args: Vec<String>) -> Result<(), String> {
    let mut title = "results".to_string();
    let mut clients = vec![1, 8];
    let mut host = false;
    let (mut reference, mut ours, mut floor) = (None, "ours".to_string(), "floor".to_string());
    let mut cols = Vec::new();
    let mut a = Args(args);
    let mut i = 0;
    while i < a.0.len() {
        let flag = a.0[i].clone();
        match flag.as_str() {
            "--title" => title = a.take_value(i)?,
            "--clients" => clients = parse_clients(&a.take_value(i)?)?,
            "--host" => host = true,
            "--reference" => reference = Some(a.take_value(i)?),
            "--ours" => ours = a.take_value(i)?,
            "--floor" => floor = a.take_value(i)?,
            f if f.starts_with('-') => return Err(format!("unknown option {f}\n{USAGE}")),
            f => {
                let (name, files) = f
                    .split_once('=')
                    .ok_or_else(|| format!("{f}: expected NAME=FILE\n{USAGE}"))?;
                let mut results = measure::Results::new();
                for p in files
                    .split(',')
                    .filter(|p| std::path::Path::new(p).exists())
                {
                    results.extend(
                        measure::read_results(p.as_ref()).map_err(|e| format!("{p}: {e}"))?,
                    );
                }
                cols.push(report::Column {
                    name: name.to_string(),
                    results,
                });
            }
        }
        i += 1;
    }
    if cols.is_empty() {
        return Err(format!("report needs NAME=FILE columns\n{USAGE}"));
    }
    let find = |n: &str| cols.iter().position(|c| c.name == n);
    let roles = report::Roles {
        reference: reference.as_deref().map_or(Some(0), find),
        ours: find(&ours),
        floor: find(&floor),
    };
    print!("{}", report::table(&title, &cols, &roles, &clients, host));
    Ok(())
}

fn cmd_bytes_per_device(args: Vec<String>) -> Result<(), String> {
    let [small, big] = args.as_slice() else {
        return Err(format!("bytes-per-device needs two result files\n{USAGE}"));
    };
    let read = |p: &String| measure::read_results(p.as_ref()).map_err(|e| format!("{p}: {e}"));
    print!("{}", report::bytes_per_device(&read(small)?, &read(big)?));
    Ok(())
}

fn cmd_floor(args: Vec<String>) -> Result<(), String> {
    let (mut source, mut socket, mut pid_file) = (None, None, None);
    Args(args).each_pair(|flag, v| {
        match flag {
            "--record-from" => source = Some(PathBuf::from(v)),
            "--socket" => socket = Some(PathBuf::from(v)),
            "--pid-file" => pid_file = Some(PathBuf::from(v)),
            _ => return Err(format!("unknown option {flag}\n{USAGE}")),
        }
        Ok(())
    })?;
    let (Some(source), Some(socket)) = (source, socket) else {
        return Err(format!("floor needs --record-from and --socket\n{USAGE}"));
    };
    let rec = floor::record(&source)?;
    eprintln!(
        "nodedev-bench floor: {} replies recorded from {}",
        rec.count(),
        source.display()
    );
    floor::serve(&socket, pid_file.as_ref(), rec)
}

fn cmd_syscalls(args: Vec<String>) -> Result<(), String> {
    let (mut socket, mut pid, mut pid_file, mut out) = (None, None, None, None);
    let mut calls = 2000usize;
    Args(args).each_pair(|flag, v| {
        match flag {
            "--uri-socket" | "--socket" => socket = Some(PathBuf::from(v)),
            "--pid" => pid = Some(parse::<u32>(flag, &v)?),
            "--pid-file" => pid_file = Some(PathBuf::from(v)),
            "--calls" => calls = parse(flag, &v)?,
            "--out" => out = Some(PathBuf::from(v)),
            _ => return Err(format!("unknown option {flag}\n{USAGE}")),
        }
        Ok(())
    })?;
    let socket = socket.ok_or_else(|| format!("syscalls needs --uri-socket\n{USAGE}"))?;
    let pid = match (pid, pid_file) {
        (Some(p), _) => p,
        (None, Some(f)) => std::fs::read_to_string(&f)
            .map_err(|e| format!("{}: {e}", f.display()))?
            .trim()
            .parse()
            .map_err(|_| format!("{}: no pid", f.display()))?,
        _ => return Err(format!("syscalls needs --pid or --pid-file\n{USAGE}")),
    };
    let r = syscalls::count(&socket, pid, calls.max(1))?;
    match out {
        Some(p) => measure::write_results(&r, &p).map_err(|e| format!("{}: {e}", p.display())),
        None => {
            for (k, v) in &r {
                println!("{k}={v}");
            }
            Ok(())
        }
    }
}

fn main() -> ExitCode {
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    let r = match args.first().map(String::as_str) {
        Some("gen-tree") => cmd_gen_tree(args.split_off(1)),
        Some("report") => cmd_report(args.split_off(1)),
        Some("bytes-per-device") => cmd_bytes_per_device(args.split_off(1)),
        Some("floor") => cmd_floor(args.split_off(1)),
        Some("syscalls") => cmd_syscalls(args.split_off(1)),
        Some("measure") => cmd_measure(args.split_off(1)),
        Some("watch") => watch::run(args.split_off(1)),
        Some("soak") => cmd_soak(args.split_off(1)),
        _ => cmd_measure(args),
    };
    match r {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("nodedev-bench: {e}");
            ExitCode::FAILURE
        }
    }
}
