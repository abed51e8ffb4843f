//! What separates libvirt 9.0's node-device output from 11.3's (which ours follows), as
//! transformations of our output, and validation against 11.3's `nodedev.rng` with the
//! cases where 11.3's own output fails it. Self-contained (std and nodedev only) so the
//! daemon's differential tests can include it too:
//! `#[path = "../../nodedev/tests/common/versions.rs"] mod versions;`.
#![allow(dead_code)] // each including test uses some of it

use std::process::Command;

/// 11.3's schema, inside the chroot the reference tool unpacks.
pub const RNG_11_3: &str =
    "/var/cache/reference-libvirtd/trixie/usr/share/libvirt/schemas/nodedev.rng";

/// What libvirt 9.0 showed differently from 11.3, applied to our (11.3) output so the rest
/// still compares byte for byte with 9.0. Each line names the 11.3 change.
pub fn known_9_0_differences(fake: &std::path::Path, devices: &mut Vec<nodedev::Device>) {
    // 11.3 (udevProcessStorage): a disk udev calls ID_TYPE=disk whose node is /dev/dasd*
    // is of type dasd; 9.0 kept "disk" (a DASD without ID_TYPE was "dasd" in both).
    for d in devices.iter_mut() {
        let says_disk = udev_id_type_is_disk(fake, d);
        for c in d.cap_data_mut() {
            if let nodedev::Cap::Storage(s) = c {
                if says_disk && s.drive_type.as_deref() == Some("dasd") {
                    s.drive_type = Some("disk".into());
                }
            }
        }
    }
    // udevProcessCCW: 9.0 dropped CCW devices that are not online; 11.3 lists them with
    // their <state>. ccwgroup devices (qeth) are new in 11.3. Their children hang off the
    // next listed ancestor in 9.0.
    let hidden = |d: &nodedev::Device| {
        d.cap_data().iter().any(|c| match c {
            nodedev::Cap::Ccw(c) => c.state != Some(nodedev::CcwState::Online),
            nodedev::Cap::CcwGroup(_) => true,
            _ => false,
        })
    };
    while let Some(i) = devices.iter().position(hidden) {
        let gone = devices.remove(i);
        for d in devices.iter_mut() {
            if d.parent() == Some(gone.name()) {
                d.set_parent(gone.parent().map(str::to_string));
            }
        }
    }
}

/// Whether the udev database entry of block device `d` in the tree says `ID_TYPE=disk`.
pub fn udev_id_type_is_disk(fake: &std::path::Path, d: &nodedev::Device) -> bool {
    let Some(path) = d.sysfs_path() else {
        return false;
    };
    let dev = std::fs::read_to_string(fake.join(path.trim_start_matches('/')).join("dev"));
    let Ok(dev) = dev else {
        return false;
    };
    let db = fake.join("run/udev/data").join(format!("b{}", dev.trim()));
    std::fs::read_to_string(db).is_ok_and(|s| s.lines().any(|l| l == "E:ID_TYPE=disk"))
}

/// The XML side of [`known_9_0_differences`].
pub fn xml_as_9_0(xml: &str) -> String {
    let mut out = String::with_capacity(xml.len());
    let mut skip_member = false;
    let mut in_vpd = false;
    for line in xml.split_inclusive('\n') {
        let t = line.trim();
        // 11.3: <state> in ccw devices; the ccwgroup_member sub-capability.
        if t.starts_with("<state>") {
            continue;
        }
        if t == "<capability type='ccwgroup_member'>" {
            skip_member = true;
            continue;
        }
        if skip_member {
            skip_member = t != "</capability>";
            continue;
        }
        // 11.3 prints both block size and count unless both are 0; 9.0 left out a 0.
        if t == "<logical_block_size>0</logical_block_size>" || t == "<num_blocks>0</num_blocks>" {
            continue;
        }
        // 11.3 escapes VPD field values; 9.0 printed them verbatim.
        if t == "<capability type='vpd'>" {
            in_vpd = true;
        } else if in_vpd && t == "</capability>" {
            in_vpd = false;
        } else if in_vpd && t.ends_with("'/>") && t.contains("_field index=") {
            // 11.3 writes an empty custom field as an empty element.
            let tag = &t[1..t.find(' ').unwrap_or(1)];
            out.push_str(&line.replace("'/>", &format!("'></{tag}>")));
            continue;
        } else if in_vpd && !t.starts_with("<name>") && !t.starts_with("<fields") {
            out.push_str(
                &line
                    .replace("&lt;", "<")
                    .replace("&gt;", ">")
                    .replace("&apos;", "'")
                    .replace("&quot;", "\"")
                    .replace("&amp;", "&"),
            );
            continue;
        }
        out.push_str(line);
    }
    out
}

/// Why libvirt 11.3's own output for a device fails its own `nodedev.rng` (we print the
/// same bytes, which the comparison with the reference checks); `None` when it should
/// validate.
pub fn schema_exception(xml: &str) -> Option<&'static str> {
    if xml.contains("<capability type='vpd'>\n    </capability>") {
        return Some("a VPD without a name or fields is an empty <capability type='vpd'>");
    }
    if xml.contains("<capability type='mdev_types'>\n    <capability type='mdev_types'>") {
        return Some("an mdev_bus parent (mtty) nests mdev_types in mdev_types");
    }
    if xml.contains("<capability type='vdpa'>\n  </capability>") {
        return Some("a vDPA device without a vhost-vdpa node has no <chardev>");
    }
    let odd_mac = xml.lines().any(|l| {
        l.trim()
            .strip_prefix("<address>")
            .and_then(|a| a.strip_suffix("</address>"))
            .is_some_and(|a| a.chars().any(|c| !c.is_ascii_hexdigit() && c != ':'))
    });
    odd_mac.then_some("a net address with bytes that are no MAC digits is printed as read")
}

/// Validates every XML document against 11.3's `nodedev.rng` in one xmllint run.
pub fn validate(docs: &[(String, String)]) -> Vec<String> {
    let tmp = tempfile::tempdir().unwrap();
    let mut files = Vec::new();
    for (i, (_, xml)) in docs.iter().enumerate() {
        let p = tmp.path().join(format!("{i}.xml"));
        std::fs::write(&p, xml).unwrap();
        files.push(p);
    }
    let out = Command::new("xmllint")
        .args(["--noout", "--relaxng", RNG_11_3])
        .args(&files)
        .output()
        .expect("xmllint");
    if out.status.success() {
        return Vec::new();
    }
    let err = String::from_utf8_lossy(&out.stderr);
    docs.iter()
        .enumerate()
        .filter(|(i, (_, x))| {
            !err.contains(&format!("/{i}.xml validates")) && schema_exception(x).is_none()
        })
        .map(|(_, (n, x))| format!("{n} does not validate against 11.3's nodedev.rng:\n{x}\n{err}"))
        .collect()
}
