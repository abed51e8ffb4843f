//! Opening a connection: authentication, CONNECT_OPEN's URI, and the features a client
//! asks about.

use protocol::remote as r;
use protocol::{feature, ErrorCode, ErrorDomain, VirError, VIR_CONNECT_RO};
use rpc::Reply;

use crate::access::Perm;
use crate::polkit;
use crate::typed_params;

use super::{encode, Auth, CallResult, RemoteProgram, Session};

impl RemoteProgram {
    pub(super) fn auth_list(&self, s: &mut Session) -> CallResult {
        if self.auth == Auth::Polkit && !s.authenticated && s.info.uid == 0 {
            tracing::info!(pid = s.info.pid, "Bypass polkit auth for privileged client");
            s.authenticated = true;
        }
        let t = match self.auth {
            _ if s.authenticated => r::auth_type::NONE,
            Auth::Sasl => r::auth_type::SASL,
            _ => r::auth_type::POLKIT,
        };
        encode(&r::AuthListRet { types: vec![t] })
    }

    /// libvirt asks polkitd on every AUTH_POLKIT, even from a client that already passed
    /// (root included), and passes the client only when polkitd says yes.
    pub(super) async fn auth_polkit(&self, s: &mut Session) -> CallResult {
        if self.auth != Auth::Polkit {
            return Err(VirError::no_error_set());
        }
        let info = &s.info;
        let start_time = polkit::process_start_time(info.pid)?;
        let action = polkit::socket_action(s.readonly);
        polkit::check_auth(action, info.pid, start_time, info.uid, &[], true).await?;
        tracing::info!(
            action,
            pid = info.pid,
            uid = info.uid,
            "Policy allowed action"
        );
        s.authenticated = true;
        encode(&r::IntRet { value: 1 })
    }

    pub(super) fn supports_feature(&self, s: &mut Session, a: r::SupportsFeatureArgs) -> Reply {
        if s.uri.is_none() && a.feature != feature::PROGRAM_KEEPALIVE {
            return Reply::err(VirError::rpc_internal("hypervisor connection not open"));
        }
        let supported = matches!(
            a.feature,
            feature::FD_PASSING
                | feature::PROGRAM_KEEPALIVE
                | feature::REMOTE_EVENT_CALLBACK
                | feature::REMOTE_CLOSE_CALLBACK
        );
        Reply {
            result: encode(&r::IntRet {
                value: supported as i32,
            }),
            close: false,
            start_keepalive: a.feature == feature::PROGRAM_KEEPALIVE,
            hang_up: false,
        }
    }

    pub(super) async fn open(&self, s: &mut Session, a: r::ConnectOpenArgs) -> CallResult {
        if s.uri.is_some() {
            // libvirt also forgets the connection it had.
            s.uri = None;
            s.readonly = s.info.readonly;
            return Err(VirError::rpc_internal("connection already open"));
        }
        let Some(name) = a.name else {
            return Err(VirError::rpc_internal("connection not open"));
        };
        let uri = self.accept_uri(&name)?;
        self.ensure(s, Perm::ConnectGetattr, None).await?;
        s.uri = Some(uri);
        s.readonly = s.info.readonly || a.flags & VIR_CONNECT_RO != 0;
        Ok(Vec::new())
    }

    /// CONNECT_SET_IDENTITY: a client allowed to (`connect:write`; with no access
    /// control, any client of the read-write socket, as in libvirt) speaks for another
    /// process, as libvirt's other daemons do for the clients they forward. The identity
    /// replaces the socket's for access control and the admin program's client-info.
    pub(super) async fn set_identity(&self, s: &mut Session, a: r::SetIdentityArgs) -> CallResult {
        self.ensure(s, Perm::ConnectWrite, None).await?;
        let identity = identity_of(&a.params)?;
        s.info.identity.set(identity);
        Ok(Vec::new())
    }

    /// Checks a CONNECT_OPEN URI as the nodedev driver's open does, returning the URI
    /// that CONNECT_GET_URI reports.
    pub(super) fn accept_uri(&self, name: &str) -> Result<String, VirError> {
        let expected = if self.privileged {
            "/system"
        } else {
            "/session"
        };
        // An empty name comes from `remote:` URIs; this daemon has only one driver.
        if name.is_empty() {
            return Ok(format!("nodedev://{expected}"));
        }
        let no_driver = |what: String| VirError::new(ErrorCode::NoConnect, ErrorDomain::None, what);
        let Some((scheme, rest)) = name.split_once(':') else {
            return Err(no_driver(format!(
                "URI '{name}' does not include a driver name"
            )));
        };
        if scheme != "nodedev" {
            return Err(no_driver(name.to_owned()));
        }
        let (rest, query) = match rest.split_once('?') {
            Some((r, q)) => (r, Some(q)),
            None => (rest, None),
        };
        let path = if let Some(after) = rest.strip_prefix("//") {
            let (host, path) = after.split_at(after.find('/').unwrap_or(after.len()));
            if !host.is_empty() {
                // The node-device driver is local only.
                return Err(no_driver(name.to_owned()));
            }
            path
        } else {
            rest
        };
        let path = path.split('#').next().unwrap_or("");
        if path != expected {
            return Err(VirError::new(
                ErrorCode::InternalError,
                ErrorDomain::None,
                format!("unexpected nodedev URI path '{path}', try nodedev://{expected}"),
            ));
        }
        Ok(match query {
            Some(q) => format!("nodedev://{expected}?{q}"),
            None => format!("nodedev://{expected}"),
        })
    }
}

/// `virIdentitySetParameters`: the keys libvirt knows, each with its type.
fn identity_of(params: &[r::TypedParam]) -> Result<rpc::Identity, VirError> {
    use r::TypedValue as V;
    typed_params::validate(
        params,
        &[
            ("user-name", "string"),
            ("unix-user-id", "ullong"),
            ("group-name", "string"),
            ("unix-group-id", "ullong"),
            ("process-id", "llong"),
            ("process-time", "ullong"),
            ("sasl-user-name", "string"),
            ("x509-distinguished-name", "string"),
            ("selinux-context", "string"),
            ("system.token", "string"),
        ],
    )?;
    let mut id = rpc::Identity::default();
    for p in params {
        match (p.field.as_str(), &p.value) {
            ("user-name", V::String(v)) => id.user_name = Some(v.clone()),
            ("unix-user-id", V::ULLong(v)) => id.unix_user_id = Some(*v),
            ("group-name", V::String(v)) => id.group_name = Some(v.clone()),
            ("unix-group-id", V::ULLong(v)) => id.unix_group_id = Some(*v),
            ("process-id", V::LLong(v)) => id.process_id = Some(*v),
            ("process-time", V::ULLong(v)) => id.process_time = Some(*v),
            ("sasl-user-name", V::String(v)) => id.sasl_user_name = Some(v.clone()),
            ("x509-distinguished-name", V::String(v)) => id.x509_dname = Some(v.clone()),
            ("selinux-context", V::String(v)) => id.selinux_context = Some(v.clone()),
            ("system.token", V::String(v)) => id.system_token = Some(v.clone()),
            _ => {}
        }
    }
    Ok(id)
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::driver::Driver;

    fn program(privileged: bool) -> RemoteProgram {
        let events = Arc::new(crate::events::Events::default());
        RemoteProgram {
            driver: Arc::new(Driver::new(
                nodedev::HostRoot::new("/nonexistent"),
                |_| {},
                events.clone(),
            )),
            events,
            auth: Auth::None,
            privileged,
            access: Default::default(),
        }
    }

    #[test]
    fn open_accepts_system_uris_as_libvirt_does() {
        let p = program(true);
        assert_eq!(
            p.accept_uri("nodedev:///system").unwrap(),
            "nodedev:///system"
        );
        assert_eq!(
            p.accept_uri("nodedev:/system").unwrap(),
            "nodedev:///system"
        );
        assert_eq!(
            p.accept_uri("nodedev:///system?foo=bar").unwrap(),
            "nodedev:///system?foo=bar"
        );
        assert_eq!(
            p.accept_uri("nodedev:///session").unwrap_err().message,
            "internal error: unexpected nodedev URI path '/session', try nodedev:///system"
        );
        assert_eq!(
            p.accept_uri("bogus:///system").unwrap_err().message,
            "no connection driver available for bogus:///system"
        );
        assert_eq!(
            p.accept_uri("nodedev").unwrap_err().message,
            "no connection driver available for URI 'nodedev' does not include a driver name"
        );
        assert_eq!(
            p.accept_uri("NODEDEV:///system").unwrap_err().code,
            ErrorCode::NoConnect as i32
        );
    }

    #[test]
    fn a_forwarded_identity_is_checked_as_libvirt_checks_it() {
        use r::{TypedParam, TypedValue as V};
        let p = |f: &str, value| TypedParam {
            field: f.into(),
            value,
        };
        let id = identity_of(&[
            p("unix-user-id", V::ULLong(1000)),
            p("process-id", V::LLong(42)),
            p(
                "selinux-context",
                V::String("system_u:system_r:virtd_t:s0".into()),
            ),
        ])
        .unwrap();
        assert_eq!(id.unix_user_id, Some(1000));
        assert_eq!(id.process_id, Some(42));
        assert_eq!(id.user_name, None);
        assert_eq!(
            id.selinux_context.as_deref(),
            Some("system_u:system_r:virtd_t:s0")
        );
        let e = identity_of(&[p("process-id", V::Int(42))]).unwrap_err();
        assert_eq!(
            (e.code, e.domain, e.message.as_str()),
            (
                8,
                0,
                "invalid argument: invalid type 'int' for parameter 'process-id', expected 'llong'"
            )
        );
        let e = identity_of(&[p("uid", V::ULLong(0))]).unwrap_err();
        assert_eq!(
            e.message,
            "argument unsupported: parameter 'uid' not supported"
        );
    }
}
