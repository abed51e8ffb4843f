//! Asking polkitd whether a client process may use a socket or call an API (libvirt's
//! `virPolkitCheckAuth`), over the system bus that `DBUS_SYSTEM_BUS_ADDRESS` names.
//!
//! Each check is a future of the client's own connection task: a slow or absent polkitd
//! delays only the client being checked, never another one.

use std::collections::HashMap;
use std::time::Duration;

use protocol::{ErrorCode, ErrorDomain, VirError};
use tokio::sync::Mutex;
use zbus::zvariant::Value;

/// libvirt's `VIR_DBUS_METHOD_CALL_TIMEOUT_MILIS`: how long a D-Bus call may take.
const CALL_TIMEOUT: Duration = Duration::from_secs(30);

/// polkit's `AllowUserInteraction` flag, which libvirt always sets for a socket check.
const ALLOW_USER_INTERACTION: u32 = 1;

/// The system bus connection, shared by every check as libvirt shares its one.
///
/// libvirt keeps a failed connection attempt for the daemon's lifetime; this one tries
/// again on the next check, so a bus that comes up late (or restarts) is picked up.
static SYSTEM_BUS: Mutex<Option<zbus::Connection>> = Mutex::const_new(None);

/// The polkit action guarding a socket.
pub fn socket_action(readonly: bool) -> &'static str {
    if readonly {
        "org.libvirt.unix.monitor"
    } else {
        "org.libvirt.unix.manage"
    }
}

/// Whether `pid` (started at `start_time`, running as `uid`) may perform `action`; the
/// refusals are libvirt's errors.
pub async fn check_auth(
    action: &str,
    pid: i32,
    start_time: u64,
    uid: u32,
    details: &[(&str, &str)],
    allow_interaction: bool,
) -> Result<(), VirError> {
    let bus = system_bus().await?;
    let subject: HashMap<&str, Value> = HashMap::from([
        ("pid", Value::U32(pid as u32)),
        ("start-time", Value::U64(start_time)),
        ("uid", Value::I32(uid as i32)),
    ]);
    let details: HashMap<&str, &str> = details.iter().copied().collect();
    let flags = if allow_interaction {
        ALLOW_USER_INTERACTION
    } else {
        0
    };
    let body = (("unix-process", subject), action, details, flags, "");
    let call = bus.call_method(
        Some("org.freedesktop.PolicyKit1"),
        "/org/freedesktop/PolicyKit1/Authority",
        Some("org.freedesktop.PolicyKit1.Authority"),
        "CheckAuthorization",
        &body,
    );
    let reply = match tokio::time::timeout(CALL_TIMEOUT, call).await {
        Ok(Ok(reply)) => reply,
        Ok(Err(e)) => {
            if !matches!(e, zbus::Error::MethodError(..)) {
                // The connection may be gone (the bus restarted): connect anew next time.
                SYSTEM_BUS.lock().await.take();
            }
            return Err(service_error(&e));
        }
        Err(_) => return Err(dbus_service("Timeout was reached")),
    };
    let (authorized, challenge, details): (bool, bool, HashMap<String, String>) =
        reply.body().deserialize().map_err(|e| service_error(&e))?;
    refusal(action, authorized, challenge, &details).map_or(Ok(()), Err)
}

/// libvirt's reading of a CheckAuthorization result: `None` when authorized.
fn refusal(
    action: &str,
    authorized: bool,
    challenge: bool,
    details: &HashMap<String, String>,
) -> Option<VirError> {
    if authorized {
        return None;
    }
    let dismissed = details.get("polkit.dismissed").map(String::as_str) == Some("true");
    Some(if dismissed {
        VirError::new(
            ErrorCode::AuthCancelled,
            ErrorDomain::Polkit,
            "user cancelled authentication process",
        )
    } else if challenge {
        VirError::new(
            ErrorCode::AuthUnavailable,
            ErrorDomain::Polkit,
            format!("no polkit agent available to authenticate action '{action}'"),
        )
    } else {
        VirError::new(
            ErrorCode::AuthFailed,
            ErrorDomain::Polkit,
            "access denied by policy",
        )
    })
}

async fn system_bus() -> Result<zbus::Connection, VirError> {
    let mut bus = SYSTEM_BUS.lock().await;
    if let Some(c) = bus.as_ref() {
        return Ok(c.clone());
    }
    let connected = match tokio::time::timeout(CALL_TIMEOUT, zbus::Connection::system()).await {
        Ok(Ok(c)) => c,
        Ok(Err(e)) => return Err(no_system_bus(&connect_error(&e))),
        Err(_) => return Err(no_system_bus("Timeout was reached")),
    };
    *bus = Some(connected.clone());
    Ok(connected)
}

fn no_system_bus(why: &str) -> VirError {
    VirError::new(
        ErrorCode::InternalError,
        ErrorDomain::Dbus,
        format!("Unable to get system bus connection: {why}"),
    )
}

fn dbus_service(message: &str) -> VirError {
    VirError::new(ErrorCode::DbusService, ErrorDomain::Dbus, message)
}

/// A failed call as GDBus words it for libvirt (`GDBus.Error:NAME: MESSAGE` for an
/// error the other end sent).
fn service_error(e: &zbus::Error) -> VirError {
    match e {
        zbus::Error::MethodError(name, detail, _) => dbus_service(&format!(
            "GDBus.Error:{}: {}",
            name.as_str(),
            detail.as_deref().unwrap_or("")
        )),
        zbus::Error::InputOutput(io) => dbus_service(&io_text(io)),
        other => dbus_service(&other.to_string()),
    }
}

/// A failed connection as GDBus words it ("Could not connect: No such file or
/// directory").
fn connect_error(e: &zbus::Error) -> String {
    match e {
        zbus::Error::InputOutput(io) | zbus::Error::Connection(io, _) => {
            format!("Could not connect: {}", io_text(io))
        }
        zbus::Error::Address(a) => format!("Could not connect: {a}"),
        other => other.to_string(),
    }
}

fn io_text(e: &std::io::Error) -> String {
    match e.raw_os_error() {
        Some(n) => nix::errno::Errno::from_raw(n).desc().to_owned(),
        None => e.to_string(),
    }
}

/// When `pid` started, for the polkit subject; libvirt's error when it cannot be read.
pub fn process_start_time(pid: i32) -> Result<u64, VirError> {
    rpc::identity::process_start_time(pid)
        .map_err(|e| VirError::new(ErrorCode::InternalError, ErrorDomain::None, e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refusals_are_libvirts() {
        let none = HashMap::new();
        assert!(refusal("a", true, true, &none).is_none());
        let e = refusal("org.libvirt.unix.manage", false, true, &none).unwrap();
        assert_eq!(e.code, ErrorCode::AuthUnavailable as i32);
        assert_eq!(
            e.message,
            "authentication unavailable: no polkit agent available to authenticate action \
             'org.libvirt.unix.manage'"
        );
        let e = refusal("x", false, false, &none).unwrap();
        assert_eq!(e.message, "authentication failed: access denied by policy");
        let dismissed = HashMap::from([("polkit.dismissed".into(), "true".into())]);
        let e = refusal("x", false, true, &dismissed).unwrap();
        assert_eq!(e.code, ErrorCode::AuthCancelled as i32);
    }
}
