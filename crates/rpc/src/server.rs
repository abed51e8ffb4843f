//! Accepting clients and running one connection: framing, dispatch, keepalive, events.
//!
//! Each connection is one task that reads frames, answers calls in order and writes
//! queued events between them, so a message is always written whole and a slow client
//! only ever stalls its own task.

use std::future::Future;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::{mpsc, watch, Semaphore};
use tokio::time::{sleep_until, Instant};
use tracing::{debug, warn};
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

/// Where a session pushes ready-framed server messages (events) for its client.
pub type EventSender = mpsc::Sender<Vec<u8>>;

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
}

/// Limits of one server (libvirt's per-server settings).
#[derive(Debug, Clone)]
pub struct Limits {
    /// max_clients: beyond it we stop accepting, as libvirt does, rather than refuse.
    pub max_clients: usize,
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
            keepalive_interval: 5,
            keepalive_count: 5,
            event_queue: 10_000,
        }
    }
}

/// One RPC server (libvirt's virNetServer): its sockets share client ids and limits.
pub struct Server {
    next_id: AtomicU64,
    slots: Arc<Semaphore>,
    active: Arc<AtomicUsize>,
    limits: Limits,
}

impl Server {
    pub fn new(limits: Limits) -> Arc<Self> {
        Arc::new(Self {
            next_id: AtomicU64::new(1),
            slots: Arc::new(Semaphore::new(limits.max_clients)),
            active: Arc::new(AtomicUsize::new(0)),
            limits,
        })
    }

    /// Clients connected now.
    pub fn active_clients(&self) -> usize {
        self.active.load(Ordering::Relaxed)
    }

    pub fn limits(&self) -> &Limits {
        &self.limits
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
        let permit = tokio::select! {
            p = server.slots.clone().acquire_owned() => match p { Ok(p) => p, Err(_) => return },
            _ = shutdown.changed() => return,
        };
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
        let service = service.clone();
        let limits = server.limits.clone();
        let shutdown = shutdown.clone();
        let active = server.active.clone();
        active.fetch_add(1, Ordering::Relaxed);
        tokio::spawn(async move {
            run_connection(stream, info, service, limits, shutdown).await;
            active.fetch_sub(1, Ordering::Relaxed);
            drop(permit);
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
enum Step {
    NeedMore,
    Frame(usize),
    Close,
}

fn next_frame(buf: &[u8]) -> Step {
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

async fn run_connection<S: Service>(
    stream: UnixStream,
    info: ClientInfo,
    service: Arc<S>,
    limits: Limits,
    mut shutdown: watch::Receiver<bool>,
) {
    let client_id = info.id;
    debug!(
        client = client_id,
        pid = info.pid,
        uid = info.uid,
        "client connected"
    );
    let (tx, mut events) = mpsc::channel(limits.event_queue.max(1));
    let mut session = service.connect(info, tx);
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
            _ = shutdown.changed() => break 'conn,
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
                service.call(&mut session, &header, payload).await
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
        // Make room for the rest of a large frame in one go.
        if let Step::NeedMore = next_frame(&inbuf) {
            if inbuf.len() >= LEN_LEN {
                let len = u32::from_be_bytes([inbuf[0], inbuf[1], inbuf[2], inbuf[3]]) as usize;
                inbuf.reserve(len.saturating_sub(inbuf.len()));
            }
        }
        if !out.is_empty() {
            if wr.write_all(&out).await.is_err() {
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
