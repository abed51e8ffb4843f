//! Node-device event callbacks (`virConnectNodeDeviceEventRegisterAny`): the registry of
//! every client's callbacks, and the wire messages the device state's changes become.

use std::sync::atomic::{AtomicI32, Ordering};

use parking_lot::Mutex;
use protocol::remote::{proc, LifecycleEventMsg, NodeDevice, UpdateEventMsg};
use protocol::{event_id, REMOTE_PROGRAM, REMOTE_VERSION};
use rpc::header::{frame, Header};
use rpc::{ClientIdentity, EventSender};
use tokio::sync::mpsc;
use tracing::warn;
use xdr::Xdr;

use crate::access::{AccessManager, Perm};
use crate::driver::{Change, ChangeListener};

/// virNodeDeviceEventLifecycleType.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(i32)]
enum Lifecycle {
    Created = 0,
    Deleted = 1,
    Defined = 2,
    Undefined = 3,
}

struct Callback {
    id: i32,
    event_id: i32,
    device: Option<String>,
    client: u64,
    sink: EventSink,
}

/// How many events may wait for their access check before the client counts as stuck
/// (the connection's own queue has the same bound).
const FILTER_QUEUE: usize = 10_000;

/// Where a client's events go: straight to its connection or, under access control,
/// through a task of the client's own that asks, event by event and in order, whether
/// the client may see the device (libvirt's event filter, `node_device:getattr`).
#[derive(Clone)]
pub enum EventSink {
    Direct(EventSender),
    Filtered(mpsc::Sender<(String, Vec<u8>)>),
}

impl EventSink {
    /// The filtered sink of the client `who`, whose events end in `connection`.
    pub fn filtered(access: AccessManager, who: ClientIdentity, connection: EventSender) -> Self {
        let (tx, mut rx) = mpsc::channel::<(String, Vec<u8>)>(FILTER_QUEUE);
        tokio::spawn(async move {
            while let Some((device, frame)) = rx.recv().await {
                if access
                    .allows(&who.get(), Perm::NodeDeviceGetattr, Some(&device))
                    .await
                    && !connection.send(frame)
                {
                    warn!(device, "event not queued");
                }
            }
        });
        Self::Filtered(tx)
    }

    fn send(&self, device: &str, frame: Vec<u8>) -> bool {
        match self {
            Self::Direct(connection) => connection.send(frame),
            Self::Filtered(check) => check.try_send((device.to_owned(), frame)).is_ok(),
        }
    }
}

/// Every registered callback of every client.
#[derive(Default)]
pub struct Events {
    callbacks: Mutex<Vec<Callback>>,
    /// One counter for the whole daemon, from 0, as libvirt hands out callback ids.
    next_callback: AtomicI32,
}

impl Events {
    pub fn register(
        &self,
        client: u64,
        event_id: i32,
        device: Option<String>,
        sink: EventSink,
    ) -> i32 {
        let id = self.next_callback.fetch_add(1, Ordering::Relaxed);
        self.callbacks.lock().push(Callback {
            id,
            event_id,
            device,
            client,
            sink,
        });
        id
    }

    pub fn is_registered(&self, client: u64, id: i32) -> bool {
        self.callbacks
            .lock()
            .iter()
            .any(|c| c.id == id && c.client == client)
    }

    /// False when `id` is not one of `client`'s callbacks.
    pub fn deregister(&self, client: u64, id: i32) -> bool {
        let mut cbs = self.callbacks.lock();
        let before = cbs.len();
        cbs.retain(|c| !(c.id == id && c.client == client));
        cbs.len() != before
    }

    pub fn client_gone(&self, client: u64) {
        self.callbacks.lock().retain(|c| c.client != client);
    }

    fn emit(&self, event_id: i32, name: &str, build: impl Fn(i32) -> Vec<u8>) {
        let cbs = self.callbacks.lock();
        for cb in cbs.iter().filter(|c| c.event_id == event_id) {
            if cb.device.as_deref().is_some_and(|d| d != name) {
                continue;
            }
            if !cb.sink.send(name, build(cb.id)) {
                warn!(client = cb.client, callback = cb.id, "event not queued");
            }
        }
    }
}

impl ChangeListener for Events {
    fn changed(&self, name: &str, change: Change) {
        let lifecycle = match change {
            Change::Created => Lifecycle::Created,
            Change::Deleted => Lifecycle::Deleted,
            Change::Defined => Lifecycle::Defined,
            Change::Undefined => Lifecycle::Undefined,
            Change::Updated => {
                return self.emit(event_id::UPDATE, name, |id| {
                    let msg = UpdateEventMsg {
                        callback_id: id,
                        dev: NodeDevice {
                            name: name.to_owned(),
                        },
                    };
                    event_frame(proc::NODE_DEVICE_EVENT_UPDATE, &msg)
                })
            }
        };
        self.emit(event_id::LIFECYCLE, name, |id| {
            let msg = LifecycleEventMsg {
                callback_id: id,
                dev: NodeDevice {
                    name: name.to_owned(),
                },
                event: lifecycle as i32,
                detail: 0,
            };
            event_frame(proc::NODE_DEVICE_EVENT_LIFECYCLE, &msg)
        });
    }
}

/// Event messages carry serial 1, a libvirt quirk clients ignore but we keep.
fn event_frame<T: Xdr>(procedure: i32, body: &T) -> Vec<u8> {
    let h = Header::message(REMOTE_PROGRAM, REMOTE_VERSION, procedure, 1);
    frame(&h, |e| body.encode(e))
}
