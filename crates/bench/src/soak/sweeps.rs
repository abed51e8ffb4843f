//! The sweeps: our clients listing every device and fetching each one's XML, and at a
//! lower rate the same through `virsh` and libvirt-python.

use std::process::{Command, Stdio};

use protocol::remote::{self as r, proc};
use rpc::client::{CallError, Client};

use super::{volatile, Kind, Shared, CHURN_NAME_PREFIX, UEVENT_NAME_PREFIX};
use crate::measure::list_all;

fn xml_desc(c: &mut Client, name: &str) -> Result<String, CallError> {
    let x: r::StringRet = c.call(
        proc::NODE_DEVICE_GET_XML_DESC,
        &r::NameFlagsArgs {
            name: name.into(),
            flags: 0,
        },
    )?;
    Ok(x.value)
}

pub(super) fn sweeper(s: &Shared) {
    let mut conn: Option<Client> = None;
    while !s.stopping() {
        let Some(c) = s.connected(&mut conn, Kind::Sweep) else {
            continue;
        };
        let names = match list_all(c) {
            Ok(n) => n,
            Err(e) => {
                s.stats.error(Kind::Sweep, format!("LIST_ALL: {e}"));
                conn = None;
                continue;
            }
        };
        s.stats.call(Kind::Sweep, 1);
        for n in &names {
            if s.stopping() {
                break;
            }
            match xml_desc(c, n) {
                Ok(x) if x.starts_with("<device>") => s.stats.call(Kind::Sweep, 1),
                Ok(x) => s.stats.error(Kind::Sweep, format!("XML of {n}: {x:.80}")),
                Err(CallError::Remote(_)) if volatile(n) => s.stats.call(Kind::Sweep, 1),
                Err(CallError::Remote(e)) => s
                    .stats
                    .error(Kind::Sweep, format!("XML of {n}: {}", e.message)),
                Err(e) => {
                    s.stats.error(Kind::Sweep, format!("XML of {n}: {e}"));
                    conn = None;
                    break;
                }
            }
        }
    }
}

fn output(cmd: &mut Command) -> Result<std::process::Output, String> {
    cmd.stdin(Stdio::null())
        .output()
        .map_err(|e| format!("cannot run {cmd:?}: {e}"))
}

/// virsh under coreutils' `timeout`: a hung daemon must not hang the soak.
fn virsh(s: &Shared, args: &[&str]) -> Command {
    let mut c = Command::new("timeout");
    c.args(["300", "virsh", "-q", "-c", &s.uri()]).args(args);
    c
}

/// Runs virsh commands read from its standard input (a command line could not hold a
/// few thousand); returns stdout and stderr. virsh goes on after a failed command and
/// then reports it only on stderr.
fn virsh_script(s: &Shared, script: String) -> Result<(String, String), String> {
    let mut child = virsh(s, &[])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot run virsh: {e}"))?;
    let mut stdin = child.stdin.take().expect("piped");
    // Written from another thread: virsh answers while it reads, and its output would
    // fill the pipe before all the commands are written.
    let writer = std::thread::spawn(move || {
        use std::io::Write;
        let _ = stdin.write_all(script.as_bytes());
    });
    let o = child
        .wait_with_output()
        .map_err(|e| format!("virsh: {e}"))?;
    let _ = writer.join();
    if !o.status.success() {
        return Err(format!(
            "virsh exited with {}: {:.300}",
            o.status,
            String::from_utf8_lossy(&o.stderr).trim()
        ));
    }
    Ok((
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    ))
}

/// libvirt-python's sweep: every device's XML; a device of the load may vanish.
const PY_SWEEP: &str = r#"
import os, sys, libvirt
volatile = tuple(os.environ["VOLATILE"].split(","))
conn = libvirt.open(os.environ["URI"])
n = 0
for d in conn.listAllDevices(0):
    try:
        if not d.XMLDesc(0).startswith("<device>"):
            sys.exit("bad XML for " + d.name())
        n += 1
    except libvirt.libvirtError as e:
        if not d.name().startswith(volatile):
            sys.exit("%s: %s" % (d.name(), e))
print(n)
"#;

/// One sweep through virsh (one process running every `nodedev-dumpxml`) and one through
/// libvirt-python, then a pause.
pub(super) fn real_clients(s: &Shared) {
    while !s.stopping() {
        let list = output(&mut virsh(s, &["nodedev-list", "--all"]));
        match list {
            Ok(o) if o.status.success() => {
                let names: Vec<String> = String::from_utf8_lossy(&o.stdout)
                    .lines()
                    .map(str::trim)
                    .filter(|n| !n.is_empty() && !volatile(n))
                    .map(str::to_owned)
                    .collect();
                s.stats.call(Kind::Real, 1);
                let script: String = names
                    .iter()
                    .map(|n| format!("nodedev-dumpxml {n}\n"))
                    .collect();
                match virsh_script(s, script) {
                    Ok((out, err)) => {
                        let got = out.matches("<device>").count();
                        if got == names.len() && err.trim().is_empty() {
                            s.stats.call(Kind::Real, got as u64);
                        } else {
                            s.stats.error(
                                Kind::Real,
                                format!(
                                    "virsh dumped {got} of {} devices: {:.300}",
                                    names.len(),
                                    err.trim()
                                ),
                            );
                        }
                    }
                    Err(e) => s.stats.error(Kind::Real, e),
                }
            }
            Ok(o) => s.stats.error(
                Kind::Real,
                format!(
                    "virsh nodedev-list: {}",
                    String::from_utf8_lossy(&o.stderr).trim()
                ),
            ),
            Err(e) => s.stats.error(Kind::Real, e),
        }
        if s.stopping() {
            break;
        }
        let py = output(
            Command::new("timeout")
                .args(["300", "/usr/bin/python3", "-c", PY_SWEEP])
                .env("URI", s.uri())
                .env(
                    "VOLATILE",
                    format!("{CHURN_NAME_PREFIX},{UEVENT_NAME_PREFIX}"),
                ),
        );
        match py {
            Ok(o) if o.status.success() => {
                let n: u64 = String::from_utf8_lossy(&o.stdout)
                    .trim()
                    .parse()
                    .unwrap_or(0);
                s.stats.call(Kind::Real, n + 1);
            }
            Ok(o) => s.stats.error(
                Kind::Real,
                format!("python: {}", String::from_utf8_lossy(&o.stderr).trim()),
            ),
            Err(e) => s.stats.error(Kind::Real, e),
        }
        s.pause(s.o.real_every);
    }
}
