//! The procedures on a server's clients: `virAdmServerListClients`,
//! `virAdmServerLookupClient`, `virAdmClientGetInfo`, `virAdmClientClose`.

use protocol::admin::{
    ClientFlagsArgs, Client_, ListClientsArgs, ListClientsRet, LookupClientArgs, LookupClientRet,
    Server_, ADMIN_LIST_MAX,
};
use protocol::remote::{TypedParam, TypedValue};
use rpc::{ClientInfo, ClientSnapshot};

use super::error::{check_flags, AdminError};
use super::params::encode;
use super::{AdminProgram, AdminResult};

impl AdminProgram {
    pub(super) fn server_list_clients(&self, a: ListClientsArgs) -> AdminResult {
        let srv = self.lookup(&a.srv.name)?;
        check_flags(a.flags, "adminServerListClients")?;
        let all = srv.clients();
        let n = all.len().min(ADMIN_LIST_MAX);
        let clients = if a.need_results != 0 {
            all.iter()
                .take(ADMIN_LIST_MAX)
                .map(|c| client_ref(&a.srv.name, c))
                .collect()
        } else {
            Vec::new()
        };
        Ok(xdr::to_bytes(&ListClientsRet {
            clients,
            ret: n as u32,
        }))
    }

    pub(super) fn server_lookup_client(&self, a: LookupClientArgs) -> AdminResult {
        let srv = self.lookup(&a.srv.name)?;
        check_flags(a.flags, "adminServerLookupClient")?;
        let c = srv.client(a.id).ok_or(AdminError::NoClient(a.id))?;
        Ok(xdr::to_bytes(&LookupClientRet {
            clnt: client_ref(&a.srv.name, &c),
        }))
    }

    pub(super) fn client_get_info(&self, a: ClientFlagsArgs) -> AdminResult {
        let srv = self.lookup_admin(&a.clnt.srv.name)?;
        let c = srv
            .client(a.clnt.id)
            .ok_or(AdminError::NoMatchingClient(a.clnt.id))?;
        check_flags(a.flags, "adminClientGetInfo")?;
        Ok(encode(client_info(&c.info)))
    }

    pub(super) fn client_close(&self, a: ClientFlagsArgs) -> AdminResult {
        let srv = self.lookup(&a.clnt.srv.name)?;
        srv.client(a.clnt.id)
            .ok_or(AdminError::NoClient(a.clnt.id))?;
        check_flags(a.flags, "adminClientClose")?;
        srv.close_client(a.clnt.id);
        Ok(Vec::new())
    }
}

fn client_ref(server: &str, c: &ClientSnapshot) -> Client_ {
    Client_ {
        srv: Server_ {
            name: server.into(),
        },
        id: c.info.id,
        timestamp: c.timestamp,
        transport: c.transport,
    }
}

/// `adminClientGetInfo` for a unix client: readonly, then its identity (the socket's,
/// or the one it forwarded with CONNECT_SET_IDENTITY).
fn client_info(info: &ClientInfo) -> Vec<TypedParam> {
    let id = info.identity.get();
    let mut p = vec![TypedParam {
        field: "readonly".into(),
        value: TypedValue::Boolean(info.readonly.into()),
    }];
    // libvirt adds ids as ints, whatever the identity holds.
    let int = |f: &str, v: i32| TypedParam {
        field: f.into(),
        value: TypedValue::Int(v),
    };
    let string = |f: &str, v: String| TypedParam {
        field: f.into(),
        value: TypedValue::String(v),
    };
    if let Some(v) = id.sasl_user_name {
        p.push(string("sasl_user_name", v));
    }
    if let Some(v) = id.unix_user_id {
        p.push(int("unix_user_id", v as i32));
    }
    if let Some(v) = id.user_name {
        p.push(string("unix_user_name", v));
    }
    if let Some(v) = id.unix_group_id {
        p.push(int("unix_group_id", v as i32));
    }
    if let Some(v) = id.group_name {
        p.push(string("unix_group_name", v));
    }
    if let Some(v) = id.process_id {
        p.push(int("unix_process_id", v as i32));
    }
    if let Some(v) = id.selinux_context {
        p.push(string("selinux_context", v));
    }
    p
}
