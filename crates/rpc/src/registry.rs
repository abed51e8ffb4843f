//! One RPC server's registry of connected clients and its limits (libvirt's
//! virNetServer bookkeeping): what the admin program lists and changes, and what the
//! accept loop asks before taking another client.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use tokio::sync::Notify;

use crate::error::VirError;
use crate::stop::{Reason, Stop};

/// Who is on the other end of a connection.
#[derive(Debug, Clone)]
pub struct ClientInfo {
    /// Per-server id, counted from 1 over every accepted connection (virt-admin shows it).
    pub id: u64,
    /// Came in on a read-only socket.
    pub readonly: bool,
    pub uid: u32,
    pub gid: u32,
    pub pid: i32,
    pub connected_at: SystemTime,
    /// Who the client is, for access control and the admin program.
    pub identity: crate::ClientIdentity,
}

/// `virClientTransport`: how a client reached the server (admin `transport`).
pub const TRANSPORT_UNIX: u32 = 0;

/// One connected client as the admin program lists it.
#[derive(Debug, Clone)]
pub struct ClientSnapshot {
    pub info: ClientInfo,
    /// Seconds since the epoch at accept (admin `timestamp`).
    pub timestamp: i64,
    pub transport: u32,
    /// Still has to authenticate (counts against `max_anonymous_clients`).
    pub auth_pending: bool,
}

/// The worker-pool settings of a server as the admin program shows and changes them.
///
/// libvirt dispatches calls on a thread pool; this server runs every connection as a task
/// on the daemon's runtime and answers one call of a connection at a time. The numbers
/// map as follows: `minWorkers`, `maxWorkers` and `prioWorkers` are the configured values
/// (kept and validated as libvirt does, otherwise advisory); `nWorkers` is what libvirt's
/// pool would hold: minWorkers at start, raised by a higher minWorkers or by more calls in
/// progress at once, lowered only by a lower maxWorkers; `freeWorkers` is `nWorkers` less the calls in progress (so an admin query
/// sees itself, 4 of 5, like libvirt); `jobQueueDepth` is 0, because no call waits for a
/// worker.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ThreadPoolInfo {
    pub min_workers: u32,
    pub max_workers: u32,
    pub n_workers: u32,
    pub free_workers: u32,
    pub prio_workers: u32,
    pub job_queue_depth: u32,
}

/// Why a new limit was refused; the texts are libvirt's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LimitError {
    /// virthreadpool.c, VIR_ERR_INVALID_ARG in no domain.
    MinAboveMax,
    /// virthreadpool.c, VIR_ERR_INVALID_ARG in no domain.
    MaxZeroSwitch,
    /// virnetserver.c, VIR_ERR_INVALID_ARG in the RPC domain.
    UnauthAboveMax,
}

impl LimitError {
    pub fn to_vir_error(&self) -> VirError {
        use crate::error::{ErrorCode, ErrorDomain};
        match self {
            LimitError::MinAboveMax => VirError::new(
                ErrorCode::InvalidArg,
                ErrorDomain::None,
                "minWorkers cannot be larger than maxWorkers",
            ),
            LimitError::MaxZeroSwitch => VirError::new(
                ErrorCode::InvalidArg,
                ErrorDomain::None,
                "maxWorkers must not be switched from zero to non-zero and vice versa",
            ),
            LimitError::UnauthAboveMax => VirError::new(
                ErrorCode::InvalidArg,
                ErrorDomain::Rpc,
                // libvirt 9.0 had it the other way round ("... waiting for authentication must not be
                // less than the overall maximum number of clients"); 11.3 words it right.
                "The overall maximum number of clients must not be less than the number of clients waiting for authentication",
            ),
        }
    }
}

/// Limits of one server (libvirt's per-server settings).
#[derive(Debug, Clone)]
pub struct Limits {
    /// max_clients: beyond it we stop accepting, as libvirt does, rather than refuse.
    pub max_clients: usize,
    /// max_anonymous_clients: clients still authenticating; 0 = no limit. Reaching it also
    /// stops accepting.
    pub max_anonymous_clients: usize,
    /// min_workers / max_workers / prio_workers, see [`ThreadPoolInfo`].
    pub min_workers: u32,
    pub max_workers: u32,
    pub prio_workers: u32,
    /// max_client_requests: calls of one client in progress before we stop reading it.
    /// A connection answers its calls one after the other, so at most one is in
    /// progress and the rest wait unread in the socket buffer: the limit always holds
    /// (libvirt's back-pressure, never an error).
    pub max_client_requests: u32,
    /// keepalive_interval in seconds; <= 0 disables server pings.
    pub keepalive_interval: i32,
    pub keepalive_count: u32,
    /// Server messages (events) queued for one client before it counts as stuck.
    pub event_queue: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_clients: 5000,
            max_anonymous_clients: 20,
            min_workers: 5,
            max_workers: 20,
            prio_workers: 5,
            max_client_requests: 5,
            keepalive_interval: 5,
            keepalive_count: 5,
            event_queue: 10_000,
        }
    }
}

/// One RPC server (libvirt's virNetServer): its sockets share client ids, limits and the
/// registry of connected clients that the admin program reads.
pub struct Server {
    next_id: AtomicU64,
    /// Calls being answered now (for `freeWorkers`).
    busy: AtomicUsize,
    active: Arc<AtomicUsize>,
    state: Mutex<State>,
    /// Woken when a client leaves or a limit changes, so accept loops look again.
    changed: Notify,
    limits: Limits,
}

struct State {
    clients: BTreeMap<u64, Entry>,
    max_clients: usize,
    max_unauth: usize,
    unauth: usize,
    min_workers: u32,
    max_workers: u32,
    prio_workers: u32,
    /// Workers libvirt's pool would hold now: it starts with minWorkers, grows when calls
    /// find no free worker, and shrinks only when maxWorkers is lowered.
    n_workers: u32,
}

struct Entry {
    info: ClientInfo,
    auth_pending: bool,
    stop: Arc<Stop>,
}

impl Server {
    pub fn new(limits: Limits) -> Arc<Self> {
        Arc::new(Self {
            next_id: AtomicU64::new(1),
            busy: AtomicUsize::new(0),
            active: Arc::new(AtomicUsize::new(0)),
            state: Mutex::new(State {
                clients: BTreeMap::new(),
                max_clients: limits.max_clients,
                max_unauth: limits.max_anonymous_clients,
                unauth: 0,
                min_workers: limits.min_workers,
                max_workers: limits.max_workers,
                prio_workers: limits.prio_workers,
                n_workers: limits.min_workers,
            }),
            changed: Notify::new(),
            limits,
        })
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Clients connected now.
    pub fn active_clients(&self) -> usize {
        self.active.load(Ordering::Relaxed)
    }

    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// Every connected client, by id.
    pub fn clients(&self) -> Vec<ClientSnapshot> {
        self.state().clients.values().map(snapshot).collect()
    }

    pub fn client(&self, id: u64) -> Option<ClientSnapshot> {
        self.state().clients.get(&id).map(snapshot)
    }

    /// Closes a client's connection (admin CLIENT_CLOSE); false if there is no such client.
    pub fn close_client(&self, id: u64) -> bool {
        match self.state().clients.get(&id) {
            Some(e) => {
                e.stop.request(Reason::Closed);
                true
            }
            None => false,
        }
    }

    /// Ends every client's connection (the daemon is shutting down).
    pub(crate) fn stop_all(&self) {
        for e in self.state().clients.values() {
            e.stop.request(Reason::Shutdown);
        }
    }

    /// (nclients_max, nclients, nclients_unauth_max, nclients_unauth)
    pub fn client_limits(&self) -> (usize, usize, usize, usize) {
        let st = self.state();
        (st.max_clients, st.clients.len(), st.max_unauth, st.unauth)
    }

    /// `virNetServerSetClientLimits`: `None` keeps a value.
    pub fn set_client_limits(
        &self,
        max: Option<usize>,
        max_unauth: Option<usize>,
    ) -> Result<(), LimitError> {
        let mut st = self.state();
        let m = max.unwrap_or(st.max_clients);
        let u = max_unauth.unwrap_or(st.max_unauth);
        if m < u {
            return Err(LimitError::UnauthAboveMax);
        }
        st.max_clients = m;
        st.max_unauth = u;
        drop(st);
        self.changed.notify_waiters();
        Ok(())
    }

    pub fn threadpool(&self) -> ThreadPoolInfo {
        let mut st = self.state();
        let busy = self.busy.load(Ordering::Relaxed) as u32;
        let mut n = st.n_workers.max(busy);
        if st.max_workers > 0 {
            n = n.min(st.max_workers);
        }
        st.n_workers = n;
        ThreadPoolInfo {
            min_workers: st.min_workers,
            max_workers: st.max_workers,
            n_workers: n,
            free_workers: n.saturating_sub(busy),
            prio_workers: st.prio_workers,
            job_queue_depth: 0,
        }
    }

    /// `virThreadPoolSetParameters`: `None` keeps a value.
    pub fn set_threadpool(
        &self,
        min: Option<u32>,
        max: Option<u32>,
        prio: Option<u32>,
    ) -> Result<(), LimitError> {
        let mut st = self.state();
        if min.unwrap_or(st.min_workers) > max.unwrap_or(st.max_workers) {
            return Err(LimitError::MinAboveMax);
        }
        if let Some(m) = max {
            if (m == 0) != (st.max_workers == 0) {
                return Err(LimitError::MaxZeroSwitch);
            }
            st.max_workers = m;
            if m > 0 {
                st.n_workers = st.n_workers.min(m);
            }
        }
        if let Some(m) = min {
            st.min_workers = m;
            st.n_workers = st.n_workers.max(m);
        }
        if let Some(p) = prio {
            st.prio_workers = p;
        }
        Ok(())
    }

    /// The id of the next accepted client.
    pub(crate) fn next_client_id(&self) -> u64 {
        self.next_id.fetch_add(1, Ordering::Relaxed)
    }

    /// Resolves once a new client may be accepted. Like libvirt, the accept loop stops
    /// accept()ing while a limit is reached: new clients wait in the listen backlog rather
    /// than being refused.
    pub(crate) async fn accepting(&self) {
        loop {
            let changed = self.changed.notified();
            tokio::pin!(changed);
            changed.as_mut().enable();
            if self.may_accept() {
                return;
            }
            changed.await;
        }
    }

    /// `virNetServerCheckLimits`: a new client may be accepted only if neither limit
    /// would be overcommitted.
    fn may_accept(&self) -> bool {
        let st = self.state();
        st.clients.len() < st.max_clients && (st.max_unauth == 0 || st.unauth < st.max_unauth)
    }

    /// `virNetServerAddClient`: the client counts at once, before the next accept
    /// decision. libvirt knows at accept whether the socket needs authentication; we
    /// learn it from the session a moment later (the connection's first
    /// `set_auth_pending`), so until then the client counts as unauthenticated. The
    /// anonymous limit thus holds exactly: the count can only be high for that moment,
    /// and lowering it wakes the accept loop.
    pub(crate) fn register(self: &Arc<Self>, info: ClientInfo) -> Registration {
        let stop = Arc::new(Stop::default());
        let mut st = self.state();
        st.clients.insert(
            info.id,
            Entry {
                info: info.clone(),
                auth_pending: true,
                stop: stop.clone(),
            },
        );
        st.unauth += 1;
        drop(st);
        self.active.fetch_add(1, Ordering::Relaxed);
        Registration {
            server: self.clone(),
            id: info.id,
            stop,
            auth_pending: AtomicBool::new(true),
        }
    }
}

fn snapshot(e: &Entry) -> ClientSnapshot {
    let timestamp = e
        .info
        .connected_at
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64);
    ClientSnapshot {
        info: e.info.clone(),
        timestamp,
        transport: TRANSPORT_UNIX,
        auth_pending: e.auth_pending,
    }
}

/// A client's place in its server's registry; leaving drops it.
pub(crate) struct Registration {
    server: Arc<Server>,
    id: u64,
    stop: Arc<Stop>,
    /// What the registry was last told, so that a call which changes nothing (nearly
    /// every call) does not take the registry's lock.
    auth_pending: AtomicBool,
}

impl Registration {
    pub(crate) fn id(&self) -> u64 {
        self.id
    }

    /// The connection's stop signal: set by the admin (CLIENT_CLOSE), by shutdown and
    /// by its event queue overflowing.
    pub(crate) fn stop(&self) -> &Arc<Stop> {
        &self.stop
    }

    pub(crate) fn set_auth_pending(&self, pending: bool) {
        if self.auth_pending.swap(pending, Ordering::Relaxed) == pending {
            return;
        }
        let mut st = self.server.state();
        let st = &mut *st;
        if let Some(e) = st.clients.get_mut(&self.id) {
            if e.auth_pending != pending {
                e.auth_pending = pending;
                if pending {
                    st.unauth += 1;
                } else {
                    st.unauth -= 1;
                    self.server.changed.notify_waiters();
                }
            }
        }
    }
}

impl Drop for Registration {
    fn drop(&mut self) {
        let mut st = self.server.state();
        if let Some(e) = st.clients.remove(&self.id) {
            if e.auth_pending {
                st.unauth -= 1;
            }
        }
        drop(st);
        self.server.active.fetch_sub(1, Ordering::Relaxed);
        self.server.changed.notify_waiters();
    }
}

/// Counts a call as in progress while alive.
pub(crate) struct Busy<'a>(&'a Server);

impl<'a> Busy<'a> {
    pub(crate) fn new(s: &'a Server) -> Self {
        s.busy.fetch_add(1, Ordering::Relaxed);
        Self(s)
    }
}

impl Drop for Busy<'_> {
    fn drop(&mut self) {
        self.0.busy.fetch_sub(1, Ordering::Relaxed);
    }
}
