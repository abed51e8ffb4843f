//! A device's name, sysfs path, parent and driver, kept in one allocation.
//!
//! Every device has these four strings and a host's whole device set is kept, 100,000
//! devices at the scale we serve: one allocation instead of four saves three malloc
//! chunks and 32 bytes of the device (about 150 bytes a device). They change rarely (the
//! driver, when a device is bound or unbound), and a change rebuilds the whole.

use std::fmt;

/// Which of the strings: the name is always there, the others may not be.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Ident {
    Name = 0,
    SysfsPath = 1,
    Parent = 2,
    Driver = 3,
}

const COUNT: usize = 4;

#[derive(Clone, PartialEq, Eq)]
pub(crate) struct Idents {
    /// The four strings one after the other.
    text: Box<str>,
    /// Where each but the last ends in `text` (the last ends with it).
    ends: [u32; COUNT - 1],
    /// Bit i set: string i is there (an empty string is not an absent one).
    present: u8,
}

impl Idents {
    pub(crate) fn new(name: &str) -> Self {
        let end = len32(name);
        Self {
            text: name.into(),
            ends: [end; COUNT - 1],
            present: 1 << Ident::Name as u8,
        }
    }

    pub(crate) fn name(&self) -> &str {
        self.get(Ident::Name).unwrap_or_default()
    }

    pub(crate) fn get(&self, which: Ident) -> Option<&str> {
        let i = which as usize;
        if self.present & (1 << i) == 0 {
            return None;
        }
        let start = if i == 0 { 0 } else { self.ends[i - 1] as usize };
        let end = self.ends.get(i).map_or(self.text.len(), |&e| e as usize);
        self.text.get(start..end)
    }

    /// Sets one string; nothing is rebuilt when it is unchanged.
    pub(crate) fn set(&mut self, which: Ident, value: Option<&str>) {
        if self.get(which) == value || (which == Ident::Name && value.is_none()) {
            return;
        }
        let parts: [Option<&str>; COUNT] = std::array::from_fn(|i| {
            if i == which as usize {
                value
            } else {
                self.get(WHICH[i])
            }
        });
        let mut text = String::with_capacity(parts.iter().flatten().map(|p| p.len()).sum());
        let mut ends = [0; COUNT - 1];
        let mut present = 0;
        for (i, part) in parts.iter().enumerate() {
            if let Some(p) = part {
                text.push_str(p);
                present |= 1 << i;
            }
            if let Some(end) = ends.get_mut(i) {
                *end = len32(&text);
            }
        }
        *self = Self {
            text: text.into_boxed_str(),
            ends,
            present,
        };
    }
}

const WHICH: [Ident; COUNT] = [Ident::Name, Ident::SysfsPath, Ident::Parent, Ident::Driver];

/// A length as stored: device strings are far below 4 GiB (sysfs paths are at most
/// PATH_MAX, names come in messages of at most 32 MiB). Were one not, the strings would
/// read as absent rather than the daemon stopping.
fn len32(s: &str) -> u32 {
    u32::try_from(s.len()).unwrap_or(u32::MAX)
}

impl fmt::Debug for Idents {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Idents")
            .field("name", &self.name())
            .field("sysfs_path", &self.get(Ident::SysfsPath))
            .field("parent", &self.get(Ident::Parent))
            .field("driver", &self.get(Ident::Driver))
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_string_is_kept_apart_and_absent_differs_from_empty() {
        let mut i = Idents::new("pci_0000_00_01_0");
        assert_eq!(i.name(), "pci_0000_00_01_0");
        assert_eq!(i.get(Ident::Driver), None);
        i.set(Ident::Driver, Some("vfio-pci"));
        i.set(
            Ident::SysfsPath,
            Some("/sys/devices/pci0000:00/0000:00:01.0"),
        );
        i.set(Ident::Parent, Some(""));
        assert_eq!(i.get(Ident::Parent), Some(""));
        assert_eq!(i.get(Ident::Driver), Some("vfio-pci"));
        assert_eq!(
            i.get(Ident::SysfsPath),
            Some("/sys/devices/pci0000:00/0000:00:01.0")
        );
        i.set(Ident::Parent, None);
        assert_eq!(i.get(Ident::Parent), None);
        i.set(Ident::Driver, Some("pcieport"));
        i.set(Ident::Name, None);
        assert_eq!(i.name(), "pci_0000_00_01_0");
        assert_eq!(i.get(Ident::Driver), Some("pcieport"));
        let mut j = Idents::new("pci_0000_00_01_0");
        j.set(
            Ident::SysfsPath,
            Some("/sys/devices/pci0000:00/0000:00:01.0"),
        );
        j.set(Ident::Driver, Some("pcieport"));
        assert_eq!(i, j);
    }
}
