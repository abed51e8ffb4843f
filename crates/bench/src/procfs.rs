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
