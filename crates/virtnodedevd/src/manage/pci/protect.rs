//! The PCI devices the host needs, which detach and reset refuse by default (libvirt
//! protects none): the ones carrying the root or any mounted filesystem (through device
//! mapper, MD and partitions down to the controller), the NIC of the default route (through
//! bridges, bonds and VLANs), the console (primary GPU, framebuffer). Found from the
//! mount table, the routing tables and sysfs, through the host root.

use std::collections::BTreeMap;
use std::path::Path;

use nodedev::HostRoot;

use super::sysfs::{pci_ancestors, PciFn};
use super::{PciError, PciPolicy};

/// Why each protected PCI function is protected, by name (`dddd:bb:ss.f`).
pub type Protected = BTreeMap<String, String>;

/// `\040` and the other octal escapes of /proc/self/mountinfo.
fn unescape(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\'
            && i + 3 < b.len()
            && b[i + 1..i + 4].iter().all(|c| (b'0'..=b'7').contains(c))
        {
            let v = (b[i + 1] - b'0') * 64 + (b[i + 2] - b'0') * 8 + (b[i + 3] - b'0');
            out.push(v);
            i += 4;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The mounts: (mount point, device number, source).
fn mounts(root: &HostRoot) -> Vec<(String, String, String)> {
    let text = super::sysfs::read_text(root.join("/proc/self/mountinfo")).unwrap_or_default();
    text.lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split(' ').collect();
            let sep = f.iter().position(|x| *x == "-")?;
            Some((
                unescape(f.get(4)?),
                f.get(2)?.to_string(),
                unescape(f.get(sep + 2)?),
            ))
        })
        .collect()
}

/// The host sysfs path of a block device, by number, or by its `/dev` node when the number
/// is anonymous (btrfs and other filesystems spanning devices).
fn block_path(root: &HostRoot, devnum: &str, source: &str) -> Option<String> {
    let by_num = root.join(&format!("/sys/dev/block/{devnum}"));
    if !devnum.starts_with("0:") {
        return root.canonicalize(&by_num).map(|p| root.host_path(&p));
    }
    let node = source.strip_prefix("/dev/")?;
    let resolved = root.canonicalize(&root.join(&format!("/dev/{node}")));
    let name = resolved
        .as_deref()
        .and_then(Path::file_name)
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| node.rsplit('/').next().unwrap_or(node).to_owned());
    root.canonicalize(&root.join(&format!("/sys/class/block/{name}")))
        .map(|p| root.host_path(&p))
}

/// The block devices under `path` down to the physical ones: `slaves/` of device mapper
/// and MD devices, recursively.
fn physical_blocks(root: &HostRoot, path: &str, out: &mut Vec<String>, depth: u32) {
    let slaves: Vec<String> = std::fs::read_dir(root.join(&format!("{path}/slaves")))
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    if slaves.is_empty() || depth > 16 {
        out.push(path.to_owned());
        return;
    }
    for s in slaves {
        if let Some(p) = root.canonicalize(&root.join(&format!("/sys/class/block/{s}"))) {
            physical_blocks(root, &root.host_path(&p), out, depth + 1);
        }
    }
}

/// The interfaces of the IPv4 and IPv6 default routes.
fn default_route_ifaces(root: &HostRoot) -> Vec<String> {
    let mut out = Vec::new();
    let v4 = super::sysfs::read_text(root.join("/proc/net/route")).unwrap_or_default();
    for l in v4.lines().skip(1) {
        let f: Vec<&str> = l.split_whitespace().collect();
        if f.len() > 7 && f[1] == "00000000" && f[7] == "00000000" {
            out.push(f[0].to_owned());
        }
    }
    let v6 = super::sysfs::read_text(root.join("/proc/net/ipv6_route")).unwrap_or_default();
    for l in v6.lines() {
        let f: Vec<&str> = l.split_whitespace().collect();
        if f.len() == 10 && f[0].bytes().all(|c| c == b'0') && f[1] == "00" && f[9] != "lo" {
            out.push(f[9].to_owned());
        }
    }
    out.sort();
    out.dedup();
    out
}

/// The network devices an interface stands on: itself and, through `lower_*` links
/// (bonds, VLANs, macvlans) and bridge ports (`brif/`), every device below it.
fn lower_netdevs(root: &HostRoot, iface: &str, out: &mut Vec<String>, depth: u32) {
    let Some(p) = root.canonicalize(&root.join(&format!("/sys/class/net/{iface}"))) else {
        return;
    };
    out.push(root.host_path(&p));
    if depth > 16 {
        return;
    }
    let mut lower: Vec<String> = std::fs::read_dir(&p)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let n = e.file_name().to_string_lossy().into_owned();
            n.strip_prefix("lower_").map(str::to_owned)
        })
        .collect();
    lower.extend(
        std::fs::read_dir(p.join("brif"))
            .into_iter()
            .flatten()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned()),
    );
    for l in lower {
        lower_netdevs(root, &l, out, depth + 1);
    }
}

fn protect_path(out: &mut Protected, host_path: &str, reason: &str) {
    for pci in pci_ancestors(host_path) {
        out.entry(pci).or_insert_with(|| reason.to_owned());
    }
}

fn protect_filesystems(root: &HostRoot, kinds: &[String], out: &mut Protected) {
    let want_root = kinds.iter().any(|k| k == "root");
    let want_all = kinds.iter().any(|k| k == "mounts");
    for (mountpoint, devnum, source) in mounts(root) {
        let is_root = mountpoint == "/";
        if !(want_all || want_root && is_root) {
            continue;
        }
        let Some(path) = block_path(root, &devnum, &source) else {
            continue;
        };
        let reason = if is_root {
            format!("it carries the root filesystem ({source})")
        } else {
            format!("it carries the filesystem mounted on {mountpoint} ({source})")
        };
        let mut physical = Vec::new();
        physical_blocks(root, &path, &mut physical, 0);
        for p in physical {
            protect_path(out, &p, &reason);
        }
    }
}

fn protect_console(root: &HostRoot, out: &mut Protected) {
    for e in std::fs::read_dir(root.join("/sys/bus/pci/devices"))
        .into_iter()
        .flatten()
        .flatten()
    {
        let name = e.file_name().to_string_lossy().into_owned();
        let boot_vga = super::sysfs::read_text(e.path().join("boot_vga")).unwrap_or_default();
        if boot_vga.trim() == "1" && e.path().join("driver").exists() {
            out.entry(name)
                .or_insert_with(|| "it is the primary GPU (boot_vga) and in use".to_owned());
        }
    }
    for e in std::fs::read_dir(root.join("/sys/class/graphics"))
        .into_iter()
        .flatten()
        .flatten()
    {
        let fb = e.file_name().to_string_lossy().into_owned();
        if let Some(dev) = root.canonicalize(&e.path().join("device")) {
            let reason = format!("it drives the framebuffer console ({fb})");
            if let Some(last) = pci_ancestors(&root.host_path(&dev)).pop() {
                out.entry(last).or_insert(reason);
            }
        }
    }
}

/// Every protected PCI function with its reason, by the policy's kinds and addresses.
pub fn protected(root: &HostRoot, policy: &PciPolicy) -> Protected {
    let mut out = Protected::new();
    let kinds = &policy.protect;
    protect_filesystems(root, kinds, &mut out);
    if kinds.iter().any(|k| k == "default-route") {
        for iface in default_route_ifaces(root) {
            let mut devs = Vec::new();
            lower_netdevs(root, &iface, &mut devs, 0);
            let reason = format!("it carries {iface}, the interface of the default route");
            for d in devs {
                protect_path(&mut out, &d, &reason);
            }
        }
    }
    if kinds.iter().any(|k| k == "console") {
        protect_console(root, &mut out);
    }
    for a in kinds.iter().filter(|k| super::sysfs::is_pci_name(k)) {
        out.entry(a.clone())
            .or_insert_with(|| "it is listed in pci_protect".to_owned());
    }
    out
}

/// Refuses `dev` when it, or a member of its IOMMU group, is protected and not allowed.
pub fn check(dev: &PciFn, policy: &PciPolicy, what: &str) -> Result<(), PciError> {
    if policy.allow.contains(&dev.name) {
        return Ok(());
    }
    let prot = protected(dev.root(), policy);
    let refuse = |why: String| {
        PciError::Protected(format!(
            "refusing to {what} PCI device {}: {why} (see pci_protect and pci_allow in virtnodedevd.conf)",
            dev.name
        ))
    };
    if let Some(why) = prot.get(&dev.name) {
        return Err(refuse(why.clone()));
    }
    if let Some((group, members)) = dev.iommu_group() {
        for m in members.iter().filter(|m| **m != dev.name) {
            if let Some(why) = prot.get(m).filter(|_| !policy.allow.contains(m)) {
                let why = why.strip_prefix("it ").unwrap_or(why);
                return Err(refuse(format!(
                    "it shares IOMMU group {group} with {m}, which {why}"
                )));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mountinfo_escapes_are_undone() {
        assert_eq!(unescape("/mnt/a\\040b"), "/mnt/a b");
        assert_eq!(unescape("/x\\"), "/x\\");
    }
}
