//! mdevctl's on-disk store of persistent mediated devices: one JSON file per device,
//! `<root>/etc/mdevctl.d/<parent address>/<uuid>`, as mdevctl writes it:
//!
//! ```json
//! {
//!   "mdev_type": "nvidia-222",
//!   "start": "auto",
//!   "attrs": [
//!     {
//!       "name": "value"
//!     }
//!   ]
//! }
//! ```
//!
//! Writes are atomic (temporary file, fsync, rename, fsync of the directory), so a daemon
//! killed at any point leaves every definition either old or new, never half written;
//! `tests/crash.rs` kills the daemon at each of those steps (see `fault.rs`).

use std::collections::BTreeMap;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use nodedev::HostRoot;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tracing::warn;

use crate::driver::Definition;
use crate::fault;

pub fn dir(root: &HostRoot) -> PathBuf {
    root.join("/etc/mdevctl.d")
}

/// Every valid definition in the store, by device name.
pub fn load(root: &HostRoot) -> BTreeMap<String, Definition> {
    let mut out = BTreeMap::new();
    let Ok(parents) = fs::read_dir(dir(root)) else {
        return out;
    };
    for p in parents.flatten() {
        let parent = p.file_name().to_string_lossy().into_owned();
        let Ok(files) = fs::read_dir(p.path()) else {
            continue;
        };
        for f in files.flatten() {
            let uuid = f.file_name().to_string_lossy().into_owned();
            if nodedev::parse::parse_uuid(&uuid).as_deref() != Some(uuid.as_str()) {
                // Temporary files and strangers are never definitions.
                remove_stale_temporary(&p.path(), &uuid);
                continue;
            }
            let Some(text) = read_definition(&f.path()) else {
                warn!(
                    "ignoring mdevctl definition {}: not a regular file of at most {} bytes",
                    f.path().display(),
                    DEFINITION_MAX
                );
                continue;
            };
            match from_json(&text) {
                Some((type_id, autostart, attrs)) => {
                    let d = Definition {
                        parent_addr: parent.clone(),
                        uuid,
                        type_id,
                        attrs,
                        autostart,
                    };
                    out.insert(d.name(), d);
                }
                None => warn!(
                    "ignoring unparsable mdevctl definition {}",
                    f.path().display()
                ),
            }
        }
    }
    out
}

/// The largest definition file read; mdevctl's are a few hundred bytes.
const DEFINITION_MAX: u64 = 1 << 20;

/// A definition file's text. Anything but a regular file of at most [`DEFINITION_MAX`]
/// bytes is refused, and nothing in the store can block the reader (a FIFO would).
fn read_definition(path: &Path) -> Option<String> {
    use std::io::Read;
    use std::os::unix::fs::OpenOptionsExt;
    let f = fs::OpenOptions::new()
        .read(true)
        .custom_flags(nix::libc::O_NONBLOCK)
        .open(path)
        .ok()?;
    let meta = f.metadata().ok()?;
    if !meta.is_file() || meta.len() > DEFINITION_MAX {
        return None;
    }
    let mut text = String::new();
    f.take(DEFINITION_MAX).read_to_string(&mut text).ok()?;
    Some(text)
}

// A failed directory sync is not reported: the rename or unlink is already visible to
// every reader (mdevctl, this daemon's watcher), so failing the call would contradict
// what they see.
fn fsync_dir(d: &Path) {
    if let Ok(f) = fs::File::open(d) {
        let _ = f.sync_all();
    }
}

/// Creates the store directory and the parent's directory as needed, each made durable
/// in its own parent before a definition goes in.
fn make_dirs(top: &Path, pdir: &Path) -> std::io::Result<()> {
    for d in [top, pdir] {
        let made = match fs::create_dir(d) {
            Ok(()) => true,
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => false,
            // No `etc/` (a bare test root): made whole, as before.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                fs::create_dir_all(d)?;
                true
            }
            Err(e) => return Err(e),
        };
        if made {
            fault::point(fault::STORE_MKDIR);
            if let Some(up) = d.parent() {
                fsync_dir(up);
            }
        }
    }
    Ok(())
}

/// The name of the temporary file a write of `uuid` uses. The process id keeps a
/// daemon from truncating a file another process is writing; it also tells
/// [`remove_stale_temporary`] whose it is.
fn temporary(uuid: &str) -> String {
    format!(".{uuid}.tmp{}", std::process::id())
}

/// Removes `name` in `pdir` when it is a temporary file left by a write that never
/// finished (a process killed before its rename); anything else stays.
fn remove_stale_temporary(pdir: &Path, name: &str) {
    let Some((uuid, pid)) = name.strip_prefix('.').and_then(|n| n.split_once(".tmp")) else {
        return;
    };
    if nodedev::parse::parse_uuid(uuid).as_deref() != Some(uuid)
        || pid.is_empty()
        || !pid.bytes().all(|c| c.is_ascii_digit())
    {
        return;
    }
    // Our own writes hold the store lock, as does every caller of `load`: a temporary of
    // this process is never in flight here, but leave it alone all the same.
    if pid != std::process::id().to_string() {
        match fs::remove_file(pdir.join(name)) {
            Ok(()) => warn!(
                "removed {}, left by an interrupted write",
                pdir.join(name).display()
            ),
            Err(e) => warn!("cannot remove {}: {e}", pdir.join(name).display()),
        }
    }
}

/// Writes (or replaces) one definition atomically: a temporary file, written and synced,
/// renamed over the definition, then the directory synced. A kill before the rename
/// leaves the old definition (or none) and a stray temporary that [`load`] skips and
/// removes; from the rename on, the new one.
pub fn write(root: &HostRoot, d: &Definition) -> std::io::Result<()> {
    let top = dir(root);
    let pdir = top.join(&d.parent_addr);
    make_dirs(&top, &pdir)?;
    let tmp = pdir.join(temporary(&d.uuid));
    let done = (|| {
        let mut f = fs::File::create(&tmp)?;
        fault::point(fault::STORE_CREATED);
        f.write_all(to_json(d).as_bytes())?;
        fault::point(fault::STORE_WRITTEN);
        f.sync_all()?;
        fault::point(fault::STORE_FSYNCED);
        drop(f);
        fs::rename(&tmp, pdir.join(&d.uuid))
    })();
    if let Err(e) = done {
        let _ = fs::remove_file(&tmp);
        return Err(e);
    }
    fault::point(fault::STORE_RENAMED);
    fsync_dir(&pdir);
    fault::point(fault::STORE_DIR_FSYNCED);
    Ok(())
}

/// Removes one definition; the parent directory stays, as with mdevctl.
pub fn remove(root: &HostRoot, d: &Definition) -> std::io::Result<()> {
    let pdir = dir(root).join(&d.parent_addr);
    match fs::remove_file(pdir.join(&d.uuid)) {
        Ok(()) => {
            fault::point(fault::STORE_REMOVED);
            fsync_dir(&pdir);
            fault::point(fault::STORE_DIR_FSYNCED);
            Ok(())
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e),
    }
}

/// One stored configuration, in mdevctl's field order.
#[derive(Serialize, Deserialize)]
struct Config {
    mdev_type: String,
    start: String,
    /// One single-key object per attribute, in order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    attrs: Vec<serde_json::Map<String, Value>>,
}

impl Config {
    fn new(type_id: &str, autostart: bool, attrs: &[(String, String)]) -> Config {
        Config {
            mdev_type: type_id.to_owned(),
            start: if autostart { "auto" } else { "manual" }.to_owned(),
            attrs: attrs
                .iter()
                .map(|(n, v)| std::iter::once((n.clone(), Value::String(v.clone()))).collect())
                .collect(),
        }
    }
}

/// The configuration as mdevctl writes it to its store (serde_json's pretty form, with
/// an `attrs` array even when empty).
pub fn to_json(d: &Definition) -> String {
    let c = Config::new(&d.type_id, d.autostart, &d.attrs);
    let mut v = serde_json::to_value(&c).expect("a configuration is plain JSON");
    v.as_object_mut()
        .expect("a configuration is an object")
        .entry("attrs")
        .or_insert_with(|| Value::Array(Vec::new()));
    serde_json::to_string_pretty(&v).expect("a configuration is plain JSON")
}

/// The configuration as libvirt hands it to `mdevctl define/start --jsonfile /dev/stdin`
/// (`nodeDeviceDefToMdevctlConfig`: compact, `attrs` only when there are some).
pub fn to_json_compact(type_id: &str, autostart: bool, attrs: &[(String, String)]) -> String {
    serde_json::to_string(&Config::new(type_id, autostart, attrs))
        .expect("a configuration is plain JSON")
}

/// The definitions in the output of `mdevctl list --defined --dumpjson`
/// (`nodeDeviceParseMdevctlJSON`): `[]`, or `[{"<parent>": [{"<uuid>": {config}}, ...], ...}]`.
/// `None` when the output does not have that shape. serde_json bounds the nesting it
/// follows (128 levels), so no output can exhaust the stack.
pub fn parse_list(text: &str) -> Option<Vec<Definition>> {
    let top: Vec<serde_json::Map<String, Value>> = serde_json::from_str(text).ok()?;
    let mut out = Vec::new();
    match top.as_slice() {
        [] => {}
        [parents] => {
            for (parent, children) in parents {
                for child in children.as_array()? {
                    let kv = child.as_object()?;
                    let (uuid, props) = kv.iter().next().filter(|_| kv.len() == 1)?;
                    let props = props.as_object()?;
                    let type_id = props
                        .get("mdev_type")
                        .and_then(Value::as_str)
                        .unwrap_or_default()
                        .to_owned();
                    out.push(Definition {
                        parent_addr: parent.clone(),
                        uuid: uuid.clone(),
                        type_id,
                        attrs: attrs_of(props.get("attrs"))?,
                        autostart: props.get("start").and_then(Value::as_str) == Some("auto"),
                    });
                }
            }
        }
        _ => return None,
    }
    Some(out)
}

/// `(mdev_type, autostart, attrs)` of a stored configuration.
#[allow(clippy::type_complexity)]
pub fn from_json(text: &str) -> Option<(String, bool, Vec<(String, String)>)> {
    let fields: serde_json::Map<String, Value> = serde_json::from_str(text).ok()?;
    let t = fields.get("mdev_type")?.as_str()?;
    let auto = fields.get("start").and_then(Value::as_str) == Some("auto");
    let attrs = attrs_of(fields.get("attrs"))?;
    Some((t.to_owned(), auto, attrs))
}

/// mdevctl's `attrs`: an array of one-key objects with string values, in order; `None`
/// when it has any other shape.
fn attrs_of(v: Option<&Value>) -> Option<Vec<(String, String)>> {
    let Some(Value::Array(a)) = v else {
        return Some(Vec::new());
    };
    a.iter()
        .map(|item| {
            let kv = item.as_object().filter(|kv| kv.len() == 1)?;
            let (k, v) = kv.iter().next()?;
            Some((k.clone(), v.as_str()?.to_owned()))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_round_trip() {
        let d = Definition {
            parent_addr: "0000:00:02.0".into(),
            uuid: "4b20d080-1b54-4048-85b3-a6a62d165c01".into(),
            type_id: "i915-GVTg_V5_4".into(),
            attrs: vec![("a\"b".into(), "1".into()), ("c".into(), "x y".into())],
            autostart: true,
        };
        let j = to_json(&d);
        assert_eq!(
            from_json(&j),
            Some((d.type_id.clone(), true, d.attrs.clone()))
        );
        assert_eq!(
            from_json("{\"mdev_type\":\"t\",\"start\":\"manual\"}"),
            Some(("t".into(), false, vec![]))
        );
        assert_eq!(from_json("{\"mdev_type\":\"t\""), None);
        assert_eq!(
            to_json_compact("t", false, &[("x".into(), "1".into())]),
            "{\"mdev_type\":\"t\",\"start\":\"manual\",\"attrs\":[{\"x\":\"1\"}]}"
        );
        assert_eq!(
            to_json_compact("t", true, &[]),
            "{\"mdev_type\":\"t\",\"start\":\"auto\"}"
        );
    }

    #[test]
    fn stored_form_is_mdevctls_pretty_json() {
        let mut d = Definition {
            parent_addr: "0000:00:02.0".into(),
            uuid: "4b20d080-1b54-4048-85b3-a6a62d165c01".into(),
            type_id: "nvidia-222".into(),
            attrs: vec![("name".into(), "va\"lue".into()), ("b".into(), "2".into())],
            autostart: true,
        };
        assert_eq!(
            to_json(&d),
            "{\n  \"mdev_type\": \"nvidia-222\",\n  \"start\": \"auto\",\n  \"attrs\": [\n    {\n      \"name\": \"va\\\"lue\"\n    },\n    {\n      \"b\": \"2\"\n    }\n  ]\n}"
        );
        d.attrs.clear();
        d.autostart = false;
        assert_eq!(
            to_json(&d),
            "{\n  \"mdev_type\": \"nvidia-222\",\n  \"start\": \"manual\",\n  \"attrs\": []\n}"
        );
    }

    #[test]
    fn hostile_json_is_refused_without_exhausting_the_stack() {
        let deep = "[".repeat(1_000_000);
        assert_eq!(parse_list(&deep), None);
        let deep_obj = format!("{{\"mdev_type\":\"t\",\"attrs\":{}", "[".repeat(1_000_000));
        assert_eq!(from_json(&deep_obj), None);
        assert_eq!(
            from_json("{\"mdev_type\":\"t\",\"attrs\":[{\"a\":1}]}"),
            None
        );
        assert_eq!(
            from_json("{\"mdev_type\":\"t\",\"attrs\":[{\"a\":\"1\",\"b\":\"2\"}]}"),
            None
        );
    }

    #[test]
    fn load_removes_only_stale_temporaries() {
        let tmp = tempfile::tempdir().unwrap();
        let root = HostRoot::new(tmp.path());
        let d = Definition {
            parent_addr: "0000:00:02.0".into(),
            uuid: "4b20d080-1b54-4048-85b3-a6a62d165c01".into(),
            type_id: "i915-GVTg_V5_4".into(),
            attrs: vec![],
            autostart: false,
        };
        write(&root, &d).unwrap();
        let pdir = dir(&root).join(&d.parent_addr);
        let stale = format!(".{}.tmp1", d.uuid);
        let others = [
            temporary(&d.uuid),
            format!(".{}.tmp", d.uuid),
            ".notes.tmp1".to_owned(),
            "README".to_owned(),
        ];
        for n in others.iter().chain([&stale]) {
            fs::write(pdir.join(n), "{").unwrap();
        }
        let loaded = load(&root);
        assert_eq!(loaded.values().collect::<Vec<_>>(), vec![&d]);
        assert!(!pdir.join(&stale).exists());
        for n in &others {
            assert!(pdir.join(n).exists(), "{n}");
        }
    }

    #[test]
    fn fifos_and_oversized_files_in_the_store_are_skipped_without_blocking() {
        let tmp = tempfile::tempdir().unwrap();
        let root = HostRoot::new(tmp.path());
        let pdir = dir(&root).join("0000:00:02.0");
        fs::create_dir_all(&pdir).unwrap();
        nix::unistd::mkfifo(
            &pdir.join("4b20d080-1b54-4048-85b3-a6a62d165c01"),
            nix::sys::stat::Mode::from_bits_truncate(0o600),
        )
        .unwrap();
        let big = format!(
            "{{\"mdev_type\":\"t\",\"start\":\"auto\",\"x\":\"{}\"}}",
            "y".repeat(DEFINITION_MAX as usize)
        );
        fs::write(pdir.join("5b20d080-1b54-4048-85b3-a6a62d165c01"), big).unwrap();
        assert!(load(&root).is_empty());
    }

    #[test]
    fn mdevctl_list() {
        assert_eq!(parse_list("[]\n"), Some(vec![]));
        let l = parse_list(
            r#"[{"0000:af:00.0": [{"11111111-2222-4333-8444-555555555555":
                {"mdev_type": "nvidia-222", "start": "auto", "attrs": [{"x": "1"}]}}]}]"#,
        )
        .unwrap();
        assert_eq!(l.len(), 1);
        assert_eq!(l[0].parent_addr, "0000:af:00.0");
        assert!(l[0].autostart);
        assert_eq!(l[0].attrs, vec![("x".to_owned(), "1".to_owned())]);
        assert_eq!(parse_list("[{}, {}]"), None);
        assert_eq!(parse_list("{}"), None);
    }
}
