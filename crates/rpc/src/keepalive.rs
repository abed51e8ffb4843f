//! libvirt's keepalive program on the server side: answering a client's PINGs, and, once
//! a client has negotiated keepalive, pinging it when it has been quiet and giving up on
//! it after `keepalive_count` unanswered pings.

use std::pin::Pin;
use std::time::Duration;

use tokio::time::{sleep_until, Instant, Sleep};

use crate::header::{
    Header, MessageType, KEEPALIVE_PING, KEEPALIVE_PONG, KEEPALIVE_PROGRAM, KEEPALIVE_VERSION,
};
use crate::registry::Limits;

/// Whether a client message belongs to the keepalive program: such messages are
/// answered (or ignored) here and never reach the programs served.
pub(crate) fn is_keepalive(header: &Header) -> bool {
    header.prog == KEEPALIVE_PROGRAM && header.mtype == MessageType::MESSAGE
}

/// The PONG a client's keepalive message asks for, if it is a PING.
pub(crate) fn pong_for(header: &Header) -> Option<Header> {
    (header.proc_ == KEEPALIVE_PING && header.vers == KEEPALIVE_VERSION)
        .then(|| Header::message(KEEPALIVE_PROGRAM, KEEPALIVE_VERSION, KEEPALIVE_PONG, 0))
}

/// Server pings of one connection.
pub(crate) struct Keepalive {
    interval: Duration,
    count: u32,
    left: u32,
    deadline: Instant,
    /// Armed for `deadline` or earlier. Hearing from the client only moves `deadline`;
    /// the timer catches up when it fires, so a busy client costs one timer per
    /// interval, not a timer set and cancelled on every call.
    timer: Pin<Box<Sleep>>,
}

impl Keepalive {
    /// Starts pinging a client that negotiated keepalive; `None` when the server's
    /// `keepalive_interval` turns server pings off.
    pub(crate) fn start(limits: &Limits) -> Option<Self> {
        if limits.keepalive_interval <= 0 {
            return None;
        }
        let interval = Duration::from_secs(limits.keepalive_interval as u64);
        let deadline = Instant::now() + interval;
        Some(Self {
            interval,
            count: limits.keepalive_count,
            left: limits.keepalive_count,
            deadline,
            timer: Box::pin(sleep_until(deadline)),
        })
    }

    /// Any message from the client shows it is alive.
    pub(crate) fn heard(&mut self) {
        self.left = self.count;
        self.deadline = Instant::now() + self.interval;
    }

    /// The deadline passed: the PING to send, or `None` when the client let every ping
    /// go unanswered and is to be dropped.
    pub(crate) fn expired(&mut self) -> Option<Header> {
        if self.left == 0 {
            return None;
        }
        self.left -= 1;
        self.deadline += self.interval;
        Some(Header::message(
            KEEPALIVE_PROGRAM,
            KEEPALIVE_VERSION,
            KEEPALIVE_PING,
            0,
        ))
    }

    /// Resolves when the deadline has passed: with the PING to send, or `None` when the
    /// client is to be dropped. Cancel-safe.
    async fn due(&mut self) -> Option<Header> {
        loop {
            self.timer.as_mut().await;
            let ping = (Instant::now() >= self.deadline).then(|| self.expired());
            let deadline = self.deadline;
            self.timer.as_mut().reset(deadline);
            if let Some(ping) = ping {
                return ping;
            }
        }
    }
}

/// Resolves when the connection's keepalive deadline passes (see [`Keepalive::due`]);
/// never while keepalive is off.
pub(crate) async fn deadline(keepalive: Option<&mut Keepalive>) -> Option<Header> {
    match keepalive {
        Some(k) => k.due().await,
        None => std::future::pending().await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits(interval: i32, count: u32) -> Limits {
        Limits {
            keepalive_interval: interval,
            keepalive_count: count,
            ..Limits::default()
        }
    }

    #[test]
    fn no_server_pings_when_the_interval_is_not_positive() {
        assert!(Keepalive::start(&limits(0, 5)).is_none());
        assert!(Keepalive::start(&limits(-1, 5)).is_none());
    }

    #[tokio::test]
    async fn a_client_is_dropped_after_count_unanswered_pings_and_hearing_it_resets() {
        let mut k = Keepalive::start(&limits(5, 2)).unwrap();
        assert_eq!(k.expired().map(|h| h.proc_), Some(KEEPALIVE_PING));
        assert!(k.expired().is_some());
        k.heard();
        assert!(k.expired().is_some());
        assert!(k.expired().is_some());
        assert!(k.expired().is_none());
    }

    #[test]
    fn only_a_ping_of_version_1_gets_a_pong() {
        let ping = Header::message(KEEPALIVE_PROGRAM, KEEPALIVE_VERSION, KEEPALIVE_PING, 7);
        assert!(is_keepalive(&ping));
        assert_eq!(pong_for(&ping).map(|h| h.proc_), Some(KEEPALIVE_PONG));
        let pong = Header::message(KEEPALIVE_PROGRAM, KEEPALIVE_VERSION, KEEPALIVE_PONG, 0);
        assert!(pong_for(&pong).is_none());
        let v2 = Header::message(KEEPALIVE_PROGRAM, 2, KEEPALIVE_PING, 0);
        assert!(pong_for(&v2).is_none());
        let call = Header {
            mtype: MessageType::CALL,
            ..ping
        };
        assert!(!is_keepalive(&call));
    }
}
