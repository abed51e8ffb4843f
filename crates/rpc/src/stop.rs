//! Why a connection is to end, and a cheap way for its loop to wait for that.
//!
//! Three things end a connection from outside its loop: its event queue overflowing, the
//! admin closing it, the daemon shutting down. The loop waits for them between every two
//! calls, so the wait should cost next to nothing: one waker slot and one flag, where a
//! `Notify` per cause took a lock and a waiter-list entry each, on every call.

use std::future::poll_fn;
use std::sync::atomic::{AtomicU8, Ordering};
use std::task::Poll;

use futures_util::task::AtomicWaker;

/// What ended a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub(crate) enum Reason {
    /// The client stopped reading while events kept coming.
    Overflow = 1,
    /// The admin closed it (CLIENT_CLOSE).
    Closed = 2,
    /// The daemon is shutting down.
    Shutdown = 3,
}

impl Reason {
    fn from_u8(v: u8) -> Option<Self> {
        match v {
            1 => Some(Self::Overflow),
            2 => Some(Self::Closed),
            3 => Some(Self::Shutdown),
            _ => None,
        }
    }
}

/// The stop signal of one connection: set from anywhere, awaited by its loop alone.
#[derive(Debug, Default)]
pub(crate) struct Stop {
    reason: AtomicU8,
    waker: AtomicWaker,
}

impl Stop {
    /// Ends the connection; the first reason given is the one it ends for.
    pub(crate) fn request(&self, reason: Reason) {
        let _ = self
            .reason
            .compare_exchange(0, reason as u8, Ordering::AcqRel, Ordering::Acquire);
        self.waker.wake();
    }

    pub(crate) fn requested(&self) -> Option<Reason> {
        Reason::from_u8(self.reason.load(Ordering::Acquire))
    }

    /// Resolves once the connection is to end. Only the connection's own task waits.
    pub(crate) async fn wait(&self) -> Reason {
        poll_fn(|cx| {
            if let Some(r) = self.requested() {
                return Poll::Ready(r);
            }
            self.waker.register(cx.waker());
            // A request between the check and the registration woke no one.
            self.requested().map_or(Poll::Pending, Poll::Ready)
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[tokio::test]
    async fn the_first_reason_wins_and_wakes_the_waiter() {
        let stop = Arc::new(Stop::default());
        assert_eq!(stop.requested(), None);
        let waiter = tokio::spawn({
            let stop = stop.clone();
            async move { stop.wait().await }
        });
        tokio::task::yield_now().await;
        stop.request(Reason::Closed);
        stop.request(Reason::Shutdown);
        assert_eq!(waiter.await.unwrap(), Reason::Closed);
        assert_eq!(stop.wait().await, Reason::Closed);
    }
}
