//! Accepting clients and running one connection: read a frame, dispatch it, write the
//! reply, with keepalive and events in between.
//!
//! Each connection is one task that reads frames, answers calls in order and writes
//! queued events between them, so a message is always written whole and a slow client
//! only ever stalls its own task.

use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use futures_util::FutureExt;
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::{mpsc, watch};
use tracing::{debug, error, warn};

use crate::connection::{Connection, Frame};
use crate::error::VirError;
use crate::header::{Header, Status};
use crate::keepalive::{self, Keepalive};
use crate::registry::{Busy, Registration};
use crate::service::event_queue;
use crate::stop::Reason;

// Everything the connection loop used to define here keeps its old path.
pub use crate::connection::{next_frame, Step};
pub use crate::registry::{
    ClientInfo, ClientSnapshot, LimitError, Limits, Server, ThreadPoolInfo, TRANSPORT_UNIX,
};
pub use crate::service::{EventSender, Reply, Service};

/// Accepts clients on `listener` until `shutdown` turns true.
pub async fn serve<S: Service>(
    server: Arc<Server>,
    listener: UnixListener,
    readonly: bool,
    service: Arc<S>,
    mut shutdown: watch::Receiver<bool>,
) {
    loop {
        tokio::select! {
            _ = server.accepting() => {}
            _ = shutdown.changed() => break,
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
            _ = shutdown.changed() => break,
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
        let reg = server.register(info.clone());
        let server = server.clone();
        tokio::spawn(async move {
            run_connection(stream, info, service, &server, reg).await;
        });
    }
    // The connections end too; every listener of a server does this, which is harmless.
    server.stop_all();
}

fn client_info(server: &Server, stream: &UnixStream, readonly: bool) -> ClientInfo {
    let cred = stream.peer_cred().ok();
    let uid = cred.map_or(u32::MAX, |c| c.uid());
    let gid = cred.map_or(u32::MAX, |c| c.gid());
    let pid = cred.and_then(|c| c.pid()).unwrap_or(-1);
    // Read now: the label is the socket's, and the socket is not kept with the info.
    let label = crate::identity::peer_security_label(stream);
    ClientInfo {
        id: server.next_client_id(),
        readonly,
        uid,
        gid,
        pid,
        connected_at: SystemTime::now(),
        identity: crate::ClientIdentity::of_socket(uid, gid, pid, label),
    }
}

async fn run_connection<S: Service>(
    stream: UnixStream,
    info: ClientInfo,
    service: Arc<S>,
    server: &Server,
    reg: Registration,
) {
    let client_id = info.id;
    debug!(
        client = client_id,
        pid = info.pid,
        uid = info.uid,
        "client connected"
    );
    let stream = match crate::socket::ClientSocket::from_tokio(stream) {
        Ok(s) => s,
        Err(e) => {
            warn!(client = client_id, "cannot watch the client's socket: {e}");
            return;
        }
    };
    let (events_tx, events) = event_queue(server.limits().event_queue, reg.stop().clone());
    let session = service.connect(info, events_tx);
    reg.set_auth_pending(service.auth_pending(&session));
    let mut client = Client {
        service: &*service,
        server,
        reg,
        session,
        conn: Connection::new(stream),
        keepalive: None,
        events,
        events_open: true,
    };
    while let Some(frame) = client.read_frame().await {
        if !client.answer(frame).await {
            client.flush().await;
            break;
        }
    }
    let Client { conn, session, .. } = client;
    conn.close();
    service.disconnect(session);
    debug!(client = client_id, "client disconnected");
}

/// One connected client: its socket, its session with the programs, and what can wake
/// its task between frames.
struct Client<'a, S: Service> {
    service: &'a S,
    server: &'a Server,
    reg: Registration,
    session: S::Session,
    conn: Connection,
    keepalive: Option<Keepalive>,
    events: mpsc::Receiver<Vec<u8>>,
    events_open: bool,
}

impl<S: Service> Client<'_, S> {
    /// The next frame to answer, writing events and keepalive pings while waiting for it;
    /// `None` when the connection is to end.
    ///
    /// The frames one read brought are all answered before anything else is looked at,
    /// and their replies go out in one write.
    async fn read_frame(&mut self) -> Option<Frame> {
        let client_id = self.reg.id();
        let frame = loop {
            match self.conn.buffered_frame() {
                Ok(None) => {}
                buffered => break buffered,
            }
            if !self.flush().await {
                return None;
            }
            tokio::select! {
                r = self.conn.read_frame() => break r,
                ev = self.events.recv(), if self.events_open => match ev {
                    Some(msg) => self.conn.queue(&msg),
                    None => self.events_open = false,
                },
                due = keepalive::deadline(self.keepalive.as_mut()) => match due {
                    Some(ping) => self.conn.queue_message(&ping),
                    None => {
                        debug!(client = client_id, "no keepalive response, closing");
                        return None;
                    }
                },
                reason = self.reg.stop().wait() => {
                    log_stop(client_id, reason);
                    return None;
                }
            }
        };
        match frame {
            Ok(Some(frame)) => {
                if let Some(k) = self.keepalive.as_mut() {
                    k.heard();
                }
                Some(frame)
            }
            // A client that closed its end, or sent a length libvirt drops it for, still
            // gets the replies to the frames before.
            Ok(None) | Err(_) => {
                self.flush().await;
                None
            }
        }
    }

    /// Answers one frame, queueing the reply; false when the connection ends after it.
    async fn answer(&mut self, frame: Frame) -> bool {
        if keepalive::is_keepalive(&frame.header) {
            if let Some(pong) = keepalive::pong_for(&frame.header) {
                self.conn.queue_message(&pong);
            }
            return true;
        }
        let Some(args) = frame.call_args() else {
            return true;
        };
        // A client still authenticating may be waiting on polkitd, which can take up to
        // the D-Bus timeout: if it hangs up meanwhile, it is dropped at once, its check
        // with it (libvirt also closes a client at EOF; the reply is never sent).
        let authenticating = self.service.auth_pending(&self.session);
        let call = dispatch(
            self.service,
            self.server,
            &mut self.session,
            &self.reg,
            &frame.header,
            args,
        );
        let reply = if authenticating {
            tokio::select! {
                reply = call => reply,
                _ = self.conn.hung_up() => {
                    debug!(client = self.reg.id(), "client hung up while authenticating");
                    return false;
                }
                reason = self.reg.stop().wait() => {
                    log_stop(self.reg.id(), reason);
                    return false;
                }
            }
        } else {
            call.await
        };
        if reply.start_keepalive && self.keepalive.is_none() {
            self.keepalive = Keepalive::start(self.server.limits());
        }
        if reply.hang_up {
            return false;
        }
        if !self.conn.queue_reply(&frame.header, reply.result) {
            warn!(client = self.reg.id(), "Failed to serialize remote error");
            return false;
        }
        !reply.close
    }

    /// Writes what the connection has queued; false when the connection is to end.
    ///
    /// A client that stops reading must not pin its task forever: its event queue
    /// filling up, or shutdown, ends the write.
    async fn flush(&mut self) -> bool {
        if !self.conn.has_output() {
            return true;
        }
        tokio::select! {
            r = self.conn.flush() => r.is_ok(),
            reason = self.reg.stop().wait() => {
                log_stop(self.reg.id(), reason);
                false
            }
        }
    }
}

fn log_stop(client_id: u64, reason: Reason) {
    match reason {
        Reason::Overflow => {
            warn!(
                client = client_id,
                "client is not reading its events, disconnecting it"
            )
        }
        Reason::Closed => debug!(client = client_id, "closed by the admin"),
        Reason::Shutdown => debug!(client = client_id, "daemon shutting down, closing"),
    }
}

/// Answers one call with the program it names.
async fn dispatch<S: Service>(
    service: &S,
    server: &Server,
    session: &mut S::Session,
    reg: &Registration,
    header: &Header,
    args: &[u8],
) -> Reply {
    if !service.has_program(header.prog, header.vers) {
        return Reply::err(VirError::rpc(format!(
            "Cannot find program {} version {}",
            header.prog as i32, header.vers as i32
        )));
    }
    if header.status != Status::OK {
        return Reply::err(VirError::rpc(format!(
            "Unexpected message status {}",
            header.status.0 as u32
        )));
    }
    let _busy = Busy::new(server);
    // A panic in one call must cost only that call: the client gets the dispatcher's
    // "no error set" failure, every other client sees nothing. The session may be left
    // half-updated; sessions hold nothing a later call could trip over badly (flags,
    // ids, the open URI).
    let call = AssertUnwindSafe(service.call(session, header, args));
    let reply = call.catch_unwind().await.unwrap_or_else(|panic| {
        error!(
            client = reg.id(),
            procedure = header.proc_,
            "call failed: the handler panicked: {}",
            panic_message(&*panic)
        );
        Reply::err(VirError::no_error_set())
    });
    reg.set_auth_pending(service.auth_pending(session));
    reply
}

/// The text a panic was raised with, when it was a string.
pub fn panic_message(panic: &(dyn std::any::Any + Send)) -> &str {
    panic
        .downcast_ref::<&str>()
        .copied()
        .or_else(|| panic.downcast_ref::<String>().map(String::as_str))
        .unwrap_or("(no message)")
}
