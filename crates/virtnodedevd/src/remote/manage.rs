//! The calls that change devices, handed to the management area ([`crate::manage`]).
//! libvirt has decoded the arguments by now; its public API then refuses read-only
//! connections, its driver checks flags, then looks the device up (or parses the XML),
//! then checks access, then acts.

use protocol::remote as r;
use protocol::{ErrorCode, ErrorDomain, VirError};
use protocol::{ManageCall, ProcInfo};

use super::{check_flags, encode, lookup, read_only, CallResult, RemoteProgram, Session};
use crate::access::Perm;
use crate::driver::Driver;
use crate::manage;

/// VIR_NODE_DEVICE_CREATE_XML_VALIDATE, VIR_NODE_DEVICE_DEFINE_XML_VALIDATE.
const XML_VALIDATE: u32 = 1;

/// The name libvirt's parser gives a device defined or created from XML, which is what
/// its access check sees.
const NEW_DEVICE: &str = "new device";

impl RemoteProgram {
    /// One device-changing call, refused on a read-only connection by the public API it
    /// came through.
    pub(super) async fn manage(
        &self,
        s: &Session,
        info: &ProcInfo,
        call: ManageCall,
    ) -> CallResult {
        if s.readonly {
            return Err(read_only(
                ErrorDomain::NodeDev,
                info.api.unwrap_or(info.name),
            ));
        }
        if self.access.enabled() {
            self.manage_access(s, &call).await?;
        }
        // Creating a device waits for the kernel (up to a minute): off the thread that
        // serves every client.
        let driver = self.driver.clone();
        tokio::task::spawn_blocking(move || manage(&driver, call))
            .await
            .unwrap_or_else(|_| Err(VirError::no_error_set()))
    }

    /// The driver's checks up to its access check, then the access check (the rest is
    /// checked again, at no cost worth saving, when the call is carried out).
    async fn manage_access(&self, s: &Session, call: &ManageCall) -> Result<(), VirError> {
        use ManageCall as M;
        let exists = |name: &str| lookup(&self.driver.devices(), name).map(|_| ());
        let (perms, device): (&[Perm], &str) = match call {
            M::NodeDeviceCreateXml(a) => {
                check_flags(a.flags, XML_VALIDATE, "nodeDeviceCreateXML")?;
                manage::check_definition(&self.driver, &a.xml_desc, a.flags & XML_VALIDATE != 0)?;
                (&[Perm::NodeDeviceWrite, Perm::NodeDeviceStart], NEW_DEVICE)
            }
            M::NodeDeviceDefineXml(a) => {
                check_flags(a.flags, XML_VALIDATE, "nodeDeviceDefineXML")?;
                manage::check_definition(&self.driver, &a.xml_desc, a.flags & XML_VALIDATE != 0)?;
                (&[Perm::NodeDeviceWrite, Perm::NodeDeviceSave], NEW_DEVICE)
            }
            M::NodeDeviceDestroy(a) => {
                exists(&a.name)?;
                (&[Perm::NodeDeviceStop], &a.name)
            }
            M::NodeDeviceUndefine(a) => {
                check_flags(a.flags, 0, "nodeDeviceUndefine")?;
                exists(&a.name)?;
                (&[Perm::NodeDeviceDelete], &a.name)
            }
            M::NodeDeviceCreate(a) => {
                check_flags(a.flags, 0, "nodeDeviceCreate")?;
                if lookup(&self.driver.devices(), &a.name)?.is_active() {
                    return Err(already_active());
                }
                (&[Perm::NodeDeviceStart], &a.name)
            }
            M::NodeDeviceUpdate(a) => {
                let known = manage::UPDATE_AFFECT_LIVE | manage::UPDATE_AFFECT_CONFIG;
                check_flags(a.flags, known, "nodeDeviceUpdate")?;
                exists(&a.name)?;
                // Saving is needed for the current configuration (no flag) or the
                // persistent one.
                let saves = a.flags & known == 0 || a.flags & manage::UPDATE_AFFECT_CONFIG != 0;
                let perms: &[Perm] = if saves {
                    &[Perm::NodeDeviceWrite, Perm::NodeDeviceSave]
                } else {
                    &[Perm::NodeDeviceWrite]
                };
                (perms, &a.name)
            }
            M::NodeDeviceSetAutostart(a) => {
                exists(&a.name)?;
                (&[Perm::NodeDeviceWrite], &a.name)
            }
        };
        for &perm in perms {
            self.ensure(s, perm, Some(device)).await?;
        }
        Ok(())
    }
}

fn already_active() -> VirError {
    VirError::new(
        ErrorCode::OperationInvalid,
        ErrorDomain::NodeDev,
        "Device is already active",
    )
}

/// One device-changing call, carried out.
fn manage(driver: &Driver, call: ManageCall) -> CallResult {
    use ManageCall as M;
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
                return Err(already_active());
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
