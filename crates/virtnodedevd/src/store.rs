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
use tracing::warn;

use crate::fault;
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
                // Temporary files and strangers are never definitions.
                remove_stale_temporary(&p.path(), &uuid);
                continue;
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

fn json_str(s: &str) -> String {
    let mut o = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => o.push_str("\\\""),
            '\\' => o.push_str("\\\\"),
            '\n' => o.push_str("\\n"),
            '\r' => o.push_str("\\r"),
            '\t' => o.push_str("\\t"),
            c if (c as u32) < 0x20 => o.push_str(&format!("\\u{:04x}", c as u32)),
            c => o.push(c),
        }
    }
    o.push('"');
    o
}

/// The configuration as mdevctl prints it (serde_json's pretty form).
pub fn to_json(d: &Definition) -> String {
    let mut s = format!(
        "{{\n  \"mdev_type\": {},\n  \"start\": {},\n  \"attrs\": ",
        json_str(&d.type_id),
        json_str(if d.autostart { "auto" } else { "manual" })
    );
    if d.attrs.is_empty() {
        s.push_str("[]");
    } else {
        s.push_str("[\n");
        let items: Vec<String> = d
            .attrs
            .iter()
            .map(|(n, v)| format!("    {{\n      {}: {}\n    }}", json_str(n), json_str(v)))
            .collect();
        s.push_str(&items.join(",\n"));
        s.push_str("\n  ]");
    }
    s.push_str("\n}");
    s
}

/// The configuration as libvirt hands it to `mdevctl define/start --jsonfile /dev/stdin`
/// (`nodeDeviceDefToMdevctlConfig`: compact, `attrs` only when there are some).
pub fn to_json_compact(type_id: &str, autostart: bool, attrs: &[(String, String)]) -> String {
    let mut s = format!(
        "{{\"mdev_type\":{},\"start\":{}",
        json_str(type_id),
        json_str(if autostart { "auto" } else { "manual" })
    );
    if !attrs.is_empty() {
        let items: Vec<String> = attrs
            .iter()
            .map(|(n, v)| format!("{{{}:{}}}", json_str(n), json_str(v)))
            .collect();
        s.push_str(&format!(",\"attrs\":[{}]", items.join(",")));
    }
    s.push('}');
    s
}

/// The definitions in the output of `mdevctl list --defined --dumpjson`
/// (`nodeDeviceParseMdevctlJSON`): `[]`, or `[{"<parent>": [{"<uuid>": {config}}, ...], ...}]`.
/// `None` when the output does not have that shape.
pub fn parse_list(text: &str) -> Option<Vec<Definition>> {
    let mut j = J {
        s: text.as_bytes(),
        i: 0,
    };
    let Json::Arr(top) = j.value()? else {
        return None;
    };
    let mut out = Vec::new();
    match top.as_slice() {
        [] => return Some(out),
        [Json::Obj(parents)] => {
            for (parent, children) in parents {
                let Json::Arr(children) = children else {
                    return None;
                };
                for child in children {
                    let Json::Obj(kv) = child else { return None };
                    let [(uuid, Json::Obj(props))] = kv.as_slice() else {
                        return None;
                    };
                    let get = |k: &str| props.iter().find(|(n, _)| n == k).map(|(_, v)| v);
                    let type_id = match get("mdev_type") {
                        Some(Json::Str(t)) => t.clone(),
                        _ => String::new(),
                    };
                    let autostart = matches!(get("start"), Some(Json::Str(s)) if s == "auto");
                    let attrs = attrs_of(get("attrs"))?;
                    out.push(Definition {
                        parent_addr: parent.clone(),
                        uuid: uuid.clone(),
                        type_id,
                        attrs,
                        autostart,
                    });
                }
            }
        }
        _ => return None,
    }
    Some(out)
}

/// A JSON value, as much as mdevctl's files need.
#[derive(Debug)]
enum Json {
    Str(String),
    Arr(Vec<Json>),
    Obj(Vec<(String, Json)>),
    Other,
}

struct J<'a> {
    s: &'a [u8],
    i: usize,
}

impl J<'_> {
    fn ws(&mut self) {
        while self.s.get(self.i).is_some_and(|c| c.is_ascii_whitespace()) {
            self.i += 1;
        }
    }
    fn eat(&mut self, c: u8) -> Option<()> {
        self.ws();
        (self.s.get(self.i) == Some(&c)).then(|| self.i += 1)
    }
    fn string(&mut self) -> Option<String> {
        self.eat(b'"')?;
        let mut out = Vec::new();
        loop {
            let c = *self.s.get(self.i)?;
            self.i += 1;
            match c {
                b'"' => return String::from_utf8(out).ok(),
                b'\\' => {
                    let e = *self.s.get(self.i)?;
                    self.i += 1;
                    match e {
                        b'n' => out.push(b'\n'),
                        b't' => out.push(b'\t'),
                        b'r' => out.push(b'\r'),
                        b'b' => out.push(8),
                        b'f' => out.push(12),
                        b'u' => {
                            let h = std::str::from_utf8(self.s.get(self.i..self.i + 4)?).ok()?;
                            self.i += 4;
                            let ch = char::from_u32(u32::from_str_radix(h, 16).ok()?)?;
                            out.extend_from_slice(ch.to_string().as_bytes());
                        }
                        c => out.push(c),
                    }
                }
                c => out.push(c),
            }
        }
    }
    fn value(&mut self) -> Option<Json> {
        self.ws();
        match *self.s.get(self.i)? {
            b'"' => self.string().map(Json::Str),
            b'[' => {
                self.i += 1;
                let mut v = Vec::new();
                if self.eat(b']').is_some() {
                    return Some(Json::Arr(v));
                }
                loop {
                    v.push(self.value()?);
                    if self.eat(b',').is_none() {
                        self.eat(b']')?;
                        return Some(Json::Arr(v));
                    }
                }
            }
            b'{' => {
                self.i += 1;
                let mut v = Vec::new();
                if self.eat(b'}').is_some() {
                    return Some(Json::Obj(v));
                }
                loop {
                    let k = self.string()?;
                    self.eat(b':')?;
                    v.push((k, self.value()?));
                    if self.eat(b',').is_none() {
                        self.eat(b'}')?;
                        return Some(Json::Obj(v));
                    }
                }
            }
            _ => {
                let start = self.i;
                while self
                    .s
                    .get(self.i)
                    .is_some_and(|c| c.is_ascii_alphanumeric() || b"+-.".contains(c))
                {
                    self.i += 1;
                }
                (self.i > start).then_some(Json::Other)
            }
        }
    }
}

/// `(mdev_type, autostart, attrs)` of a stored configuration.
#[allow(clippy::type_complexity)]
pub fn from_json(text: &str) -> Option<(String, bool, Vec<(String, String)>)> {
    let mut j = J {
        s: text.as_bytes(),
        i: 0,
    };
    let Json::Obj(fields) = j.value()? else {
        return None;
    };
    j.ws();
    if j.i != j.s.len() {
        return None;
    }
    let get = |k: &str| fields.iter().find(|(n, _)| n == k).map(|(_, v)| v);
    let Some(Json::Str(t)) = get("mdev_type") else {
        return None;
    };
    let auto = matches!(get("start"), Some(Json::Str(s)) if s == "auto");
    let attrs = attrs_of(get("attrs"))?;
    Some((t.clone(), auto, attrs))
}

/// mdevctl's `attrs`: an array of one-key objects with string values, in order; `None`
/// when it has any other shape.
fn attrs_of(v: Option<&Json>) -> Option<Vec<(String, String)>> {
    let Some(Json::Arr(a)) = v else {
        return Some(Vec::new());
    };
    a.iter()
        .map(|item| match item {
            Json::Obj(kv) if kv.len() == 1 => match &kv[0] {
                (k, Json::Str(v)) => Some((k.clone(), v.clone())),
                _ => None,
            },
            _ => None,
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
