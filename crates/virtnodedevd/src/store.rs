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
//! killed at any point leaves every definition either old or new, never half written.

use std::collections::BTreeMap;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use nodedev::HostRoot;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tracing::warn;

use crate::mdev::Definition;

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
                continue; // temporary files and strangers
            }
            let Ok(text) = fs::read_to_string(f.path()) else {
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

fn fsync_dir(d: &Path) {
    if let Ok(f) = fs::File::open(d) {
        let _ = f.sync_all();
    }
}

/// Writes (or replaces) one definition atomically.
pub fn write(root: &HostRoot, d: &Definition) -> std::io::Result<()> {
    let top = dir(root);
    let pdir = top.join(&d.parent_addr);
    let fresh = !pdir.exists();
    fs::create_dir_all(&pdir)?;
    if fresh {
        fsync_dir(&top);
    }
    let tmp = pdir.join(format!(".{}.tmp{}", d.uuid, std::process::id()));
    let mut f = fs::File::create(&tmp)?;
    f.write_all(to_json(d).as_bytes())?;
    f.sync_all()?;
    drop(f);
    fs::rename(&tmp, pdir.join(&d.uuid))?;
    fsync_dir(&pdir);
    Ok(())
}

/// Removes one definition; the parent directory stays, as with mdevctl.
pub fn remove(root: &HostRoot, d: &Definition) -> std::io::Result<()> {
    let pdir = dir(root).join(&d.parent_addr);
    match fs::remove_file(pdir.join(&d.uuid)) {
        Ok(()) => {
            fsync_dir(&pdir);
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
