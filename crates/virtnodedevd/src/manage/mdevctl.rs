//! The `mdevctl` runner: libvirt 11.3's command lines for start, define, stop, undefine,
//! modify and list, and how their failures read.

use std::collections::BTreeMap;

use nodedev::parse;
use nodedev::HostRoot;
use tracing::{debug, info, warn};

use super::ManageError;
use crate::driver::Definition;

/// The `mdevctl` program this daemon drives, if any: `VIRTNODEDEVD_MDEVCTL` names it (set
/// but empty: none; tests point it at a wrapper that runs Debian's mdevctl in a private
/// mount namespace over the fake tree); otherwise `mdevctl` from `PATH`, but only when the
/// daemon reads the real host: with a fake root, the host's mdevctl would act on the real
/// `/sys` and `/etc/mdevctl.d`.
pub struct Mdevctl(std::path::PathBuf);

static MDEVCTL: std::sync::OnceLock<Option<Mdevctl>> = std::sync::OnceLock::new();

/// What one mdevctl run printed.
pub(super) struct MdevctlOut {
    pub ok: bool,
    pub stdout: String,
    pub stderr: String,
}

impl MdevctlOut {
    /// libvirt's MDEVCTL_ERROR: stderr, or "Unknown error".
    pub fn error(&self) -> String {
        if self.stderr.is_empty() {
            "Unknown error".to_owned()
        } else {
            self.stderr.clone()
        }
    }
}

impl Mdevctl {
    pub fn get(root: &HostRoot) -> Option<&'static Mdevctl> {
        MDEVCTL
            .get_or_init(|| {
                let found = match std::env::var_os("VIRTNODEDEVD_MDEVCTL") {
                    Some(p) if p.is_empty() => None,
                    Some(p) => Some(std::path::PathBuf::from(p)),
                    None if root.path() == std::path::Path::new("/") => {
                        std::env::var_os("PATH").and_then(|path| {
                            std::env::split_paths(&path)
                                .map(|d| d.join("mdevctl"))
                                .find(|p| {
                                    use std::os::unix::fs::PermissionsExt;
                                    p.metadata()
                                        .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
                                })
                        })
                    }
                    None => None,
                };
                match &found {
                    Some(p) => info!("managing mediated devices with {}", p.display()),
                    None => info!("mdevctl not used: managing mediated devices through sysfs and mdevctl's store"),
                }
                found.map(Mdevctl)
            })
            .as_ref()
    }

    pub(super) fn run(
        &self,
        args: &[&str],
        input: Option<&str>,
    ) -> Result<MdevctlOut, ManageError> {
        use std::io::Write;
        use std::process::{Command, Stdio};
        debug!(?args, "running mdevctl");
        let mut child = Command::new(&self.0)
            .args(args)
            .stdin(if input.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| ManageError::internal(format!("Cannot run {}: {e}", self.0.display())))?;
        if let (Some(text), Some(mut stdin)) = (input, child.stdin.take()) {
            let _ = stdin.write_all(text.as_bytes());
        }
        let out = child
            .wait_with_output()
            .map_err(|e| ManageError::internal(format!("Cannot run {}: {e}", self.0.display())))?;
        Ok(MdevctlOut {
            ok: out.status.success(),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        })
    }

    /// `mdevctl start|define --parent ADDR --jsonfile /dev/stdin [--uuid UUID]`; the UUID
    /// mdevctl made up when none was given.
    pub(super) fn create_or_define(
        &self,
        sub: &str,
        what: &str,
        addr: &str,
        m: &parse::MdevDef,
    ) -> Result<Option<String>, ManageError> {
        let json = super::store::to_json_compact(&m.type_id, false, &m.attrs);
        let parent = format!("--parent={addr}");
        let uuid = m.uuid.as_ref().map(|u| format!("--uuid={u}"));
        let mut args = vec![sub, &parent, "--jsonfile=/dev/stdin"];
        if let Some(u) = &uuid {
            args.push(u);
        }
        let out = self.run(&args, Some(&json))?;
        if !out.ok {
            return Err(ManageError::internal(format!(
                "Unable to {what} mediated device: {}",
                out.error()
            )));
        }
        let made = out.stdout.trim();
        Ok((!made.is_empty()).then(|| made.to_owned()))
    }

    /// virMdevctlModify: `mdevctl modify --parent=ADDR --jsonfile=/dev/stdin --uuid=UUID
    /// [--defined] [--live]` with `json` on stdin, after libvirt 11.3's probe of whether this
    /// mdevctl knows `modify --defined --live --jsonfile` (1.3.0 and later).
    pub(super) fn modify(
        &self,
        addr: &str,
        uuid: &str,
        json: &str,
        defined: bool,
        live: bool,
    ) -> Result<(), ManageError> {
        let probe = self.run(
            &["modify", "--defined", "--live", "--jsonfile", "b", "--help"],
            None,
        )?;
        if !probe.ok {
            warn!("Installed mdevctl version does not support modify with options jsonfile, defined and live");
            return Err(ManageError::OperationUnsupported(
                "Unable to modify mediated device: modify unsupported".into(),
            ));
        }
        let parent = format!("--parent={addr}");
        let uuid = format!("--uuid={uuid}");
        let mut args = vec!["modify", &parent, "--jsonfile=/dev/stdin", &uuid];
        if defined {
            args.push("--defined");
        }
        if live {
            args.push("--live");
        }
        let out = self.run(&args, Some(json))?;
        if !out.ok {
            return Err(ManageError::internal(format!(
                "Unable to modify mediated device: {}",
                out.error()
            )));
        }
        Ok(())
    }

    /// `mdevctl list --dumpjson --defined`.
    pub(super) fn list_defined(&self) -> Result<BTreeMap<String, Definition>, String> {
        let out = self
            .run(&["list", "--dumpjson", "--defined"], None)
            .map_err(|e| e.to_string())?;
        if !out.ok {
            return Err(out.stderr);
        }
        // libvirt 11.3 takes empty output for no definitions (9.0 failed on it).
        if out.stdout.trim().is_empty() {
            return Ok(BTreeMap::new());
        }
        let defs = super::store::parse_list(&out.stdout)
            .ok_or_else(|| "mdevctl JSON response contains no devices".to_owned())?;
        Ok(defs.into_iter().map(|d| (d.name(), d)).collect())
    }
}
