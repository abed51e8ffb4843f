//! Accepting clients and running one connection: framing, dispatch, keepalive, events.
//!
//! Each connection is one task that reads frames, answers calls in order and writes
//! queued events between them, so a message is always written whole and a slow client
//! only ever stalls its own task.

use std::collections::BTreeMap;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use futures_util::FutureExt;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::{mpsc, watch, Notify};
use tokio::time::{sleep_until, Instant};
use tracing::{debug, error, warn};
use xdr::Decoder;

use crate::error::VirError;
use crate::header::{
    frame_into, Header, MessageType, Status, HEADER_LEN, KEEPALIVE_PING, KEEPALIVE_PONG,
    KEEPALIVE_PROGRAM, KEEPALIVE_VERSION, LEN_LEN, MESSAGE_MAX,
};

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
                "The overall maximum number of clients waiting for authentication must not be less than the overall maximum number of clients",
            ),
        }
    }
}

/// Where a session pushes ready-framed server messages (events) for its client.
///
/// The queue is bounded: a client that stops reading while events keep coming is
/// disconnected when its queue is full, rather than letting the daemon's memory grow or
/// silently dropping events it would never know it missed.
#[derive(Clone, Debug)]
pub struct EventSender {
    tx: mpsc::Sender<Vec<u8>>,
    overflow: Arc<Notify>,
}

impl EventSender {
    /// Queues one message; false when it could not be (the client is then dropped).
    pub fn send(&self, msg: Vec<u8>) -> bool {
        match self.tx.try_send(msg) {
            Ok(()) => true,
            Err(mpsc::error::TrySendError::Full(_)) => {
                self.overflow.notify_one();
                false
            }
            Err(mpsc::error::TrySendError::Closed(_)) => false,
        }
    }
}

/// The outcome of one call.
#[derive(Debug)]
pub struct Reply {
    pub result: Result<Vec<u8>, VirError>,
    /// Close the connection once the reply is written (CONNECT_CLOSE).
    pub close: bool,
    /// The client negotiated keepalive (SUPPORTS_FEATURE PROGRAM_KEEPALIVE).
    pub start_keepalive: bool,
}

impl Reply {
    pub fn ok(payload: Vec<u8>) -> Self {
        Self {
            result: Ok(payload),
            close: false,
            start_keepalive: false,
        }
    }

    pub fn err(e: VirError) -> Self {
        Self {
            result: Err(e),
            close: false,
            start_keepalive: false,
        }
    }
}

impl From<Result<Vec<u8>, VirError>> for Reply {
    fn from(result: Result<Vec<u8>, VirError>) -> Self {
        Self {
            result,
            close: false,
            start_keepalive: false,
        }
    }
}

/// The programs served on a socket.
pub trait Service: Send + Sync + 'static {
    /// Per-connection state.
    type Session: Send + 'static;

    fn has_program(&self, prog: u32, vers: u32) -> bool;

    fn connect(&self, info: ClientInfo, events: EventSender) -> Self::Session;

    /// Answers one CALL. `args` is the payload after the header.
    fn call(
        &self,
        session: &mut Self::Session,
        header: &Header,
        args: &[u8],
    ) -> impl Future<Output = Reply> + Send;

    fn disconnect(&self, session: Self::Session);

    /// Whether the client still has to authenticate; such clients count against
    /// `max_anonymous_clients`. Asked after connecting and after every call.
    fn auth_pending(&self, _session: &Self::Session) -> bool {
        false
    }

    /// Whether to keep a client at all; a refused one is closed without a word (libvirt's
    /// admin server drops peers whose uid is not the daemon's).
    fn admit(&self, _info: &ClientInfo) -> bool {
        true
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
    close: Arc<Notify>,
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
                e.close.notify_one();
                true
            }
            None => false,
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
    fn register(self: &Arc<Self>, info: ClientInfo) -> Registration {
        let close = Arc::new(Notify::new());
        let mut st = self.state();
        st.clients.insert(
            info.id,
            Entry {
                info: info.clone(),
                auth_pending: true,
                close: close.clone(),
            },
        );
        st.unauth += 1;
        drop(st);
        self.active.fetch_add(1, Ordering::Relaxed);
        Registration {
            server: self.clone(),
            id: info.id,
            close,
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
struct Registration {
    server: Arc<Server>,
    id: u64,
    close: Arc<Notify>,
}

impl Registration {
    fn set_auth_pending(&self, pending: bool) {
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
struct Busy<'a>(&'a Server);

impl<'a> Busy<'a> {
    fn new(s: &'a Server) -> Self {
        s.busy.fetch_add(1, Ordering::Relaxed);
        Self(s)
    }
}

impl Drop for Busy<'_> {
    fn drop(&mut self) {
        self.0.busy.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Accepts clients on `listener` until `shutdown` turns true.
pub async fn serve<S: Service>(
    server: Arc<Server>,
    listener: UnixListener,
    readonly: bool,
    service: Arc<S>,
    mut shutdown: watch::Receiver<bool>,
) {
    loop {
        // Like libvirt, stop accept()ing while a limit is reached: new clients wait in
        // the listen backlog rather than being refused.
        loop {
            let changed = server.changed.notified();
            tokio::pin!(changed);
            changed.as_mut().enable();
            if server.may_accept() {
                break;
            }
            tokio::select! {
                _ = changed => {}
                _ = shutdown.changed() => return,
            }
        }
        let stream = tokio::select! {
            r = listener.accept() => match r {
                Ok((s, _)) => s,
                Err(e) => {
                    warn!("accept failed: {e}");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
            _ = shutdown.changed() => return,
        };
        let info = client_info(&server, &stream, readonly);
        if !service.admit(&info) {
            warn!(
                "operation forbidden: Disallowing client {} with uid {}",
                info.pid, info.uid
            );
            drop(stream);
            continue;
        }
        let service = service.clone();
        let shutdown = shutdown.clone();
        let reg = server.register(info.clone());
        let server = server.clone();
        tokio::spawn(async move {
            run_connection(stream, info, service, &server, reg, shutdown).await;
        });
    }
}

fn client_info(server: &Server, stream: &UnixStream, readonly: bool) -> ClientInfo {
    let cred = stream.peer_cred().ok();
    ClientInfo {
        id: server.next_id.fetch_add(1, Ordering::Relaxed),
        readonly,
        uid: cred.map_or(u32::MAX, |c| c.uid()),
        gid: cred.map_or(u32::MAX, |c| c.gid()),
        pid: cred.and_then(|c| c.pid()).unwrap_or(-1),
        connected_at: SystemTime::now(),
    }
}

struct Keepalive {
    interval: Duration,
    count: u32,
    left: u32,
    deadline: Instant,
}

impl Keepalive {
    fn heard(&mut self) {
        self.left = self.count;
        self.deadline = Instant::now() + self.interval;
    }
}

/// What a complete frame at the front of the input buffer asks of the loop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// The frame is not complete yet.
    NeedMore,
    /// A complete frame of this many bytes, length word included.
    Frame(usize),
    /// A length word libvirt refuses: the connection is dropped.
    Close,
}

/// Splits the next frame off client input: the framing rules of the connection loop,
/// public so that they can be fuzzed on their own.
pub fn next_frame(buf: &[u8]) -> Step {
    if buf.len() < LEN_LEN {
        return Step::NeedMore;
    }
    let len = u32::from_be_bytes([buf[0], buf[1], buf[2], buf[3]]) as usize;
    // libvirt drops the connection without a word for lengths that cannot hold a header
    // or that exceed VIR_NET_MESSAGE_MAX.
    if len < LEN_LEN + HEADER_LEN || len - LEN_LEN > MESSAGE_MAX {
        return Step::Close;
    }
    if buf.len() < len {
        Step::NeedMore
    } else {
        Step::Frame(len)
    }
}

/// The most input buffer a connection grows by ahead of the bytes that fill it.
const RESERVE_STEP: usize = 64 << 10;

async fn run_connection<S: Service>(
    stream: UnixStream,
    info: ClientInfo,
    service: Arc<S>,
    server: &Server,
    reg: Registration,
    mut shutdown: watch::Receiver<bool>,
) {
    let limits = &server.limits;
    let client_id = info.id;
    debug!(
        client = client_id,
        pid = info.pid,
        uid = info.uid,
        "client connected"
    );
    let (tx, mut events) = mpsc::channel(limits.event_queue.max(1));
    let overflow = Arc::new(Notify::new());
    let mut session = service.connect(
        info,
        EventSender {
            tx,
            overflow: overflow.clone(),
        },
    );
    reg.set_auth_pending(service.auth_pending(&session));
    let (mut rd, mut wr) = stream.into_split();
    let mut inbuf: Vec<u8> = Vec::with_capacity(8192);
    let mut out: Vec<u8> = Vec::with_capacity(8192);
    let mut keepalive: Option<Keepalive> = None;
    let mut events_open = true;

    'conn: loop {
        let deadline = keepalive.as_ref().map_or_else(
            || Instant::now() + Duration::from_secs(3600),
            |k| k.deadline,
        );
        tokio::select! {
            r = rd.read_buf(&mut inbuf) => match r {
                Ok(0) | Err(_) => break 'conn,
                Ok(_) => {}
            },
            ev = events.recv(), if events_open => match ev {
                Some(msg) => out.extend_from_slice(&msg),
                None => events_open = false,
            },
            _ = sleep_until(deadline), if keepalive.is_some() => {
                let k = keepalive.as_mut().expect("keepalive checked above");
                if k.left == 0 {
                    debug!(client = client_id, "no keepalive response, closing");
                    break 'conn;
                }
                k.left -= 1;
                k.deadline += k.interval;
                let h = Header::message(KEEPALIVE_PROGRAM, KEEPALIVE_VERSION, KEEPALIVE_PING, 0);
                frame_into(&mut out, &h, |_| {});
            },
            _ = overflow.notified() => {
                warn!(client = client_id, "client is not reading its events, disconnecting it");
                break 'conn;
            }
            _ = shutdown.changed() => break 'conn,
            _ = reg.close.notified() => {
                debug!(client = client_id, "closed by the admin");
                break 'conn;
            }
        }

        let mut consumed = 0;
        let mut close = false;
        loop {
            let len = match next_frame(&inbuf[consumed..]) {
                Step::NeedMore => break,
                Step::Close => {
                    close = true;
                    break;
                }
                Step::Frame(len) => len,
            };
            let msg = &inbuf[consumed + LEN_LEN..consumed + len];
            consumed += len;
            if let Some(k) = keepalive.as_mut() {
                k.heard();
            }
            let header = match Header::decode(&mut Decoder::new(msg)) {
                Ok(h) => h,
                Err(_) => {
                    close = true;
                    break;
                }
            };
            let mut payload = &msg[HEADER_LEN..];

            if header.prog == KEEPALIVE_PROGRAM && header.mtype == MessageType::MESSAGE {
                if header.proc_ == KEEPALIVE_PING && header.vers == KEEPALIVE_VERSION {
                    let h =
                        Header::message(KEEPALIVE_PROGRAM, KEEPALIVE_VERSION, KEEPALIVE_PONG, 0);
                    frame_into(&mut out, &h, |_| {});
                }
                continue;
            }
            match header.mtype {
                MessageType::CALL => {}
                // Descriptor passing is never used by these programs; the count is skipped
                // and the call answered as a plain one, as libvirt does for nfds = 0.
                MessageType::CALL_WITH_FDS if payload.len() >= 4 => payload = &payload[4..],
                // Replies, streams and unknown types from a client are dropped silently.
                _ => continue,
            }

            let reply = if !service.has_program(header.prog, header.vers) {
                Reply::err(VirError::rpc(format!(
                    "Cannot find program {} version {}",
                    header.prog as i32, header.vers as i32
                )))
            } else if header.status != Status::OK {
                Reply::err(VirError::rpc(format!(
                    "Unexpected message status {}",
                    header.status.0 as u32
                )))
            } else {
                let _busy = Busy::new(server);
                // A panic in one call must cost only that call: the client gets the
                // dispatcher's "no error set" failure, every other client sees nothing.
                // The session may be left half-updated; sessions hold nothing a later
                // call could trip over badly (flags, ids, the open URI).
                let call = AssertUnwindSafe(service.call(&mut session, &header, payload));
                let r = call.catch_unwind().await.unwrap_or_else(|panic| {
                    error!(
                        client = client_id,
                        procedure = header.proc_,
                        "call failed: the handler panicked: {}",
                        panic_message(&*panic)
                    );
                    Reply::err(VirError::no_error_set())
                });
                reg.set_auth_pending(service.auth_pending(&session));
                r
            };

            if reply.start_keepalive && limits.keepalive_interval > 0 && keepalive.is_none() {
                let interval = Duration::from_secs(limits.keepalive_interval as u64);
                keepalive = Some(Keepalive {
                    interval,
                    count: limits.keepalive_count,
                    left: limits.keepalive_count,
                    deadline: Instant::now() + interval,
                });
            }
            if !write_reply(&mut out, &header, reply.result) {
                warn!(client = client_id, "Failed to serialize remote error");
                close = true;
                break;
            }
            if reply.close {
                close = true;
                break;
            }
        }
        if consumed > 0 {
            inbuf.drain(..consumed);
            if inbuf.is_empty() && inbuf.capacity() > 1 << 20 {
                inbuf.shrink_to(8192);
            }
        }
        // Make room for the rest of a large frame, but only as its bytes arrive: a length
        // word alone must not make us reserve 32 MiB for every connection.
        if let Step::NeedMore = next_frame(&inbuf) {
            if inbuf.len() >= LEN_LEN {
                let len = u32::from_be_bytes([inbuf[0], inbuf[1], inbuf[2], inbuf[3]]) as usize;
                let missing = len.saturating_sub(inbuf.len());
                inbuf.reserve(missing.min(inbuf.len().max(RESERVE_STEP)));
            }
        }
        if !out.is_empty() {
            // A client that stops reading must not pin this task forever: its event
            // queue filling up, or shutdown, ends the write.
            let written = tokio::select! {
                r = wr.write_all(&out) => r.is_ok(),
                _ = overflow.notified() => {
                    warn!(client = client_id, "client is not reading its events, disconnecting it");
                    false
                }
                _ = shutdown.changed() => false,
            };
            if !written {
                break 'conn;
            }
            out.clear();
            if out.capacity() > 1 << 20 {
                out.shrink_to(8192);
            }
        }
        if close {
            break 'conn;
        }
    }
    let _ = wr.shutdown().await;
    service.disconnect(session);
    debug!(client = client_id, "client disconnected");
}

/// The text a panic was raised with, when it was a string.
pub fn panic_message(panic: &(dyn std::any::Any + Send)) -> &str {
    panic
        .downcast_ref::<&str>()
        .copied()
        .or_else(|| panic.downcast_ref::<String>().map(String::as_str))
        .unwrap_or("(no message)")
}

/// Appends the reply frame; false when an error could not be encoded (libvirt then closes).
fn write_reply(out: &mut Vec<u8>, call: &Header, result: Result<Vec<u8>, VirError>) -> bool {
    let result = match result {
        Ok(p) if p.len() + HEADER_LEN > MESSAGE_MAX => {
            Err(VirError::rpc("Unable to encode message payload"))
        }
        r => r,
    };
    match result {
        Ok(payload) => frame_into(out, &call.reply(Status::OK), |e| {
            e.put_fixed_opaque(&payload);
        }),
        Err(err) => {
            if !err.fits() {
                return false;
            }
            frame_into(out, &call.reply(Status::ERROR), |e| err.encode(e));
        }
    }
    true
}
