//! The node-device driver's state: the current device set and the event callbacks.
//!
//! Readers take a snapshot (an `Arc`) so a call never sees half an update; writers
//! replace the whole snapshot.

use std::collections::HashMap;
use std::sync::atomic::{AtomicI32, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use nodedev::{Device, HostRoot};
use protocol::remote::{LifecycleEventMsg, NodeDevice, UpdateEventMsg};
use protocol::{event_id, remote::proc, REMOTE_PROGRAM, REMOTE_VERSION};
use rpc::header::{frame, Header};
use rpc::EventSender;
use tracing::warn;
use xdr::Xdr;

/// All devices known at one moment, with a name index.
#[derive(Default)]
pub struct DeviceList {
    devices: Vec<Device>,
    by_name: HashMap<String, usize>,
}

impl DeviceList {
    pub fn new(devices: Vec<Device>) -> Self {
        let by_name = devices
            .iter()
            .enumerate()
            .map(|(i, d)| (d.name().to_owned(), i))
            .collect();
        Self { devices, by_name }
    }

    pub fn get(&self, name: &str) -> Option<&Device> {
        self.by_name.get(name).map(|&i| &self.devices[i])
    }

    pub fn iter(&self) -> impl Iterator<Item = &Device> {
        self.devices.iter()
    }

    pub fn len(&self) -> usize {
        self.devices.len()
    }
}

/// virNodeDeviceEventLifecycleType.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(i32)]
#[allow(dead_code)]
pub enum Lifecycle {
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
    sink: EventSender,
}

pub struct Driver {
    root: HostRoot,
    devices: RwLock<Arc<DeviceList>>,
    callbacks: Mutex<Vec<Callback>>,
    /// One counter for the whole daemon, from 0, as libvirt hands out callback ids.
    next_callback: AtomicI32,
    refreshed: Mutex<HashMap<String, Arc<Refreshed>>>,
}

/// How long re-read device data is reused; see [`Driver::refreshed`].
pub const REFRESH_AFTER: Duration = Duration::from_secs(1);

/// A device as last re-read, with its XML.
pub struct Refreshed {
    pub device: Device,
    pub xml: String,
    at: Instant,
}

impl Driver {
    pub fn new(root: HostRoot) -> Self {
        Self {
            root,
            devices: RwLock::new(Arc::new(DeviceList::default())),
            callbacks: Mutex::new(Vec::new()),
            next_callback: AtomicI32::new(0),
            refreshed: Mutex::new(HashMap::new()),
        }
    }

    /// The device with the data libvirt re-reads on every XML or capability query
    /// (driver binding, link state, SR-IOV, mdev types, ...) brought up to date, and its XML.
    ///
    /// libvirt re-reads on every call; that costs more than the rest of the call, so the
    /// result is kept for up to [`REFRESH_AFTER`] and dropped whenever the device set is
    /// re-read. Data that changes without any event is therefore at most that old.
    pub fn refreshed(&self, dev: &Device) -> Arc<Refreshed> {
        let now = Instant::now();
        let mut cache = self.refreshed.lock().expect("refresh cache lock");
        if let Some(r) = cache.get(dev.name()) {
            if now.duration_since(r.at) < REFRESH_AFTER {
                return r.clone();
            }
        }
        let mut device = dev.clone();
        device.refresh(&self.root);
        let r = Arc::new(Refreshed {
            xml: device.to_xml(),
            device,
            at: now,
        });
        cache.insert(dev.name().to_owned(), r.clone());
        r
    }

    /// Reads the whole host and replaces the device set.
    pub fn enumerate(&self) -> usize {
        let list = DeviceList::new(nodedev::enumerate(&self.root));
        let n = list.len();
        *self.devices.write().expect("device lock") = Arc::new(list);
        self.refreshed.lock().expect("refresh cache lock").clear();
        n
    }

    pub fn devices(&self) -> Arc<DeviceList> {
        self.devices.read().expect("device lock").clone()
    }

    pub fn register_callback(
        &self,
        client: u64,
        event_id: i32,
        device: Option<String>,
        sink: EventSender,
    ) -> i32 {
        let id = self.next_callback.fetch_add(1, Ordering::Relaxed);
        self.callbacks
            .lock()
            .expect("callback lock")
            .push(Callback {
                id,
                event_id,
                device,
                client,
                sink,
            });
        id
    }

    /// False when `id` is not one of `client`'s callbacks.
    pub fn deregister_callback(&self, client: u64, id: i32) -> bool {
        let mut cbs = self.callbacks.lock().expect("callback lock");
        let before = cbs.len();
        cbs.retain(|c| !(c.id == id && c.client == client));
        cbs.len() != before
    }

    pub fn client_gone(&self, client: u64) {
        self.callbacks
            .lock()
            .expect("callback lock")
            .retain(|c| c.client != client);
    }

    /// Sends a lifecycle event to every matching callback.
    #[allow(dead_code)]
    pub fn emit_lifecycle(&self, name: &str, event: Lifecycle) {
        self.emit(event_id::LIFECYCLE, name, |id| {
            let msg = LifecycleEventMsg {
                callback_id: id,
                dev: NodeDevice {
                    name: name.to_owned(),
                },
                event: event as i32,
                detail: 0,
            };
            event_frame(proc::NODE_DEVICE_EVENT_LIFECYCLE, &msg)
        });
    }

    /// Sends an update event to every matching callback.
    #[allow(dead_code)]
    pub fn emit_update(&self, name: &str) {
        self.emit(event_id::UPDATE, name, |id| {
            let msg = UpdateEventMsg {
                callback_id: id,
                dev: NodeDevice {
                    name: name.to_owned(),
                },
            };
            event_frame(proc::NODE_DEVICE_EVENT_UPDATE, &msg)
        });
    }

    fn emit(&self, event_id: i32, name: &str, build: impl Fn(i32) -> Vec<u8>) {
        let cbs = self.callbacks.lock().expect("callback lock");
        for cb in cbs.iter().filter(|c| c.event_id == event_id) {
            if cb.device.as_deref().is_some_and(|d| d != name) {
                continue;
            }
            if cb.sink.try_send(build(cb.id)).is_err() {
                warn!(
                    client = cb.client,
                    callback = cb.id,
                    "event queue full, event dropped"
                );
            }
        }
    }
}

/// Event messages carry serial 1, a libvirt quirk clients ignore but we keep.
fn event_frame<T: Xdr>(procedure: i32, body: &T) -> Vec<u8> {
    let h = Header::message(REMOTE_PROGRAM, REMOTE_VERSION, procedure, 1);
    frame(&h, |e| body.encode(e))
}
