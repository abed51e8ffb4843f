//! System calls a daemon makes per GET_XML_DESC, counted by `strace -c -f` attached to
//! every thread of the running daemon while one client makes N calls.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::measure::{list_all, open, xml_desc, Results};

/// `(calls, syscall)` rows of `strace -c` output, the `total` row included.
fn parse_summary(text: &str) -> Vec<(u64, String)> {
    text.lines()
        .filter_map(|l| {
            let t: Vec<&str> = l.split_whitespace().collect();
            if !(5..=6).contains(&t.len()) {
                return None;
            }
            let calls = t[3].parse().ok()?;
            t[0].parse::<f64>().ok()?;
            Some((calls, t[t.len() - 1].to_string()))
        })
        .collect()
}

/// Attaches strace to `pid`, makes `calls` GET_XML_DESC calls cycling over the listed
/// devices (after one unmeasured pass over the first `calls`), and returns
/// `syscalls.per_call` and `syscalls.<name>` (per call, the most frequent ones).
pub fn count(socket: &Path, pid: u32, calls: usize) -> Result<Results, String> {
    let mut c = open(socket, Duration::from_secs(120))?;
    let names = list_all(&mut c).map_err(|e| format!("LIST_ALL: {e}"))?;
    if names.is_empty() {
        return Err("no devices listed".into());
    }
    for n in names.iter().cycle().take(calls.min(names.len())) {
        let _ = xml_desc(&mut c, n);
    }
    let out = tempfile_path(pid);
    let mut strace = Command::new("strace")
        .args(["-c", "-f", "-o"])
        .arg(&out)
        .args(["-p", &pid.to_string()])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot run strace: {e}"))?;
    // strace says nothing on stdout once attached; give it time to reach every thread.
    std::thread::sleep(Duration::from_millis(1500));
    let t0 = Instant::now();
    for n in names.iter().cycle().take(calls) {
        xml_desc(&mut c, n).map_err(|e| format!("GET_XML_DESC {n}: {e}"))?;
    }
    let wall = t0.elapsed();
    // SAFETY: kill has no memory-safety preconditions.
    unsafe { libc::kill(strace.id() as i32, libc::SIGINT) };
    let _ = strace.wait();
    let text = std::fs::read_to_string(&out).map_err(|e| format!("{}: {e}", out.display()))?;
    let _ = std::fs::remove_file(&out);
    let rows = parse_summary(&text);
    let total = rows
        .iter()
        .find(|r| r.1 == "total")
        .ok_or_else(|| format!("no total in strace's summary:\n{text}"))?;
    let mut r = Results::new();
    let per = |n: u64| format!("{:.2}", n as f64 / calls as f64);
    r.insert("syscalls.calls".into(), calls.to_string());
    r.insert(
        "syscalls.wall_s".into(),
        format!("{:.3}", wall.as_secs_f64()),
    );
    r.insert("syscalls.per_call".into(), per(total.0));
    let mut top: Vec<_> = rows.iter().filter(|r| r.1 != "total").collect();
    top.sort_by_key(|r| std::cmp::Reverse(r.0));
    let list: Vec<String> = top
        .iter()
        .filter(|(n, _)| *n as f64 / calls as f64 >= 0.05)
        .map(|(n, s)| format!("{s} {}", per(*n)))
        .collect();
    r.insert("syscalls.top".into(), list.join(", "));
    Ok(r)
}

fn tempfile_path(pid: u32) -> std::path::PathBuf {
    std::env::temp_dir().join(format!("nodedev-bench-strace-{pid}-{}", std::process::id()))
}

#[cfg(test)]
mod tests {
    use super::parse_summary;

    #[test]
    fn strace_summary_rows_with_and_without_errors() {
        let text = "\
% time     seconds  usecs/call     calls    errors syscall
------ ----------- ----------- --------- --------- ----------------
 60.00    0.000060           2        30           read
 40.00    0.000040           1        40         4 openat
------ ----------- ----------- --------- --------- ----------------
100.00    0.000100           1        70         4 total
";
        let rows = parse_summary(text);
        assert_eq!(
            rows,
            vec![
                (30, "read".to_string()),
                (40, "openat".to_string()),
                (70, "total".to_string())
            ]
        );
    }
}
