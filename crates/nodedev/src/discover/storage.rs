//! Block devices: `udevProcessStorage` and its per-drive-type helpers.
//! Devices whose type cannot be determined (loop, zram, ram ... without
//! `ID_TYPE` in the udev database) are dropped, as libvirt does.

use super::generate_name;
use crate::model::{Cap, StorageCap};
use crate::udev::{parse_i, parse_ull, UdevDevice};

fn trim(s: Option<String>) -> Option<String> {
    // virTrimSpaces keeps an all-space string as "" (it is still printed).
    s.map(|v| {
        v.trim_matches(|c: char| c.is_ascii_whitespace())
            .to_string()
    })
}

/// `udevGetUint64SysfsAttr`: missing leaves the value, bad input fails.
fn u64_attr(dev: &UdevDevice, name: &str, out: &mut u64) -> Option<()> {
    if let Some(s) = dev.sysattr(name) {
        *out = parse_ull(&s, 0)?;
    }
    Some(())
}

pub(super) fn process(dev: &UdevDevice) -> Option<(String, Cap)> {
    let Some(devnode) = dev.devnode() else {
        tracing::debug!("No devnode for '{}'", dev.host_syspath);
        return None;
    };
    let mut st = StorageCap {
        block: Some(devnode.to_string()),
        bus: dev.prop("ID_BUS").map(str::to_string),
        serial: dev.prop("ID_SERIAL").map(str::to_string),
        vendor: trim(dev.string_attr("device/vendor")),
        model: trim(dev.string_attr("device/model")),
        drive_type: dev.prop("ID_TYPE").map(str::to_string),
        ..Default::default()
    };
    if st.drive_type.as_deref().is_none_or(|t| t == "generic") {
        st.drive_type = if dev.has_prop("ID_DRIVE_FLOPPY") {
            Some("floppy".into())
        } else if dev.has_prop("ID_CDROM") {
            Some("cd".into())
        } else if dev.has_prop("ID_DRIVE_FLASH_SD") {
            Some("sd".into())
        } else {
            // udevKludgeStorageType
            let guess = [
                ("/dev/vd", "disk"),
                ("/dev/dasd", "dasd"),
                ("/dev/nvme", "disk"),
            ]
            .iter()
            .find(|(p, _)| devnode.starts_with(p))
            .map(|(_, t)| t.to_string());
            if guess.is_none() {
                tracing::debug!(
                    "Could not determine storage type for device with sysfs path '{}'",
                    dev.host_syspath
                );
                return None;
            }
            guess
        };
    } else if st.drive_type.as_deref() == Some("disk") && devnode.starts_with("/dev/dasd") {
        // 11.3: udev's dasd_id says ID_TYPE=disk; libvirt reclassifies it as a DASD.
        st.drive_type = Some("dasd".into());
    }
    let dtype = st.drive_type.clone().unwrap_or_default();
    match dtype.as_str() {
        "cd" | "cd/dvd" => {
            st.drive_type = Some("cdrom".into());
            let has_media = match dev.prop("ID_CDROM_MEDIA") {
                Some(v) => parse_i(v, 0)?,
                None => 0,
            };
            removable_media(dev, &mut st, has_media != 0)?;
        }
        "disk" => disk(dev, &mut st)?,
        "floppy" => {
            let has_media = dev.has_prop("ID_FS_LABEL");
            removable_media(dev, &mut st, has_media)?;
        }
        "sd" => disk(dev, &mut st)?,
        "dasd" => {
            // 11.3 drops a DASD without `device/uid` (9.0 listed it without a serial).
            st.serial = Some(dev.string_attr("device/uid")?);
            disk(dev, &mut st)?;
        }
        other => {
            tracing::debug!("Unsupported storage type '{other}'");
            return None;
        }
    }
    let name = generate_name(dev.subsystem.as_deref(), &dev.sysname, st.serial.as_deref());
    Some((name, Cap::Storage(Box::new(st))))
}

fn disk(dev: &UdevDevice, st: &mut StorageCap) -> Option<()> {
    u64_attr(dev, "size", &mut st.num_blocks)?;
    u64_attr(dev, "queue/logical_block_size", &mut st.logical_block_size)?;
    st.size = st.num_blocks.wrapping_mul(st.logical_block_size);
    Some(())
}

fn removable_media(dev: &UdevDevice, st: &mut StorageCap, has_media: bool) -> Option<()> {
    if let Some(s) = dev.sysattr("removable") {
        if parse_i(&s, 0)? == 1 {
            st.removable = true;
        }
    }
    if !has_media {
        return Some(());
    }
    st.media_available = true;
    st.media_label = dev.prop("ID_FS_LABEL").map(str::to_string);
    u64_attr(dev, "size", &mut st.num_blocks)?;
    u64_attr(dev, "queue/logical_block_size", &mut st.logical_block_size)?;
    st.removable_media_size = st.num_blocks.wrapping_mul(st.logical_block_size);
    Some(())
}
