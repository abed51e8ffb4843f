//! What a program served over RPC implements ([`Service`]) and what the connection loop
//! hands it: the outcome of a call ([`Reply`]) and a way to push events ([`EventSender`]).

use std::future::Future;
use std::sync::Arc;

use tokio::sync::mpsc;

use crate::error::VirError;
use crate::header::Header;
use crate::registry::ClientInfo;
use crate::stop::{Reason, Stop};

/// Where a session pushes ready-framed server messages (events) for its client.
///
/// The queue is bounded: a client that stops reading while events keep coming is
/// disconnected when its queue is full, rather than letting the daemon's memory grow or
/// silently dropping events it would never know it missed.
#[derive(Clone, Debug)]
pub struct EventSender {
    tx: mpsc::Sender<Vec<u8>>,
    stop: Arc<Stop>,
}

impl EventSender {
    /// Queues one message; false when it could not be (the client is then dropped).
    pub fn send(&self, msg: Vec<u8>) -> bool {
        match self.tx.try_send(msg) {
            Ok(()) => true,
            Err(mpsc::error::TrySendError::Full(_)) => {
                self.stop.request(Reason::Overflow);
                false
            }
            Err(mpsc::error::TrySendError::Closed(_)) => false,
        }
    }
}

/// A connection's event queue: the sender for its session and the receiving end for the
/// connection loop; an overflow stops the connection through `stop`.
pub(crate) fn event_queue(depth: usize, stop: Arc<Stop>) -> (EventSender, mpsc::Receiver<Vec<u8>>) {
    let (tx, rx) = mpsc::channel(depth.max(1));
    (EventSender { tx, stop }, rx)
}

/// The outcome of one call.
#[derive(Debug)]
pub struct Reply {
    pub result: Result<Vec<u8>, VirError>,
    /// Close the connection once the reply is written (CONNECT_CLOSE).
    pub close: bool,
    /// The client negotiated keepalive (SUPPORTS_FEATURE PROGRAM_KEEPALIVE).
    pub start_keepalive: bool,
    /// Close the connection without sending this reply: the daemon is going away
    /// (admin CONNECT_DAEMON_SHUTDOWN, whose caller libvirt 11.3 leaves without an answer).
    pub hang_up: bool,
}

impl Reply {
    pub fn ok(payload: Vec<u8>) -> Self {
        Self {
            result: Ok(payload),
            close: false,
            start_keepalive: false,
            hang_up: false,
        }
    }

    pub fn err(e: VirError) -> Self {
        Self {
            result: Err(e),
            close: false,
            start_keepalive: false,
            hang_up: false,
        }
    }
}

impl From<Result<Vec<u8>, VirError>> for Reply {
    fn from(result: Result<Vec<u8>, VirError>) -> Self {
        Self {
            result,
            close: false,
            start_keepalive: false,
            hang_up: false,
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
