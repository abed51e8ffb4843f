//! One remote-program call decoded once: the procedure and its typed arguments. The daemon
//! dispatches on it and the fuzz targets decode with it, so what the daemon accepts is
//! what is fuzzed, and a procedure can only reach its own handler.

use xdr::{Decoder, Xdr};

use crate::remote::{self as r, proc};
use crate::REMOTE_STRING_MAX;

/// A call of the remote program, as the node-device daemon serves it. Every procedure it
/// does not serve is [`RemoteCall::Unserved`]: those are answered from the procedure
/// table (read-only refusal, "not supported"), never by a node-device handler.
#[derive(Debug, Clone, PartialEq)]
pub enum RemoteCall {
    ConnectOpen(r::ConnectOpenArgs),
    ConnectClose,
    AuthList,
    AuthPolkit,
    /// AUTH_SASL_INIT, _START or _STEP (the procedure number).
    AuthSasl(i32),
    ConnectSupportsFeature(r::SupportsFeatureArgs),
    ConnectGetType,
    ConnectGetUri,
    ConnectIsSecure,
    ConnectGetLibVersion,
    ConnectRegisterCloseCallback,
    ConnectUnregisterCloseCallback,
    ConnectSetIdentity(r::SetIdentityArgs),
    NodeNumOfDevices(r::NodeNumOfDevicesArgs),
    NodeListDevices(r::NodeListDevicesArgs),
    ConnectListAllNodeDevices(r::ListAllArgs),
    NodeDeviceLookupByName(r::NameArgs),
    NodeDeviceLookupScsiHostByWwn(r::LookupScsiHostByWwnArgs),
    NodeDeviceGetXmlDesc(r::NameFlagsArgs),
    NodeDeviceGetParent(r::NameArgs),
    NodeDeviceNumOfCaps(r::NameArgs),
    NodeDeviceListCaps(r::ListCapsArgs),
    NodeDeviceIsActive(r::NameArgs),
    NodeDeviceIsPersistent(r::NameArgs),
    NodeDeviceGetAutostart(r::NameArgs),
    ConnectNodeDeviceEventRegisterAny(r::EventRegisterAnyArgs),
    ConnectNodeDeviceEventDeregisterAny(r::EventDeregisterAnyArgs),
    /// The calls that change devices (and may wait for the kernel).
    Manage(ManageCall),
    /// The calls that hand a PCI device to VFIO and back (libvirt serves them only in its
    /// hypervisor drivers).
    Pci(PciCall),
    /// Any other procedure of the table (its arguments are checked against its layout,
    /// see [`crate::arg_layouts`]).
    Unserved(i32),
}

/// The node-device calls that create, define, change or remove devices.
#[derive(Debug, Clone, PartialEq)]
pub enum ManageCall {
    NodeDeviceCreateXml(r::XmlFlagsArgs),
    NodeDeviceDefineXml(r::XmlFlagsArgs),
    NodeDeviceDestroy(r::NameArgs),
    NodeDeviceUndefine(r::NameFlagsArgs),
    NodeDeviceCreate(r::NameFlagsArgs),
    NodeDeviceSetAutostart(r::SetAutostartArgs),
    NodeDeviceUpdate(r::NodeDeviceUpdateArgs),
}

/// virNodeDeviceDettach, DetachFlags, ReAttach and Reset.
#[derive(Debug, Clone, PartialEq)]
pub enum PciCall {
    NodeDeviceDettach(r::NameArgs),
    NodeDeviceDetachFlags(r::NodeDeviceDetachFlagsArgs),
    NodeDeviceReAttach(r::NameArgs),
    NodeDeviceReset(r::NameArgs),
}

impl PciCall {
    /// The device the call is about.
    pub fn name(&self) -> &str {
        match self {
            Self::NodeDeviceDettach(a) | Self::NodeDeviceReAttach(a) | Self::NodeDeviceReset(a) => {
                &a.name
            }
            Self::NodeDeviceDetachFlags(a) => &a.name,
        }
    }
}

/// The arguments did not decode (libvirt's "Unable to decode message payload").
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("Unable to decode message payload")]
pub struct DecodeError;

fn args<T: Xdr>(bytes: &[u8]) -> Result<T, DecodeError> {
    T::decode(&mut Decoder::new(bytes).with_string_max(REMOTE_STRING_MAX)).map_err(|_| DecodeError)
}

impl RemoteCall {
    /// Decodes procedure `p`'s arguments. As libvirt, bytes after the arguments are
    /// ignored. Whether `p` is a procedure at all is the caller's question.
    pub fn decode(p: i32, bytes: &[u8]) -> Result<RemoteCall, DecodeError> {
        use ManageCall as M;
        use RemoteCall as C;
        Ok(match p {
            proc::CONNECT_OPEN => C::ConnectOpen(args(bytes)?),
            proc::CONNECT_CLOSE => C::ConnectClose,
            proc::AUTH_LIST => C::AuthList,
            proc::AUTH_POLKIT => C::AuthPolkit,
            proc::AUTH_SASL_INIT | proc::AUTH_SASL_START | proc::AUTH_SASL_STEP => C::AuthSasl(p),
            proc::CONNECT_SUPPORTS_FEATURE => C::ConnectSupportsFeature(args(bytes)?),
            proc::CONNECT_GET_TYPE => C::ConnectGetType,
            proc::CONNECT_GET_URI => C::ConnectGetUri,
            proc::CONNECT_IS_SECURE => C::ConnectIsSecure,
            proc::CONNECT_GET_LIB_VERSION => C::ConnectGetLibVersion,
            proc::CONNECT_REGISTER_CLOSE_CALLBACK => C::ConnectRegisterCloseCallback,
            proc::CONNECT_UNREGISTER_CLOSE_CALLBACK => C::ConnectUnregisterCloseCallback,
            proc::CONNECT_SET_IDENTITY => C::ConnectSetIdentity(args(bytes)?),
            proc::NODE_NUM_OF_DEVICES => C::NodeNumOfDevices(args(bytes)?),
            proc::NODE_LIST_DEVICES => C::NodeListDevices(args(bytes)?),
            proc::CONNECT_LIST_ALL_NODE_DEVICES => C::ConnectListAllNodeDevices(args(bytes)?),
            proc::NODE_DEVICE_LOOKUP_BY_NAME => C::NodeDeviceLookupByName(args(bytes)?),
            proc::NODE_DEVICE_LOOKUP_SCSI_HOST_BY_WWN => {
                C::NodeDeviceLookupScsiHostByWwn(args(bytes)?)
            }
            proc::NODE_DEVICE_GET_XML_DESC => C::NodeDeviceGetXmlDesc(args(bytes)?),
            proc::NODE_DEVICE_GET_PARENT => C::NodeDeviceGetParent(args(bytes)?),
            proc::NODE_DEVICE_NUM_OF_CAPS => C::NodeDeviceNumOfCaps(args(bytes)?),
            proc::NODE_DEVICE_LIST_CAPS => C::NodeDeviceListCaps(args(bytes)?),
            proc::NODE_DEVICE_IS_ACTIVE => C::NodeDeviceIsActive(args(bytes)?),
            proc::NODE_DEVICE_IS_PERSISTENT => C::NodeDeviceIsPersistent(args(bytes)?),
            proc::NODE_DEVICE_GET_AUTOSTART => C::NodeDeviceGetAutostart(args(bytes)?),
            proc::CONNECT_NODE_DEVICE_EVENT_REGISTER_ANY => {
                C::ConnectNodeDeviceEventRegisterAny(args(bytes)?)
            }
            proc::CONNECT_NODE_DEVICE_EVENT_DEREGISTER_ANY => {
                C::ConnectNodeDeviceEventDeregisterAny(args(bytes)?)
            }
            proc::NODE_DEVICE_CREATE_XML => C::Manage(M::NodeDeviceCreateXml(args(bytes)?)),
            proc::NODE_DEVICE_DEFINE_XML => C::Manage(M::NodeDeviceDefineXml(args(bytes)?)),
            proc::NODE_DEVICE_DESTROY => C::Manage(M::NodeDeviceDestroy(args(bytes)?)),
            proc::NODE_DEVICE_UNDEFINE => C::Manage(M::NodeDeviceUndefine(args(bytes)?)),
            proc::NODE_DEVICE_CREATE => C::Manage(M::NodeDeviceCreate(args(bytes)?)),
            proc::NODE_DEVICE_SET_AUTOSTART => C::Manage(M::NodeDeviceSetAutostart(args(bytes)?)),
            proc::NODE_DEVICE_UPDATE => C::Manage(M::NodeDeviceUpdate(args(bytes)?)),
            proc::NODE_DEVICE_DETTACH => C::Pci(PciCall::NodeDeviceDettach(args(bytes)?)),
            proc::NODE_DEVICE_DETACH_FLAGS => C::Pci(PciCall::NodeDeviceDetachFlags(args(bytes)?)),
            proc::NODE_DEVICE_RE_ATTACH => C::Pci(PciCall::NodeDeviceReAttach(args(bytes)?)),
            proc::NODE_DEVICE_RESET => C::Pci(PciCall::NodeDeviceReset(args(bytes)?)),
            other => C::Unserved(other),
        })
    }

    /// Whether the call is answered before CONNECT_OPEN (the rest need an open
    /// connection).
    pub fn before_open(&self) -> bool {
        use RemoteCall as C;
        matches!(
            self,
            C::ConnectOpen(_)
                | C::ConnectClose
                | C::AuthList
                | C::AuthPolkit
                | C::AuthSasl(_)
                | C::ConnectSupportsFeature(_)
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_served_procedure_reaches_its_own_variant() {
        let name = xdr::to_bytes(&r::NameArgs { name: "d".into() });
        assert_eq!(
            RemoteCall::decode(proc::NODE_DEVICE_DESTROY, &name),
            Ok(RemoteCall::Manage(ManageCall::NodeDeviceDestroy(
                r::NameArgs { name: "d".into() }
            )))
        );
        assert_eq!(
            RemoteCall::decode(proc::NODE_DEVICE_IS_ACTIVE, &name),
            Ok(RemoteCall::NodeDeviceIsActive(r::NameArgs {
                name: "d".into()
            }))
        );
        assert_eq!(
            RemoteCall::decode(proc::NODE_DEVICE_RESET, &name),
            Ok(RemoteCall::Pci(PciCall::NodeDeviceReset(r::NameArgs {
                name: "d".into()
            })))
        );
        // A procedure nobody serves never falls into a served one's arm.
        assert_eq!(
            RemoteCall::decode(121, &name),
            Ok(RemoteCall::Unserved(121))
        );
        assert_eq!(RemoteCall::decode(446, &[]), Ok(RemoteCall::Unserved(446)));
        assert!(
            RemoteCall::decode(proc::CONNECT_OPEN, &[0, 0, 0, 0, 0, 0, 0, 0])
                .unwrap()
                .before_open()
        );
        assert!(!RemoteCall::decode(proc::CONNECT_GET_TYPE, &[])
            .unwrap()
            .before_open());
    }

    #[test]
    fn truncated_arguments_do_not_decode_and_trailing_bytes_are_ignored() {
        let name = xdr::to_bytes(&r::NameFlagsArgs {
            name: "dev".into(),
            flags: 0,
        });
        for cut in 0..name.len() {
            assert_eq!(
                RemoteCall::decode(proc::NODE_DEVICE_GET_XML_DESC, &name[..cut]),
                Err(DecodeError)
            );
        }
        let mut longer = name.clone();
        longer.extend_from_slice(&[1, 2, 3]);
        assert!(RemoteCall::decode(proc::NODE_DEVICE_GET_XML_DESC, &longer).is_ok());
        // Procedures without arguments take any bytes.
        assert_eq!(
            RemoteCall::decode(proc::CONNECT_GET_TYPE, &[9; 7]),
            Ok(RemoteCall::ConnectGetType)
        );
    }
}
