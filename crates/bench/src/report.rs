//! The comparison table: reference and ours side by side, ratio ours/reference,
//! and the targets.

use crate::measure::Results;

fn num(r: &Results, k: &str) -> Option<f64> {
    r.get(k)?.parse().ok()
}

struct Row {
    name: String,
    reference: Option<f64>,
    ours: Option<f64>,
    /// Digits after the decimal point.
    prec: usize,
    /// Target for ours/reference, and whether lower is better.
    target: Option<f64>,
}

fn per_call_us(r: &Results, c: usize) -> Option<f64> {
    let calls = num(r, &format!("c{c}.calls"))?;
    (calls > 0.0).then(|| num(r, &format!("c{c}.cpu_s")).map(|s| s * 1e6 / calls))?
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

fn mib(r: &Results, k: &str) -> Option<f64> {
    num(r, k).map(|v| v / 1024.0)
}

fn ms(r: &Results, k: &str) -> Option<f64> {
    num(r, k).map(|v| v * 1e3)
}

/// Renders the table for one tree.
pub fn table(title: &str, reference: &Results, ours: &Results, clients: &[usize]) -> String {
    let mut out = String::new();
    out.push_str(&format!("\n== {title} ==\n"));
    out.push_str(&format!(
        "{:<40} {:>12} {:>12} {:>10} {:>8} {:>4}\n",
        "metric", "reference", "ours", "ours/ref", "target", "met"
    ));
    for r in &rows(reference, ours, clients) {
        out.push_str(&metric_line(r));
    }
    // Context: how much work each phase did, errors, notes.
    for (who, r) in [("reference", reference), ("ours", ours)] {
        out.push_str(&context(who, r, clients));
    }
    out
}

/// The metrics compared, in the table's order.
fn rows(reference: &Results, ours: &Results, clients: &[usize]) -> Vec<Row> {
    let mut rows = vec![
        Row {
            name: "devices listed".into(),
            reference: num(reference, "devices"),
            ours: num(ours, "devices"),
            prec: 0,
            target: None,
        },
        Row {
            name: "start-up to first full answer (ms)".into(),
            reference: ms(reference, "startup.full_from_exec_s"),
            ours: ms(ours, "startup.full_from_exec_s"),
            prec: 0,
            target: Some(0.2),
        },
        Row {
            name: "  same, from spawning the starter (ms)".into(),
            reference: ms(reference, "startup.full_s"),
            ours: ms(ours, "startup.full_s"),
            prec: 1,
            target: None,
        },
        Row {
            name: "VmRSS after the sweeps (MiB)".into(),
            reference: mib(reference, "VmRSS_kib"),
            ours: mib(ours, "VmRSS_kib"),
            prec: 1,
            target: Some(0.25),
        },
        Row {
            name: "VmHWM (MiB)".into(),
            reference: mib(reference, "VmHWM_kib"),
            ours: mib(ours, "VmHWM_kib"),
            prec: 1,
            target: Some(0.25),
        },
    ];
    for &c in clients {
        let who = if c == 1 {
            "1 client".to_string()
        } else {
            format!("{c} clients")
        };
        rows.push(Row {
            name: format!("{who}: calls per second"),
            reference: rate(reference, c),
            ours: rate(ours, c),
            prec: 0,
            target: None,
        });
        rows.push(Row {
            name: format!("{who}: daemon CPU per call (us)"),
            reference: per_call_us(reference, c),
            ours: per_call_us(ours, c),
            prec: 2,
            target: Some(0.1),
        });
    }
    rows
}

/// One metric: both values, their ratio and whether it meets the target.
fn metric_line(r: &Row) -> String {
    let ratio = match (r.ours, r.reference) {
        (Some(o), Some(f)) if f > 0.0 => Some(o / f),
        _ => None,
    };
    let (target, met) = match (r.target, ratio) {
        (Some(t), Some(x)) => (format!("<={t:.2}"), if x <= t { "yes" } else { "NO" }),
        (Some(t), None) => (format!("<={t:.2}"), "-"),
        _ => (String::new(), ""),
    };
    format!(
        "{:<40} {:>12} {:>12} {:>10} {:>8} {:>4}\n",
        r.name,
        fmt(r.reference, r.prec),
        fmt(r.ours, r.prec),
        ratio
            .map(|x| format!("{x:.3}x"))
            .unwrap_or_else(|| "-".into()),
        target,
        met
    )
}

/// The work each phase did, errors and notes, for `who`.
fn context(who: &str, r: &Results, clients: &[usize]) -> String {
    let mut out = String::new();
    let mut parts = Vec::new();
    for &c in clients {
        parts.push(format!(
            "{c}c: {} calls/{} sweeps/{} errors in {}s, cpu {}s",
            r.get(&format!("c{c}.calls")).map_or("-", String::as_str),
            r.get(&format!("c{c}.sweeps")).map_or("-", String::as_str),
            r.get(&format!("c{c}.errors")).map_or("-", String::as_str),
            num(r, &format!("c{c}.wall_s")).map_or("-".into(), |v| format!("{v:.2}")),
            num(r, &format!("c{c}.cpu_s")).map_or("-".into(), |v| format!("{v:.2}")),
        ));
    }
    out.push_str(&format!(
        "  {who}: pid {}, {} threads; first answer {} ms with {} devices ({} polls); {}\n",
        r.get("pid").map_or("-", String::as_str),
        r.get("threads").map_or("-", String::as_str),
        fmt(ms(r, "startup.first_answer_s"), 1),
        r.get("startup.first_count").map_or("-", String::as_str),
        r.get("startup.polls").map_or("-", String::as_str),
        parts.join("; ")
    ));
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
