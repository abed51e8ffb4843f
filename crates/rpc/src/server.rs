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
use tokio::sync::{watch, Notify};
use tracing::{debug, error, warn};

use crate::connection::Connection;
use crate::error::VirError;
use crate::header::{Header, Status};
use crate::keepalive::{self, Keepalive};
use crate::registry::{Busy, Registration};
use crate::service::event_queue;

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
            _ = shutdown.changed() => return,
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
        id: server.next_client_id(),
        readonly,
        uid: cred.map_or(u32::MAX, |c| c.uid()),
        gid: cred.map_or(u32::MAX, |c| c.gid()),
        pid: cred.and_then(|c| c.pid()).unwrap_or(-1),
        connected_at: SystemTime::now(),
    }
}

async fn run_connection<S: Service>(
    stream: UnixStream,
    info: ClientInfo,
    service: Arc<S>,
    server: &Server,
    reg: Registration,
    mut shutdown: watch::Receiver<bool>,
) {
    let limits = server.limits();
    let client_id = info.id;
    debug!(
        client = client_id,
        pid = info.pid,
        uid = info.uid,
        "client connected"
    );
    let (events_tx, mut events, overflow) = event_queue(limits.event_queue);
    let mut session = service.connect(info, events_tx);
    reg.set_auth_pending(service.auth_pending(&session));
    let mut conn = Connection::new(stream);
    let mut keepalive: Option<Keepalive> = None;
    let mut events_open = true;

    loop {
        // The frames one read brought are all answered before anything else is looked
        // at, and their replies go out in one write.
        let frame = match conn.buffered_frame() {
            Ok(None) => {
                if !flush(&mut conn, &overflow, &mut shutdown, client_id).await {
                    break;
                }
                tokio::select! {
                    r = conn.read_frame() => r,
                    ev = events.recv(), if events_open => {
                        match ev {
                            Some(msg) => conn.queue(&msg),
                            None => events_open = false,
                        }
                        continue;
                    }
                    _ = keepalive::deadline(keepalive.as_ref()) => {
                        let k = keepalive.as_mut().expect("a deadline only runs with keepalive");
                        match k.expired() {
                            Some(ping) => conn.queue_message(&ping),
                            None => {
                                debug!(client = client_id, "no keepalive response, closing");
                                break;
                            }
                        }
                        continue;
                    }
                    _ = overflow.notified() => {
                        warn!(client = client_id, "client is not reading its events, disconnecting it");
                        break;
                    }
                    _ = shutdown.changed() => break,
                    _ = reg.closed() => {
                        debug!(client = client_id, "closed by the admin");
                        break;
                    }
                }
            }
            buffered => buffered,
        };
        // A client that closed its end, or sent a length libvirt drops it for, still
        // gets the replies to the frames before.
        let Ok(Some(frame)) = frame else {
            flush(&mut conn, &overflow, &mut shutdown, client_id).await;
            break;
        };
        if let Some(k) = keepalive.as_mut() {
            k.heard();
        }
        if keepalive::is_keepalive(&frame.header) {
            if let Some(pong) = keepalive::pong_for(&frame.header) {
                conn.queue_message(&pong);
            }
            continue;
        }
        let Some(args) = frame.call_args() else {
            continue;
        };
        let reply = dispatch(&*service, server, &mut session, &reg, &frame.header, args).await;
        if reply.start_keepalive && keepalive.is_none() {
            keepalive = Keepalive::start(limits);
        }
        let queued = conn.queue_reply(&frame.header, reply.result);
        if !queued {
            warn!(client = client_id, "Failed to serialize remote error");
        }
        if !queued || reply.close {
            flush(&mut conn, &overflow, &mut shutdown, client_id).await;
            break;
        }
    }
    conn.shutdown().await;
    service.disconnect(session);
    debug!(client = client_id, "client disconnected");
}

/// Writes what the connection has queued; false when the connection is to end.
///
/// A client that stops reading must not pin its task forever: its event queue filling
/// up, or shutdown, ends the write.
async fn flush(
    conn: &mut Connection,
    overflow: &Notify,
    shutdown: &mut watch::Receiver<bool>,
    client_id: u64,
) -> bool {
    if !conn.has_output() {
        return true;
    }
    tokio::select! {
        r = conn.flush() => r.is_ok(),
        _ = overflow.notified() => {
            warn!(client = client_id, "client is not reading its events, disconnecting it");
            false
        }
        _ = shutdown.changed() => false,
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
