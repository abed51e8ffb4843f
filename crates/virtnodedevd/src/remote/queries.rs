//! The node-device queries (lists, lookups, XML, capabilities, autostart and state) and
//! event registration.

use nodedev::{CapType, Device};
use protocol::remote as r;
use protocol::{
    list_flags, ErrorDomain, VirError, REMOTE_NODE_DEVICE_CAPS_LIST_MAX,
    REMOTE_NODE_DEVICE_LIST_MAX,
};

use super::{bad_flags, encode, lookup, read_only, CallResult, RemoteProgram, Session};

impl RemoteProgram {
    pub(super) fn num_of_devices(&self, a: r::NodeNumOfDevicesArgs) -> CallResult {
        if a.flags != 0 {
            return Err(bad_flags(a.flags, "nodeNumOfDevices"));
        }
        let list = self.driver.devices();
        let n = list
            .iter()
            .filter(|d| has_cap_str(d, a.cap.as_deref()))
            .count();
        encode(&r::IntRet { value: n as i32 })
    }

    pub(super) fn list_devices(&self, a: r::NodeListDevicesArgs) -> CallResult {
        check_maxnames(
            a.maxnames,
            REMOTE_NODE_DEVICE_LIST_MAX,
            "REMOTE_NODE_DEVICE_LIST_MAX",
        )?;
        if a.flags != 0 {
            return Err(bad_flags(a.flags, "nodeListDevices"));
        }
        let list = self.driver.devices();
        let names = list
            .iter()
            .filter(|d| has_cap_str(d, a.cap.as_deref()))
            .take(a.maxnames as usize)
            .map(|d| d.name().to_owned())
            .collect();
        encode(&r::NamesRet { names })
    }

    pub(super) fn list_all(&self, a: r::ListAllArgs) -> CallResult {
        if a.flags & !(CapType::LIST_MASK | list_flags::INACTIVE | list_flags::ACTIVE) != 0 {
            return Err(bad_flags(a.flags, "nodeConnectListAllNodeDevices"));
        }
        let list = self.driver.devices();
        let matching = list.iter().filter(|d| matches_list_flags(d, a.flags));
        if a.need_results == 0 {
            return encode(&r::ListAllRet {
                devices: Vec::new(),
                ret: matching.count() as u32,
            });
        }
        let devices: Vec<r::NodeDevice> = matching
            .map(|d| r::NodeDevice {
                name: d.name().to_owned(),
            })
            .collect();
        if devices.len() > REMOTE_NODE_DEVICE_LIST_MAX {
            return Err(VirError::rpc_internal(format!(
                "Too many node_devices '{}' for limit '{}'",
                devices.len(),
                REMOTE_NODE_DEVICE_LIST_MAX
            )));
        }
        let ret = devices.len() as u32;
        encode(&r::ListAllRet { devices, ret })
    }

    pub(super) fn lookup_by_name(&self, a: r::NameArgs) -> CallResult {
        let list = self.driver.devices();
        let dev = lookup(&list, &a.name)?;
        encode(&r::NodeDeviceRet {
            dev: r::NodeDevice {
                name: dev.name().to_owned(),
            },
        })
    }

    pub(super) fn lookup_scsi_host_by_wwn(&self, a: r::LookupScsiHostByWwnArgs) -> CallResult {
        if a.flags != 0 {
            return Err(bad_flags(a.flags, "nodeDeviceLookupSCSIHostByWWN"));
        }
        let list = self.driver.devices();
        let found = list
            .iter()
            .find(|d| d.scsi_host_wwns() == Some((a.wwnn.as_str(), a.wwpn.as_str())));
        match found {
            Some(d) => encode(&r::NodeDeviceRet {
                dev: r::NodeDevice {
                    name: d.name().to_owned(),
                },
            }),
            // libvirt 9.0's driver fails here without reporting an error.
            None => Err(VirError::unknown_cause()),
        }
    }

    pub(super) fn get_xml_desc(&self, a: r::NameFlagsArgs) -> CallResult {
        // VIR_NODE_DEVICE_XML_INACTIVE (libvirt 10.1.0): the defined configuration.
        if a.flags & !1 != 0 {
            return Err(bad_flags(a.flags, "nodeDeviceGetXMLDesc"));
        }
        let list = self.driver.devices();
        let dev = self.driver.refreshed(lookup(&list, &a.name)?);
        let inactive;
        let xml = if a.flags & 1 != 0 {
            inactive = crate::manage::inactive_xml(&self.driver, &dev.device)?;
            &inactive
        } else {
            &dev.xml
        };
        // remote_node_device_get_xml_desc_ret is one string; encoded in place.
        let mut e = xdr::Encoder::new();
        e.put_str(xml);
        Ok(e.into_inner())
    }

    pub(super) fn get_parent(&self, a: r::NameArgs) -> CallResult {
        let list = self.driver.devices();
        let dev = lookup(&list, &a.name)?;
        encode(&r::OptStringRet {
            value: dev.parent().map(str::to_owned),
        })
    }

    pub(super) fn num_of_caps(&self, a: r::NameArgs) -> CallResult {
        let list = self.driver.devices();
        let dev = self.driver.refreshed(lookup(&list, &a.name)?);
        encode(&r::IntRet {
            value: dev.device.caps().len() as i32,
        })
    }

    pub(super) fn list_caps(&self, a: r::ListCapsArgs) -> CallResult {
        check_maxnames(
            a.maxnames,
            REMOTE_NODE_DEVICE_CAPS_LIST_MAX,
            "REMOTE_NODE_DEVICE_CAPS_LIST_MAX",
        )?;
        let list = self.driver.devices();
        let dev = self.driver.refreshed(lookup(&list, &a.name)?);
        let names = dev
            .device
            .caps()
            .into_iter()
            .take(a.maxnames as usize)
            .map(|c| c.name().to_owned())
            .collect();
        encode(&r::NamesRet { names })
    }

    /// libvirt 9.0's public API refuses this one on read-only connections.
    pub(super) fn get_autostart(&self, s: &Session, a: r::NameArgs) -> CallResult {
        if s.readonly {
            return Err(read_only(ErrorDomain::NodeDev, "virNodeDeviceGetAutostart"));
        }
        self.device_int(&a.name, Device::autostart)
    }

    pub(super) fn device_int(&self, name: &str, f: impl Fn(&Device) -> bool) -> CallResult {
        let list = self.driver.devices();
        let dev = lookup(&list, name)?;
        encode(&r::IntRet {
            value: f(dev) as i32,
        })
    }

    pub(super) fn event_register(&self, s: &mut Session, a: r::EventRegisterAnyArgs) -> CallResult {
        if !matches!(
            a.event_id,
            protocol::event_id::LIFECYCLE | protocol::event_id::UPDATE
        ) {
            return Err(VirError::rpc_internal(format!(
                "unsupported node device event ID {}",
                a.event_id
            )));
        }
        let id = self.events.register(
            s.info.id,
            a.event_id,
            a.dev.map(|d| d.name),
            s.events.clone(),
        );
        encode(&r::IntRet { value: id })
    }

    pub(super) fn event_deregister(
        &self,
        s: &mut Session,
        a: r::EventDeregisterAnyArgs,
    ) -> CallResult {
        if !self.events.deregister(s.info.id, a.callback_id) {
            return Err(VirError::rpc_internal(format!(
                "node device event callback {} not registered",
                a.callback_id
            )));
        }
        Ok(Vec::new())
    }
}

fn check_maxnames(maxnames: i32, max: usize, what: &str) -> Result<(), VirError> {
    if maxnames < 0 {
        return Err(VirError::rpc("maxnames must be non-negative"));
    }
    if maxnames as usize > max {
        return Err(VirError::rpc(format!("maxnames > {what}")));
    }
    Ok(())
}

/// NUM_OF_DEVICES / LIST_DEVICES filter: no cap, or a capability the device has
/// (nested ones included); unknown names match nothing.
fn has_cap_str(d: &Device, cap: Option<&str>) -> bool {
    match cap {
        None => true,
        Some(c) => CapType::from_name(c).is_some_and(|c| d.has_cap(c)),
    }
}

/// virNodeDeviceMatch: any requested capability, and one of the requested states.
fn matches_list_flags(d: &Device, flags: u32) -> bool {
    let caps = flags & CapType::LIST_MASK;
    if caps != 0
        && !CapType::ALL
            .iter()
            .any(|&c| caps & c.list_flag() != 0 && d.has_cap(c))
    {
        return false;
    }
    let states = flags & (list_flags::ACTIVE | list_flags::INACTIVE);
    if states != 0 {
        let want = if d.is_active() {
            list_flags::ACTIVE
        } else {
            list_flags::INACTIVE
        };
        if states & want == 0 {
            return false;
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn maxnames_limits_give_rpc_errors() {
        assert_eq!(
            check_maxnames(65537, 65536, "REMOTE_NODE_DEVICE_LIST_MAX")
                .unwrap_err()
                .message,
            "maxnames > REMOTE_NODE_DEVICE_LIST_MAX"
        );
        assert!(check_maxnames(-1, 65536, "X").is_err());
        assert!(check_maxnames(65536, 65536, "X").is_ok());
    }
}
