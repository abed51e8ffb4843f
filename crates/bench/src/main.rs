//! nodedev-bench: measures a node-device daemon (ours or the reference libvirtd 9.0)
//! over its RPC socket, with a cheap blocking Rust client.
//!
//! Modes:
//!   nodedev-bench --uri-socket PATH (--pid PID | --pid-file FILE) [options]
//!       measure a daemon (started by --start-cmd, or already running)
//!   nodedev-bench gen-tree DIR [--pci N] [--net N] [--mdev]
//!       build a fake device tree; prints its node-device count
//!   nodedev-bench soak --uri-socket PATH --pid-file FILE [options]
//!       minutes of mixed load, a row of errors and resources per interval (bench/soak)
//!   nodedev-bench report --title T [--clients 1,8] REF_RESULTS OURS_RESULTS
//!       print the comparison table from two result files
//!
//! Nothing here asserts on timings: it reports numbers.

mod measure;
mod procfs;
mod report;
mod soak;
mod watch;

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

const USAGE: &str = "\
usage:
  nodedev-bench --uri-socket PATH (--pid PID | --pid-file FILE) [--start-cmd CMD]
                [--expect N] [--settle SECS] [--startup-timeout SECS]
                [--warmup N] [--sweeps N] [--max-secs SECS] [--clients 1,8]
                [--label NAME] [--out FILE]
      Measures one daemon. With --start-cmd the daemon is started by `sh -c CMD` and
      start-up is timed until LIST_ALL_NODE_DEVICES returns the full count (--expect N,
      or a count unchanged for --settle seconds, default 2). Then a warm-up and, for each
      client count, each client (own connection, own thread) repeats the sweep
      (LIST_ALL, then GET_XML_DESC of every device) up to --sweeps times or until
      --max-secs has passed. Daemon CPU is utime+stime from /proc/PID/stat; memory is
      VmRSS/VmHWM from /proc/PID/status after the sweeps. Results go to --out as
      key=value lines (and a summary to stderr).
  nodedev-bench gen-tree DIR [--pci N] [--net N] [--mdev]
      Builds a fake tree (default 4000 PCI functions, 6000 interfaces) with fakesys;
      prints the number of node devices it describes (including `computer`). --mdev
      adds an mdev-capable GPU, pci_0000_af_00_0, with types nvidia-222 and nvidia-223.
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
  nodedev-bench report --title TITLE [--clients 1,8] REFERENCE_RESULTS OURS_RESULTS
      Prints the comparison table.
";

struct Args(Vec<String>);

impl Args {
    fn take_value(&mut self, i: usize) -> Result<String, String> {
        if i + 1 >= self.0.len() {
            return Err(format!("{} needs a value", self.0[i]));
        }
        Ok(self.0.remove(i + 1))
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
    let mut dir: Option<PathBuf> = None;
    let mut a = Args(args);
    let mut i = 0;
    while i < a.0.len() {
        let flag = a.0[i].clone();
        match flag.as_str() {
            "--pci" => pci = parse(&flag, &a.take_value(i)?)?,
            "--net" => net = parse(&flag, &a.take_value(i)?)?,
            "--mdev" => mdev = true,
            f if f.starts_with('-') => return Err(format!("unknown option {f}\n{USAGE}")),
            d => dir = Some(d.into()),
        }
        i += 1;
    }
    let dir = dir.ok_or_else(|| format!("gen-tree needs DIR\n{USAGE}"))?;
    let mut n =
        fakesys::trees::scale(&dir, pci, net).map_err(|e| format!("{}: {e}", dir.display()))?;
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
    let mut files = Vec::new();
    let mut a = Args(args);
    let mut i = 0;
    while i < a.0.len() {
        let flag = a.0[i].clone();
        match flag.as_str() {
            "--title" => title = a.take_value(i)?,
            "--clients" => clients = parse_clients(&a.take_value(i)?)?,
            f if f.starts_with('-') => return Err(format!("unknown option {f}\n{USAGE}")),
            f => files.push(PathBuf::from(f)),
        }
        i += 1;
    }
    let [reference, ours] = files.as_slice() else {
        return Err(format!(
            "report needs REFERENCE_RESULTS and OURS_RESULTS\n{USAGE}"
        ));
    };
    let read = |p: &PathBuf| measure::read_results(p).map_err(|e| format!("{}: {e}", p.display()));
    print!(
        "{}",
        report::table(&title, &read(reference)?, &read(ours)?, &clients)
    );
    Ok(())
}

fn main() -> ExitCode {
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    let r = match args.first().map(String::as_str) {
        Some("gen-tree") => cmd_gen_tree(args.split_off(1)),
        Some("report") => cmd_report(args.split_off(1)),
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
