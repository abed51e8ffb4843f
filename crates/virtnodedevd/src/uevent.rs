//! Uevent messages: the kernel's (`ACTION@DEVPATH` then `KEY=VALUE` strings) and udevd's
//! re-broadcast of them after processing (libudev's `monitor_netlink_header` followed by
//! the same properties). Parsing only; the sockets are in `monitor`.

/// NETLINK_KOBJECT_UEVENT multicast groups.
pub const GROUP_KERNEL: u32 = 1;
pub const GROUP_UDEV: u32 = 2;

/// libudev's header prefix and magic (network byte order on the wire).
const UDEV_PREFIX: &[u8] = b"libudev\0";
const UDEV_MAGIC: u32 = 0xfeed_cafe;
/// prefix[8], magic, header_size, properties_off, properties_len, then filter fields.
const UDEV_HEADER_MIN: usize = 8 + 4 * 4;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    Kernel,
    Udev,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Uevent {
    pub source: Source,
    pub action: String,
    /// `DEVPATH`, relative to /sys (`/devices/...`).
    pub devpath: String,
    /// `DEVPATH_OLD` of a move.
    pub devpath_old: Option<String>,
    pub subsystem: Option<String>,
    pub seqnum: Option<u64>,
}

impl Uevent {
    /// The device's path as the host names it (`/sys/devices/...`).
    pub fn syspath(&self) -> String {
        format!("/sys{}", self.devpath)
    }
}

/// Parses one netlink datagram; `None` for anything that is not a well-formed uevent.
pub fn parse(msg: &[u8]) -> Option<Uevent> {
    if msg.starts_with(UDEV_PREFIX) {
        if msg.len() < UDEV_HEADER_MIN {
            return None;
        }
        let word = |i: usize| [msg[i], msg[i + 1], msg[i + 2], msg[i + 3]];
        if u32::from_be_bytes(word(8)) != UDEV_MAGIC {
            return None;
        }
        // The rest of the header is in the sender's byte order, which is ours.
        let off = u32::from_ne_bytes(word(16)) as usize;
        let len = u32::from_ne_bytes(word(20)) as usize;
        let props = msg.get(off..off.checked_add(len)?)?;
        return from_properties(Source::Udev, props);
    }
    // Kernel format: "ACTION@DEVPATH\0" then properties.
    let first_end = msg.iter().position(|&b| b == 0)?;
    let head = std::str::from_utf8(&msg[..first_end]).ok()?;
    if !head.contains('@') {
        return None;
    }
    from_properties(Source::Kernel, &msg[first_end + 1..])
}

fn from_properties(source: Source, props: &[u8]) -> Option<Uevent> {
    let mut ev = Uevent {
        source,
        action: String::new(),
        devpath: String::new(),
        devpath_old: None,
        subsystem: None,
        seqnum: None,
    };
    for kv in props.split(|&b| b == 0) {
        let Ok(kv) = std::str::from_utf8(kv) else {
            continue;
        };
        let Some((k, v)) = kv.split_once('=') else {
            continue;
        };
        match k {
            "ACTION" => ev.action = v.to_owned(),
            "DEVPATH" => ev.devpath = v.to_owned(),
            "DEVPATH_OLD" => ev.devpath_old = Some(v.to_owned()),
            "SUBSYSTEM" => ev.subsystem = Some(v.to_owned()),
            "SEQNUM" => ev.seqnum = v.parse().ok(),
            _ => {}
        }
    }
    // A devpath leaving /sys (`..`) could make us read elsewhere: refuse it.
    let sane = |p: &str| p.starts_with('/') && !p.split('/').any(|c| c == "..");
    if ev.action.is_empty()
        || !sane(&ev.devpath)
        || ev.devpath_old.as_deref().is_some_and(|p| !sane(p))
    {
        return None;
    }
    Some(ev)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kernel_uevent_is_parsed() {
        let msg = b"add@/devices/virtual/net/vx0\0ACTION=add\0DEVPATH=/devices/virtual/net/vx0\0SUBSYSTEM=net\0INTERFACE=vx0\0SEQNUM=42\0";
        let ev = parse(msg).unwrap();
        assert_eq!(ev.source, Source::Kernel);
        assert_eq!(ev.action, "add");
        assert_eq!(ev.syspath(), "/sys/devices/virtual/net/vx0");
        assert_eq!(ev.subsystem.as_deref(), Some("net"));
        assert_eq!(ev.seqnum, Some(42));
    }

    #[test]
    fn udev_monitor_message_is_parsed() {
        let props = b"ACTION=move\0DEVPATH=/devices/virtual/net/new\0DEVPATH_OLD=/devices/virtual/net/old\0SUBSYSTEM=net\0";
        let mut msg = Vec::new();
        msg.extend_from_slice(b"libudev\0");
        msg.extend_from_slice(&UDEV_MAGIC.to_be_bytes());
        msg.extend_from_slice(&40u32.to_ne_bytes());
        msg.extend_from_slice(&40u32.to_ne_bytes());
        msg.extend_from_slice(&(props.len() as u32).to_ne_bytes());
        msg.resize(40, 0);
        msg.extend_from_slice(props);
        let ev = parse(&msg).unwrap();
        assert_eq!(ev.source, Source::Udev);
        assert_eq!(ev.action, "move");
        assert_eq!(ev.devpath_old.as_deref(), Some("/devices/virtual/net/old"));
    }

    #[test]
    fn garbage_and_escaping_paths_are_refused() {
        assert!(parse(b"").is_none());
        assert!(
            parse(b"libudev\0\xfe\xed\xca\xfe\0\0\0\0\xff\xff\xff\xff\xff\xff\xff\xff").is_none()
        );
        assert!(parse(b"add@/x\0ACTION=add\0DEVPATH=/devices/../../etc\0").is_none());
        assert!(parse(b"no at sign\0ACTION=add\0DEVPATH=/devices/x\0").is_none());
        let mut seed = 7u32;
        for len in 0..300usize {
            let bytes: Vec<u8> = (0..len)
                .map(|_| {
                    seed ^= seed << 13;
                    seed ^= seed >> 17;
                    seed ^= seed << 5;
                    seed as u8
                })
                .collect();
            let _ = parse(&bytes);
        }
    }
}
