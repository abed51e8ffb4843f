//! Which driver a detach binds to and making sure it is loaded, as libvirt 11.3's
//! `virPCIDeviceBindToStub` decides it: a VFIO variant driver matching the device's
//! modalias in `modules.alias` (`virPCIDeviceFindBestVFIOVariant`), else vfio-pci; the
//! driver found in sysfs, under its name with dashes or as the PCI driver of the module
//! loaded with modprobe (`virPCIDeviceFindDriver`, `virPCIProbeModule`).

use std::process::Command;

use nodedev::HostRoot;

use super::sysfs::{PciFn, VFIO_PCI};
use super::PciError;

/// The modprobe to run; `VIRTNODEDEVD_MODPROBE` names another (tests). Over a fake host
/// root none runs unless named: loading a module into the real kernel for a fake device
/// would be wrong.
fn modprobe(root: &HostRoot) -> Option<String> {
    match std::env::var("VIRTNODEDEVD_MODPROBE") {
        Ok(m) => Some(m),
        Err(_) if root.path() == std::path::Path::new("/") => Some("modprobe".into()),
        Err(_) => None,
    }
}

/// The seven fields of a PCI modalias (`v d sv sd bc sc i`), `*` matching anything.
fn alias_fields(s: &str) -> Option<Vec<&str>> {
    let s = s.split([' ', '\n']).next()?;
    let mut out = Vec::with_capacity(7);
    let mut rest = s;
    for (i, key) in ["v", "d", "sv", "sd", "bc", "sc", "i"].iter().enumerate() {
        rest = rest.strip_prefix(key)?;
        let next = ["d", "sv", "sd", "bc", "sc", "i"].get(i).copied();
        let end = match next {
            Some(n) => {
                // The value is hex digits or `*`; the next key starts at the first other
                // character (values are upper-case hex, keys lower-case).
                rest.find(|c: char| !(c.is_ascii_digit() || c.is_ascii_uppercase() || c == '*'))
                    .filter(|&p| rest[p..].starts_with(n))?
            }
            None => rest.len(),
        };
        out.push(&rest[..end]);
        rest = &rest[end..];
    }
    Some(out)
}

/// `virPCIDeviceAliasInfoMatch`: every field equal or a wildcard; the wildcard count.
fn alias_match(dev: &[&str], alias: &[&str]) -> Option<usize> {
    let mut wild = 0;
    for (d, a) in dev.iter().zip(alias) {
        if *a == "*" {
            wild += 1;
        } else if !d.eq_ignore_ascii_case(a) {
            return None;
        }
    }
    Some(wild)
}

fn read_all(root: &HostRoot, host: &str) -> Result<String, PciError> {
    super::sysfs::read_text(root.join(host))
        .map_err(|e| PciError::system(format!("Failed to open file '{host}'"), &e))
}

/// `virPCIDeviceFindBestVFIOVariant`: the module of the `vfio_pci:` alias matching the
/// device with the fewest wildcards, if any.
pub fn best_vfio_variant(dev: &PciFn) -> Result<Option<String>, PciError> {
    let root = dev.root();
    let modalias_host = dev.host("modalias");
    let modalias = read_all(root, &modalias_host)?;
    let fields = modalias
        .strip_prefix("pci:")
        .and_then(alias_fields)
        .ok_or_else(|| {
            PciError::Internal(format!(
                "device modalias file {modalias_host} content has improper format"
            ))
        })?;
    let release = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    let aliases = read_all(
        root,
        &format!("/lib/modules/{}/modules.alias", release.trim()),
    )?;
    let mut best: Option<(usize, String)> = None;
    for line in aliases.lines() {
        let Some(rest) = line.strip_prefix("alias vfio_pci:") else {
            continue;
        };
        let (Some(alias), Some((_, module))) = (alias_fields(rest), rest.split_once(' ')) else {
            continue;
        };
        if let Some(w) = alias_match(&fields, &alias) {
            if best.as_ref().is_none_or(|(b, _)| w < *b) {
                best = Some((w, module.trim().to_owned()));
            }
        }
    }
    Ok(best.map(|(_, m)| m))
}

/// `virPCIDeviceFindDriver`: the driver's name as sysfs knows it, loading its module if
/// needed.
pub fn find_driver(root: &HostRoot, name: &str) -> Result<String, PciError> {
    let exists = |d: &str| root.join(&format!("/sys/bus/pci/drivers/{d}")).exists();
    if exists(name) {
        return Ok(name.to_owned());
    }
    let underscored = name.replace('-', "_");
    if underscored != name && exists(&underscored) {
        return Ok(underscored);
    }
    probe_module(root, &underscored)?;
    let dir = format!("/sys/module/{underscored}/drivers");
    let entries = std::fs::read_dir(root.join(&dir))
        .map_err(|e| PciError::system(format!("cannot open directory '{dir}'"), &e))?;
    for e in entries.flatten() {
        let n = e.file_name().to_string_lossy().into_owned();
        if let Some(drv) = n.strip_prefix("pci:") {
            if !exists(drv) {
                return Err(PciError::Internal(format!(
                    "pci driver '{drv}' supposedly loaded by module '{underscored}' not found in sysfs"
                )));
            }
            return Ok(drv.to_owned());
        }
    }
    Err(PciError::Internal(format!(
        "module '{underscored}' does not implement any pci driver"
    )))
}

/// `virPCIProbeModule`: `modprobe -b MODULE` unless `/sys/module/MODULE` exists.
fn probe_module(root: &HostRoot, module: &str) -> Result<(), PciError> {
    let module_dir = root.join(&format!("/sys/module/{module}"));
    if module_dir.exists() {
        return Ok(());
    }
    let failed =
        |why: &str| PciError::Internal(format!("Failed to load PCI driver module {module}: {why}"));
    let Some(modprobe) = modprobe(root) else {
        return Err(failed("modprobe is not run over a fake host root"));
    };
    let out = Command::new(&modprobe).args(["-b", module]).output();
    match out {
        Ok(o) if o.status.success() => {}
        Ok(o) => {
            if prohibited(&modprobe, module) {
                return Err(failed("administratively prohibited"));
            }
            return Err(failed(&String::from_utf8_lossy(&o.stderr)));
        }
        Err(e) => return Err(failed(&format!("Cannot run {modprobe}: {e}"))),
    }
    if module_dir.exists() {
        return Ok(());
    }
    Err(PciError::Internal(format!(
        "modprobe reported success loading module '{module}', but module is missing from /sys/module"
    )))
}

/// `virKModIsProhibited`: `modprobe -c` blacklists the module.
fn prohibited(modprobe: &str, module: &str) -> bool {
    let want = format!("blacklist {}\n", module.replace('-', "_"));
    Command::new(modprobe)
        .arg("-c")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).contains(&want))
}

/// The stub a detach binds to: the name asked for, else the best VFIO variant, else
/// vfio-pci; then as sysfs knows it.
pub fn stub_driver(dev: &PciFn, asked: Option<&str>) -> Result<String, PciError> {
    let name = match asked {
        Some(n) => n.to_owned(),
        None => best_vfio_variant(dev)?.unwrap_or_else(|| VFIO_PCI.to_owned()),
    };
    find_driver(dev.root(), &name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aliases_match_with_the_fewest_wildcards() {
        let dev = alias_fields("v000015B3d0000101Esv000015B3sd00000001bc02sc00i00\n").unwrap();
        assert_eq!(
            dev,
            ["000015B3", "0000101E", "000015B3", "00000001", "02", "00", "00"]
        );
        let any = alias_fields("v*d*sv*sd*bc*sc*i* vfio_pci").unwrap();
        assert_eq!(alias_match(&dev, &any), Some(7));
        let mlx = alias_fields("v000015B3d0000101Esv*sd*bc*sc*i* mlx5_vfio_pci").unwrap();
        assert_eq!(alias_match(&dev, &mlx), Some(5));
        let other = alias_fields("v00008086d*sv*sd*bc*sc*i* x").unwrap();
        assert_eq!(alias_match(&dev, &other), None);
        assert!(alias_fields("garbage").is_none());
    }
}
