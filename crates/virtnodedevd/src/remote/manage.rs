//! The calls that change devices, handed to the management area ([`crate::manage`]).
//! libvirt has decoded the arguments by now; its public API then refuses read-only
//! connections, its driver checks flags, then looks the device up.

use protocol::remote as r;
use protocol::ManageCall;
use protocol::{ErrorCode, ErrorDomain, VirError};

use super::{check_flags, encode, lookup, read_only, CallResult};
use crate::driver::Driver;
use crate::manage;

/// VIR_NODE_DEVICE_CREATE_XML_VALIDATE, VIR_NODE_DEVICE_DEFINE_XML_VALIDATE.
const XML_VALIDATE: u32 = 1;

/// One device-changing call; `api` is the public API it came through.
pub(super) fn manage(driver: &Driver, readonly: bool, api: &str, call: ManageCall) -> CallResult {
    use ManageCall as M;
    if readonly {
        return Err(read_only(ErrorDomain::NodeDev, api));
    }
    let list = driver.devices();
    match call {
        M::NodeDeviceCreateXml(a) => {
            check_flags(a.flags, XML_VALIDATE, "nodeDeviceCreateXML")?;
            let name = manage::create_xml(driver, &a.xml_desc, a.flags & XML_VALIDATE != 0)?;
            encode(&r::NodeDeviceRet {
                dev: r::NodeDevice { name },
            })
        }
        M::NodeDeviceDefineXml(a) => {
            check_flags(a.flags, XML_VALIDATE, "nodeDeviceDefineXML")?;
            let name = manage::define_xml(driver, &a.xml_desc, a.flags & XML_VALIDATE != 0)?;
            encode(&r::NodeDeviceRet {
                dev: r::NodeDevice { name },
            })
        }
        M::NodeDeviceDestroy(a) => {
            lookup(&list, &a.name)?;
            manage::destroy(driver, &a.name)?;
            encode(&())
        }
        M::NodeDeviceUndefine(a) => {
            check_flags(a.flags, 0, "nodeDeviceUndefine")?;
            lookup(&list, &a.name)?;
            manage::undefine(driver, &a.name)?;
            encode(&())
        }
        M::NodeDeviceCreate(a) => {
            check_flags(a.flags, 0, "nodeDeviceCreate")?;
            if lookup(&list, &a.name)?.is_active() {
                return Err(VirError::new(
                    ErrorCode::OperationInvalid,
                    ErrorDomain::NodeDev,
                    "Device is already active",
                ));
            }
            manage::start(driver, &a.name)?;
            encode(&())
        }
        M::NodeDeviceUpdate(a) => {
            let known = manage::UPDATE_AFFECT_LIVE | manage::UPDATE_AFFECT_CONFIG;
            check_flags(a.flags, known, "nodeDeviceUpdate")?;
            lookup(&list, &a.name)?;
            manage::update(driver, &a.name, &a.xml_desc, a.flags)?;
            encode(&())
        }
        M::NodeDeviceSetAutostart(a) => {
            lookup(&list, &a.name)?;
            manage::set_autostart(driver, &a.name, a.autostart != 0)?;
            encode(&())
        }
    }
}
