//! Hostile clients against the real daemon: from several threads at once, thousands of
//! random and mutated-valid frames (garbage, truncated frames, huge length words, valid
//! headers with random procedures and random arguments) interleaved with valid calls whose
//! answers are checked. Bounded in count and in time. Afterwards the daemon must still be
//! running, must not have panicked, must answer a normal client as before, and its memory
//! must not have grown without bound.

mod common;

use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bench::hostile::{admin_abuse, remote_abuse, valid_remote_calls, Counters, Rng};
use common::{device_names, sample_tree, Daemon};
use protocol::admin::ADMIN_PROGRAM;
use protocol::remote::{self as r, proc};
use rpc::client::Client;

/// Connections per attacking thread, and the time all of them may take together.
const CONNECTIONS_PER_THREAD: usize = 600;
const BUDGET: Duration = Duration::from_secs(25);
/// How much the daemon's resident memory may grow over the attack: generous (allocator
/// caches, tokio's per-thread state), but far below what leaking buffers or connection
/// state per frame would cost.
const RSS_GROWTH_MAX_KB: u64 = 96 * 1024;

fn vm_rss_kb(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_else(|e| panic!("daemon {pid} is gone: {e}"));
    let state = status
        .lines()
        .find(|l| l.starts_with("State:"))
        .unwrap_or("");
    assert!(!state.contains('Z'), "daemon is a zombie: {state}");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS in /proc/PID/status")
}

fn attack(d: &Daemon, seed: u64, per_thread: usize, budget: Duration) -> Arc<Counters> {
    let counters = Arc::new(Counters::default());
    let deadline = Instant::now() + budget;
    let socks: Vec<(PathBuf, bool)> = vec![
        (d.sock(), false),
        (d.sock(), false),
        (d.sock(), false),
        (d.ro_sock(), false),
        (d.admin_sock(), true),
    ];
    let threads: Vec<_> = socks
        .into_iter()
        .enumerate()
        .map(|(t, (sock, admin))| {
            let counters = counters.clone();
            let seed = Rng::seed(seed, t as u64);
            std::thread::spawn(move || {
                let mut rng = Rng(seed);
                let valid = valid_remote_calls();
                for _ in 0..per_thread {
                    if Instant::now() > deadline {
                        break;
                    }
                    let r = if admin {
                        admin_abuse(&mut rng, &sock, &counters)
                    } else {
                        remote_abuse(&mut rng, &sock, &valid, &counters)
                    };
                    if let Err(e) = r {
                        panic!("thread {t} (seed {seed}): {e}");
                    }
                }
            })
        })
        .collect();
    for t in threads {
        t.join()
            .expect("an attacking thread failed (see its panic above)");
    }
    counters
}

fn xml_of(c: &mut Client, name: &str) -> String {
    let x: r::StringRet = c
        .call(
            proc::NODE_DEVICE_GET_XML_DESC,
            &r::NameFlagsArgs {
                name: name.into(),
                flags: 0,
            },
        )
        .unwrap();
    x.value
}

#[test]
fn daemon_survives_hostile_clients_and_answers_normally_afterwards() {
    let tree = tempfile::tempdir().unwrap();
    sample_tree(tree.path());
    // Quiet logging: the attack is about the daemon, not about its log file.
    let d = Daemon::start(
        Some(tree.path()),
        "log_level = 4\nlog_outputs = \"4:stderr\"",
    );
    let pid = d.pid();

    let mut c = d.open_client();
    let names = device_names(&mut c);
    let xml = xml_of(&mut c, "pci_0000_01_00_0");
    drop(c);

    let seed = std::env::var("HOSTILE_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0x5eed_f00d_u64);
    eprintln!("hostile: seed {seed} (HOSTILE_SEED=... to replay)");

    // A first short round warms up the allocator and tokio's threads, so that the memory
    // comparison sees growth, not start-up.
    attack(&d, seed.rotate_left(17), 20, Duration::from_secs(5));
    std::thread::sleep(Duration::from_millis(300));
    let rss_before = vm_rss_kb(pid);

    let started = Instant::now();
    let n = attack(&d, seed, CONNECTIONS_PER_THREAD, BUDGET);
    std::thread::sleep(Duration::from_millis(500));
    let rss_after = vm_rss_kb(pid);
    eprintln!(
        "hostile: {} connections, {} frames, {} checked answers in {:.1?}; VmRSS {} kB -> {} kB",
        n.connections.load(Ordering::Relaxed),
        n.frames.load(Ordering::Relaxed),
        n.checked.load(Ordering::Relaxed),
        started.elapsed(),
        rss_before,
        rss_after
    );
    assert!(
        n.frames.load(Ordering::Relaxed) >= 1000,
        "too few frames sent"
    );

    let log = d.log();
    assert!(!log.contains("panicked"), "the daemon panicked:\n{log}");
    assert!(
        rss_after <= rss_before + RSS_GROWTH_MAX_KB,
        "daemon memory grew from {rss_before} kB to {rss_after} kB"
    );

    // Still alive, still right.
    let mut c = d.open_client();
    assert_eq!(device_names(&mut c), names);
    assert_eq!(xml_of(&mut c, "pci_0000_01_00_0"), xml);
    let t: r::StringRet = c.call(proc::CONNECT_GET_TYPE, &()).unwrap();
    assert_eq!(t.value, "nodedev");
    let mut admin = Client::connect(&d.admin_sock(), ADMIN_PROGRAM, 1).unwrap();
    let v: u64 = admin.call(3, &()).unwrap();
    assert_eq!(v, protocol::LIB_VERSION);
}
