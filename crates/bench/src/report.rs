//! The comparison table: every measured server side by side (the reference first, ours,
//! the floor), ours as a ratio to the reference and to the floor, and the targets.

use crate::measure::Results;

fn num(r: &Results, k: &str) -> Option<f64> {
    r.get(k)?.parse().ok()
}

/// One server's results under its column name.
pub struct Column {
    pub name: String,
    pub results: Results,
}

/// Which columns the ratios compare.
pub struct Roles {
    pub reference: Option<usize>,
    pub ours: Option<usize>,
    pub floor: Option<usize>,
}

struct Row {
    name: String,
    value: fn(&Results, usize) -> Option<f64>,
    /// Client count for the per-phase metrics.
    clients: usize,
    prec: usize,
    /// Target for ours/reference.
    target_ref: Option<f64>,
    /// Target for ours/floor.
    target_floor: Option<f64>,
}

/// Daemon CPU per GET_XML_DESC in the phase of `c` clients whose keys start with `prefix`:
/// "" for nodedev-bench's own clients, "py." for libvirt-python's.
fn phase_per_call_us(r: &Results, prefix: &str, c: usize) -> Option<f64> {
    let calls = num(r, &format!("{prefix}c{c}.calls"))?;
    (calls > 0.0).then(|| num(r, &format!("{prefix}c{c}.cpu_s")).map(|s| s * 1e6 / calls))?
}

/// A sweep (LIST_ALL, then GET_XML_DESC of each of the n devices) costs the LIST_ALL and
/// n XML calls over n + 1 calls.
fn sweep_us(r: &Results, xml_us: Option<f64>) -> Option<f64> {
    let n = num(r, "devices")?;
    let list_us = num(r, "list_cpu_s")? * 1e6;
    Some((list_us + n * xml_us?) / (n + 1.0))
}

fn per_call_us(r: &Results, c: usize) -> Option<f64> {
    phase_per_call_us(r, "", c)
}

fn sweep_per_call_us(r: &Results, c: usize) -> Option<f64> {
    sweep_us(r, per_call_us(r, c))
}

/// GET_XML_DESC from libvirt-python clients.
fn python_per_call_us(r: &Results, c: usize) -> Option<f64> {
    phase_per_call_us(r, "py.", c)
}

/// The issue's own measure: a sweep by libvirt-python clients.
fn python_sweep_per_call_us(r: &Results, c: usize) -> Option<f64> {
    sweep_us(r, python_per_call_us(r, c))
}

fn rate(r: &Results, c: usize) -> Option<f64> {
    let calls = num(r, &format!("c{c}.calls"))?;
    let wall = num(r, &format!("c{c}.wall_s"))?;
    (wall > 0.0).then_some(calls / wall)
}

fn fmt(v: Option<f64>, prec: usize) -> String {
    match v {
        Some(v) => format!("{v:.prec$}"),
        None => "-".into(),
    }
}

fn ratio(a: Option<f64>, b: Option<f64>) -> Option<f64> {
    match (a, b) {
        (Some(a), Some(b)) if b > 0.0 => Some(a / b),
        _ => None,
    }
}

/// The metrics, in the table's order.
fn rows(clients: &[usize], host: bool) -> Vec<Row> {
    let row = |name: &str, value, prec, target_ref| Row {
        name: name.into(),
        value,
        clients: 0,
        prec,
        target_ref,
        target_floor: None,
    };
    let mut rows = vec![
        row("devices listed", |r, _| num(r, "devices"), 0, None),
        row(
            "start-up to first full answer (ms)",
            |r, _| num(r, "startup.full_from_exec_s").map(|v| v * 1e3),
            0,
            Some(0.1),
        ),
        row(
            "  same, from spawning the starter (ms)",
            |r, _| num(r, "startup.full_s").map(|v| v * 1e3),
            0,
            None,
        ),
        row(
            "LIST_ALL: one call, wall (ms, median)",
            |r, _| num(r, "list_s").map(|v| v * 1e3),
            2,
            None,
        ),
        row(
            "LIST_ALL: daemon CPU per call (ms)",
            |r, _| num(r, "list_cpu_s").map(|v| v * 1e3),
            2,
            None,
        ),
        row(
            "syscalls per GET_XML_DESC (strace -c -f)",
            |r, _| num(r, "syscalls.per_call"),
            2,
            None,
        ),
        row(
            "VmRSS after the sweeps (MiB)",
            |r, _| num(r, "VmRSS_kib").map(|v| v / 1024.0),
            1,
            Some(0.2),
        ),
        row(
            "VmHWM (MiB)",
            |r, _| num(r, "VmHWM_kib").map(|v| v / 1024.0),
            1,
            Some(0.2),
        ),
    ];
    let who = |c: usize| {
        if c == 1 {
            "1 client".to_string()
        } else {
            format!("{c} clients")
        }
    };
    type Value = fn(&Results, usize) -> Option<f64>;
    let phase = |name: String, value: Value, clients: usize, prec: usize, targeted: bool| Row {
        name,
        value,
        clients,
        prec,
        target_ref: targeted.then_some(0.1),
        target_floor: (targeted && host).then_some(3.0),
    };
    for &c in clients {
        let who = who(c);
        rows.push(phase(
            format!("XML, {who}: calls per second"),
            rate,
            c,
            0,
            false,
        ));
        rows.push(phase(
            format!("XML, {who}: daemon CPU/call (us)"),
            per_call_us,
            c,
            2,
            true,
        ));
        rows.push(phase(
            format!("sweep, {who}: daemon CPU/call (us)"),
            sweep_per_call_us,
            c,
            2,
            true,
        ));
    }
    for &c in clients {
        let who = who(c);
        rows.push(phase(
            format!("python XML, {who}: CPU/call (us)"),
            python_per_call_us,
            c,
            2,
            false,
        ));
        rows.push(phase(
            format!("python sweep, {who}: CPU/call (us)"),
            python_sweep_per_call_us,
            c,
            2,
            true,
        ));
    }
    rows
}

fn target_cell(target: Option<f64>, x: Option<f64>) -> String {
    match (target, x) {
        (Some(t), Some(x)) => format!("{}{t}", if x <= t { "ok<=" } else { "NO<=" }),
        (Some(t), None) => format!("<={t}"),
        _ => String::new(),
    }
}

/// Renders the table for one tree. `host` adds the target against the floor, which the
/// issue sets on this host only.
pub fn table(title: &str, cols: &[Column], roles: &Roles, clients: &[usize], host: bool) -> String {
    let mut out = format!("\n== {title} ==\n{:<40}", "metric");
    for c in cols {
        out.push_str(&format!(" {:>11}", c.name));
    }
    out.push_str(&format!(
        " {:>9} {:>10} {:>10} {:>10}\n",
        "ours/ref", "ours/floor", "ref target", "fl target"
    ));
    let get =
        |i: Option<usize>, row: &Row| i.and_then(|i| (row.value)(&cols[i].results, row.clients));
    for row in rows(clients, host) {
        out.push_str(&format!("{:<40}", row.name));
        for c in cols {
            out.push_str(&format!(
                " {:>11}",
                fmt((row.value)(&c.results, row.clients), row.prec)
            ));
        }
        let ours = get(roles.ours, &row);
        let to_ref = ratio(ours, get(roles.reference, &row));
        let to_floor = ratio(ours, get(roles.floor, &row));
        let x = |v: Option<f64>| v.map_or("-".into(), |v| format!("{v:.3}x"));
        out.push_str(&format!(
            " {:>9} {:>10} {:>10} {:>10}\n",
            x(to_ref),
            x(to_floor),
            target_cell(row.target_ref, to_ref),
            target_cell(row.target_floor, to_floor),
        ));
    }
    for c in cols {
        out.push_str(&context(&c.name, &c.results, clients));
    }
    out
}

/// The work each phase did, errors and notes, for `who`.
fn context(who: &str, r: &Results, clients: &[usize]) -> String {
    let mut parts = Vec::new();
    for &c in clients {
        parts.push(format!(
            "{c}c: {} XML calls/{} passes/{} errors in {}s, cpu {}s",
            r.get(&format!("c{c}.calls")).map_or("-", String::as_str),
            r.get(&format!("c{c}.sweeps")).map_or("-", String::as_str),
            r.get(&format!("c{c}.errors")).map_or("-", String::as_str),
            num(r, &format!("c{c}.wall_s")).map_or("-".into(), |v| format!("{v:.2}")),
            num(r, &format!("c{c}.cpu_s")).map_or("-".into(), |v| format!("{v:.2}")),
        ));
    }
    let mut out = format!(
        "  {who}: pid {}, {} threads; first answer {} ms with {} devices ({} polls); {}\n",
        r.get("pid").map_or("-", String::as_str),
        r.get("threads").map_or("-", String::as_str),
        fmt(num(r, "startup.first_answer_s").map(|v| v * 1e3), 1),
        r.get("startup.first_count").map_or("-", String::as_str),
        r.get("startup.polls").map_or("-", String::as_str),
        parts.join("; ")
    );
    let python: Vec<String> = clients
        .iter()
        .filter_map(|&c| {
            Some(format!(
                "{c}c: {} XML calls/{} errors in {}s, cpu {}s",
                r.get(&format!("py.c{c}.calls"))?,
                r.get(&format!("py.c{c}.errors"))
                    .map_or("-", String::as_str),
                num(r, &format!("py.c{c}.wall_s")).map_or("-".into(), |v| format!("{v:.2}")),
                num(r, &format!("py.c{c}.cpu_s")).map_or("-".into(), |v| format!("{v:.2}")),
            ))
        })
        .collect();
    if !python.is_empty() {
        out.push_str(&format!(
            "  {who}: libvirt-python sweeps: {}\n",
            python.join("; ")
        ));
    }
    if let Some(t) = r.get("syscalls.top") {
        out.push_str(&format!("  {who}: syscalls per GET_XML_DESC: {t}\n"));
    }
    if let Some(n) = r.get("startup.note") {
        out.push_str(&format!("  {who}: NOTE {n}\n"));
    }
    if let (Some(e), Some(d)) = (r.get("expected"), r.get("devices")) {
        if e != d {
            out.push_str(&format!(
                "  {who}: NOTE lists {d} devices, the generated tree has {e}\n"
            ));
        }
    }
    out
}

/// Memory per device between two trees of the same server: (RSS of the big one - RSS
/// of the small one) / (devices of the big - devices of the small), and RSS / devices.
pub fn bytes_per_device(small: &Results, big: &Results) -> String {
    let rss = |r: &Results| num(r, "VmRSS_kib").map(|v| v * 1024.0);
    let devs = |r: &Results| num(r, "devices");
    let marginal = match (rss(small), rss(big), devs(small), devs(big)) {
        (Some(a), Some(b), Some(m), Some(n)) if n > m => Some((b - a) / (n - m)),
        _ => None,
    };
    let overall = ratio(rss(big), devs(big));
    format!(
        "bytes per device: {} marginal (RSS growth / device growth), {} overall (RSS / devices)\n",
        fmt(marginal, 0),
        fmt(overall, 0)
    )
}
