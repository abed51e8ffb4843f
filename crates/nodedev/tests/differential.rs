//! Differential test against libvirt 11.3 (Debian 13's, the reference for behaviour) and
//! Debian's libvirt 9.0: start the reference daemon over a fakesys tree and compare every
//! `nodedev-dumpxml`, `nodedev-list --cap` and `nodedev-list --tree` with ours. Against 11.3
//! everything must be identical; against 9.0 only the differences 11.3 made (see
//! [`known_9_0_differences`]) may remain. Every XML we emit is also validated against 11.3's
//! `nodedev.rng`. Needs root, libvirtd, virsh and the reference-libvirtd tool: without them
//! the tests fail, unless the run allows skipping (VIRTNODEDEVD_ALLOW_SKIP=1).

mod common;
#[path = "common/versions.rs"]
mod versions;

use versions::{known_9_0_differences, validate, xml_as_9_0};

use std::process::Command;

/// The shared tool beside the repository (`../shared/tools`).
const TOOL: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../../shared/tools/reference-libvirtd"
);

/// The libvirt a reference runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Version {
    V9_0,
    V11_3,
}

impl Version {
    fn env(self) -> &'static str {
        match self {
            Version::V9_0 => "9.0",
            Version::V11_3 => "11.3",
        }
    }
}

fn skip_reason() -> Option<&'static str> {
    let uid0 = std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .map(|l| l.split_whitespace().nth(2) == Some("0"))
        })
        .unwrap_or(false);
    if !uid0 {
        return Some("not root");
    }
    for p in [
        "/usr/sbin/libvirtd",
        "/usr/bin/virsh",
        "/usr/bin/xmllint",
        TOOL,
    ] {
        if !std::path::Path::new(p).exists() {
            return Some("libvirtd/virsh/xmllint/reference tool missing");
        }
    }
    None
}

struct Reference {
    dir: std::path::PathBuf,
    uri: String,
    version: Version,
}

impl Reference {
    fn start(dir: &std::path::Path, fake: &std::path::Path, version: Version) -> Reference {
        let out = Command::new(TOOL)
            .env("REFERENCE_LIBVIRT", version.env())
            .arg("start")
            .arg(dir)
            .arg(fake)
            .output()
            .expect("start reference");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let uri = String::from_utf8_lossy(&out.stdout).trim().to_string();
        Reference {
            dir: dir.to_path_buf(),
            uri,
            version,
        }
    }

    /// virsh of the reference's own version (11.3's runs in its chroot).
    fn virsh(&self, args: &[&str]) -> String {
        let out = Command::new(TOOL)
            .env("REFERENCE_LIBVIRT", self.version.env())
            .arg("run")
            .arg(&self.dir)
            .arg("virsh")
            .arg("-c")
            .arg(&self.uri)
            .args(args)
            .output()
            .expect("virsh");
        assert!(
            out.status.success(),
            "virsh {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        // libvirt passes non-UTF-8 sysfs bytes through; ours shows U+FFFD.
        String::from_utf8_lossy(&out.stdout).into_owned()
    }
}

impl Drop for Reference {
    fn drop(&mut self) {
        let _ = Command::new(TOOL)
            .env("REFERENCE_LIBVIRT", self.version.env())
            .arg("stop")
            .arg(&self.dir)
            .status();
    }
}

/// virsh's `vshTreePrint` over (name, parent) pairs sorted by name.
fn tree(devs: &[(String, Option<String>)]) -> String {
    fn walk(
        devs: &[(String, Option<String>)],
        id: usize,
        last: Option<usize>,
        root: bool,
        indent: &mut String,
        out: &mut String,
    ) {
        let name = &devs[id].0;
        out.push_str(&format!(
            "{}{}{}\n",
            indent,
            if root { "" } else { "+- " },
            name
        ));
        if !root {
            indent.push(if Some(id) == last { ' ' } else { '|' });
            indent.push(' ');
        }
        let children: Vec<usize> = (0..devs.len())
            .filter(|&i| devs[i].1.as_deref() == Some(name.as_str()))
            .collect();
        let next_last = children.last().copied();
        if next_last.is_some() {
            out.push_str(&format!("{indent}  |\n"));
        }
        indent.push_str("  ");
        for c in children {
            walk(devs, c, next_last, false, indent, out);
        }
        indent.truncate(indent.len() - 2);
        if next_last.is_none() && Some(id) == last {
            out.push_str(&format!("{indent}\n"));
        }
        if !root {
            indent.truncate(indent.len() - 2);
        }
    }
    let mut out = String::new();
    for i in 0..devs.len() {
        if devs[i].1.is_none() {
            let mut indent = String::new();
            walk(devs, i, None, true, &mut indent, &mut out);
        }
    }
    out
}

/// A file in the real `/dev` for the duration of the test (libvirt looks up
/// vDPA char devices there, not in the fake tree); removed on drop when the
/// test created it.
struct RealDevNode(Option<std::path::PathBuf>);

impl RealDevNode {
    fn create(name: &str) -> RealDevNode {
        let p = std::path::Path::new("/dev").join(name);
        if p.exists() {
            return RealDevNode(None);
        }
        std::fs::write(&p, "").expect("create test node in /dev");
        RealDevNode(Some(p))
    }
}

impl Drop for RealDevNode {
    fn drop(&mut self) {
        if let Some(p) = &self.0 {
            let _ = std::fs::remove_file(p);
        }
    }
}

fn skipped() -> bool {
    let Some(why) = skip_reason() else {
        return false;
    };
    common::skip_or_fail(&format!("the reference ({why})"));
    true
}

/// One test per tree and reference: `$name_11_3` must be identical to libvirt 11.3,
/// `$name_9_0` identical to libvirt 9.0 but for `versions::known_9_0_differences`.
macro_rules! differential {
    ($name_11_3:ident, $name_9_0:ident, $build:expr) => {
        #[test]
        fn $name_11_3() {
            run_differential(stringify!($name_11_3), Version::V11_3, $build);
        }

        #[test]
        fn $name_9_0() {
            run_differential(stringify!($name_9_0), Version::V9_0, $build);
        }
    };
}

differential!(
    fake_host_matches_libvirt_11_3,
    fake_host_matches_libvirt_9_0,
    |d| {
        common::build_host(d);
    }
);
// Missing, empty, unreadable, symlinked and non-UTF-8 attributes, dangling links and
// directories where files belong: every device is described or dropped as libvirt does.
differential!(
    hostile_tree_matches_libvirt_11_3,
    hostile_tree_matches_libvirt_9_0,
    |d| {
        fakesys::hostile_tree(d, true).unwrap();
    }
);
differential!(
    sample_tree_matches_libvirt_11_3,
    sample_tree_matches_libvirt_9_0,
    |d| {
        fakesys::trees::sample(d).unwrap();
    }
);
differential!(
    rich_tree_matches_libvirt_11_3,
    rich_tree_matches_libvirt_9_0,
    |d| {
        fakesys::trees::rich(d).unwrap();
    }
);
differential!(
    sriov_tree_matches_libvirt_11_3,
    sriov_tree_matches_libvirt_9_0,
    |d| {
        fakesys::trees::sriov(d).unwrap();
    }
);
differential!(
    usb_sas_tree_matches_libvirt_11_3,
    usb_sas_tree_matches_libvirt_9_0,
    |d| {
        fakesys::trees::usb_sas(d).unwrap();
    }
);
differential!(
    fc_mdev_s390_tree_matches_libvirt_11_3,
    fc_mdev_s390_tree_matches_libvirt_9_0,
    |d| {
        fakesys::trees::fc_mdev_s390(d).unwrap();
    }
);

// DASDs, offline CCW devices, qeth ccwgroup cards and their members, a VPD to escape.
differential!(
    s390_tree_matches_libvirt_11_3,
    s390_tree_matches_libvirt_9_0,
    |d| {
        fakesys::trees::s390(d).unwrap();
    }
);

fn run_differential(label: &str, version: Version, build: fn(&std::path::Path)) {
    if skipped() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let fake = tmp.path().join("root");
    build(&fake);
    let _vdpa = RealDevNode::create(common::VDPA_CHARDEV);
    compare_with_reference(&fake, label, version);
}

fn compare_with_reference(fake: &std::path::Path, label: &str, version: Version) {
    let refdir = std::path::PathBuf::from(format!("/tmp/ref-{label}-{}", std::process::id()));
    let reference = Reference::start(&refdir, fake, version);

    let root = nodedev::HostRoot::new(fake);
    let mut ours = nodedev::enumerate(&root);
    for d in &mut ours {
        d.refresh(&root);
    }
    let schema_failures = validate(
        &ours
            .iter()
            .map(|d| (d.name().to_string(), d.to_xml()))
            .collect::<Vec<_>>(),
    );
    if version == Version::V9_0 {
        known_9_0_differences(fake, &mut ours);
    }
    ours.sort_by(|a, b| a.name().cmp(b.name()));

    let names = reference.virsh(&["nodedev-list"]);
    let ref_names: Vec<&str> = names.lines().filter(|l| !l.is_empty()).collect();
    let our_names: Vec<&str> = ours.iter().map(|d| d.name()).collect();
    let mut failures = schema_failures;
    if our_names != ref_names {
        failures.push(format!(
            "device lists differ\nreference: {ref_names:?}\nours:      {our_names:?}"
        ));
    }

    for d in &ours {
        if !ref_names.contains(&d.name()) {
            continue;
        }
        let theirs = reference.virsh(&["nodedev-dumpxml", d.name()]);
        let mut mine = format!("{}\n", d.to_xml());
        if version == Version::V9_0 {
            mine = xml_as_9_0(&mine);
        }
        if mine != theirs {
            failures.push(format!(
                "--- {}\nreference:\n{theirs}\nours:\n{mine}",
                d.name()
            ));
        }
    }
    // Capability filters (virNodeDeviceCapsListExport's nested caps); 9.0 refuses the
    // ccwgroup bits (22 and 23), which 11.3 added.
    for cap in nodedev::CapType::ALL {
        if version == Version::V9_0 && cap.list_flag() >= 1 << 22 {
            continue;
        }
        let theirs = reference.virsh(&["nodedev-list", "--cap", cap.name()]);
        let mut mine: Vec<&str> = ours
            .iter()
            .filter(|d| d.has_cap(cap))
            .map(|d| d.name())
            .collect();
        mine.sort();
        let theirs: Vec<&str> = theirs.lines().filter(|l| !l.is_empty()).collect();
        if mine != theirs {
            failures.push(format!(
                "--cap {}: reference {theirs:?}, ours {mine:?}",
                cap.name()
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));

    let pairs: Vec<(String, Option<String>)> = ours
        .iter()
        .map(|d| (d.name().to_string(), d.parent().map(str::to_string)))
        .collect();
    let their_tree = reference.virsh(&["nodedev-list", "--tree"]);
    // virsh ends the tree with one more empty line.
    assert_eq!(format!("{}\n", tree(&pairs)), their_tree);
}
