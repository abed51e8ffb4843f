//! What the benchmark reads about the daemon process from `/proc`.

use std::time::Duration;

fn clk_tck() -> u64 {
    // SAFETY: sysconf has no preconditions.
    let t = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if t > 0 {
        t as u64
    } else {
        100
    }
}

/// Fields after the `(comm)` field of `/proc/PID/stat`, starting at field 3 (state).
fn stat_fields(pid: u32) -> Option<Vec<String>> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &s[s.rfind(')')? + 1..];
    Some(rest.split_whitespace().map(str::to_string).collect())
}

/// utime + stime of the whole process (all its threads, live and exited).
pub fn cpu_time(pid: u32) -> Option<Duration> {
    let f = stat_fields(pid)?;
    // Fields 14 and 15 of stat; index 0 here is field 3.
    let ticks: u64 = f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?;
    Some(Duration::from_nanos(ticks * 1_000_000_000 / clk_tck()))
}

/// CLOCK_BOOTTIME now: the clock the kernel's process start times are kept in.
pub fn boottime() -> Duration {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid timespec to write to.
    unsafe { libc::clock_gettime(libc::CLOCK_BOOTTIME, &mut ts) };
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}

/// CLOCK_BOOTTIME at which the process exec'd its first image (field 22 of stat;
/// clock-tick resolution).
pub fn start_boottime(pid: u32) -> Option<Duration> {
    let f = stat_fields(pid)?;
    let ticks: u64 = f.get(19)?.parse().ok()?;
    Some(Duration::from_nanos(ticks * 1_000_000_000 / clk_tck()))
}

/// A `kB` value from `/proc/PID/status` (VmRSS, VmHWM ...).
pub fn status_kib(pid: u32, key: &str) -> Option<u64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    s.lines().find_map(|l| {
        let v = l.strip_prefix(key)?.strip_prefix(':')?;
        v.split_whitespace().next()?.parse().ok()
    })
}

/// Number of threads of the process.
pub fn threads(pid: u32) -> Option<u64> {
    status_kib(pid, "Threads")
}

pub fn alive(pid: u32) -> bool {
    std::path::Path::new(&format!("/proc/{pid}")).exists()
}

/// The CPUs every thread of a process may run on, to put back after [`pin`].
pub struct Affinity(Vec<(libc::pid_t, libc::cpu_set_t)>);

fn set_affinity(tid: libc::pid_t, set: &libc::cpu_set_t) -> bool {
    // SAFETY: `set` is a valid cpu_set_t of the size passed.
    unsafe { libc::sched_setaffinity(tid, std::mem::size_of::<libc::cpu_set_t>(), set) == 0 }
}

/// A set holding `cpu` alone.
pub fn one_cpu(cpu: usize) -> libc::cpu_set_t {
    // SAFETY: an all-zero cpu_set_t is the empty set; CPU_SET writes inside it.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_SET(cpu, &mut set);
        set
    }
}

/// Puts the calling thread on `cpu` alone.
pub fn pin_self(cpu: usize) -> bool {
    set_affinity(0, &one_cpu(cpu))
}

/// Puts every thread of `pid` on `cpu` alone (threads it starts later inherit that);
/// returns what they had.
pub fn pin(pid: u32, cpu: usize) -> Affinity {
    let mut saved = Vec::new();
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return Affinity(saved);
    };
    for t in tasks.flatten() {
        let Some(tid) = t.file_name().to_str().and_then(|s| s.parse().ok()) else {
            continue;
        };
        // SAFETY: an all-zero cpu_set_t is valid; the kernel fills it.
        let mut old: libc::cpu_set_t = unsafe { std::mem::zeroed() };
        // SAFETY: `old` is a valid cpu_set_t of the size passed.
        let got = unsafe {
            libc::sched_getaffinity(tid, std::mem::size_of::<libc::cpu_set_t>(), &mut old)
        };
        if got == 0 && set_affinity(tid, &one_cpu(cpu)) {
            saved.push((tid, old));
        }
    }
    Affinity(saved)
}

impl Affinity {
    /// Gives the threads pinned by [`pin`] their CPUs back (those still alive).
    pub fn restore(self) {
        for (tid, set) in &self.0 {
            set_affinity(*tid, set);
        }
    }
}
