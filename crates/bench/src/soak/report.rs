//! The soak's table rows and its closing summary.

use std::sync::atomic::Ordering::Relaxed;
use std::time::Duration;

use super::{Kind, Sample, Shared, KINDS};

pub(super) fn header() -> String {
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

pub(super) fn row(s: &Shared, elapsed: Duration, smp: Option<Sample>, virsh: bool) -> String {
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

pub(super) fn on_off(b: bool) -> &'static str {
    if b {
        "on"
    } else {
        "off"
    }
}

/// Prints the summary; true when there was no error and the daemon ends as it started.
pub(super) fn summary(
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
