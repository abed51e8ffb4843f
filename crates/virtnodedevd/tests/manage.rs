//! The management area in-process, over a fake tree: no daemon, no socket, no virsh.
//! Definitions go to the tree's own mdevctl store (no mdevctl is run over a fake root),
//! and a recording listener stands where the event registry would be. The end-to-end
//! paths with real clients and mdevctl are in `mdev.rs` and `crash.rs`.

use std::path::Path;
use std::sync::{Arc, Mutex};

use nodedev::HostRoot;
use protocol::VirError;
use virtnodedevd::driver::{Change, ChangeListener, Driver};
use virtnodedevd::manage::{self, UPDATE_AFFECT_CONFIG, UPDATE_AFFECT_LIVE};

const GPU: &str = "pci_0000_af_00_0";
const UUID: &str = "c4a5e000-0000-4000-8000-0000000000a1";
const NAME: &str = "mdev_c4a5e000_0000_4000_8000_0000000000a1_0000_af_00_0";

/// Every change the device state published, in order.
#[derive(Default)]
struct Recorder(Mutex<Vec<(String, Change)>>);

impl ChangeListener for Recorder {
    fn changed(&self, device: &str, change: Change) {
        self.0.lock().unwrap().push((device.to_owned(), change));
    }
}

impl Recorder {
    fn take(&self) -> Vec<(String, Change)> {
        std::mem::take(&mut self.0.lock().unwrap())
    }
}

struct Host {
    tmp: tempfile::TempDir,
    driver: Driver,
    events: Arc<Recorder>,
}

impl Host {
    /// A host with an mdev-capable GPU (`GPU`), read as the daemon reads it at start-up.
    fn new() -> Host {
        // Over a fake root no mdevctl is ever run; make sure no test environment names one.
        std::env::remove_var("VIRTNODEDEVD_MDEVCTL");
        let tmp = tempfile::tempdir().unwrap();
        fakesys::trees::fc_mdev_s390(tmp.path()).unwrap();
        let events = Arc::new(Recorder::default());
        let driver = Driver::new(HostRoot::new(tmp.path()), manage::reconcile, events.clone());
        driver.enumerate(false);
        manage::load_store(&driver, false);
        Host {
            tmp,
            driver,
            events,
        }
    }

    /// The stored configuration of `UUID`, as mdevctl would read it.
    fn stored(&self) -> Option<String> {
        std::fs::read_to_string(self.store().join(UUID)).ok()
    }

    fn store(&self) -> std::path::PathBuf {
        Path::new(self.tmp.path()).join("etc/mdevctl.d/0000:af:00.0")
    }
}

fn definition(type_id: &str, attr: &str) -> String {
    format!(
        "<device><parent>{GPU}</parent><capability type='mdev'><type id='{type_id}'/>\
         <uuid>{UUID}</uuid><attr name='x' value='{attr}'/></capability></device>"
    )
}

/// (code, domain, message) as a client would see it.
fn seen(e: manage::ManageError) -> (i32, i32, String) {
    let v = VirError::from(e);
    (v.code, v.domain, v.message)
}

#[test]
fn define_redefine_and_undefine_keep_store_state_and_events_in_step() {
    let h = Host::new();
    let name = manage::define_xml(&h.driver, &definition("nvidia-222", "1"), false).unwrap();
    assert_eq!(name, NAME);
    assert_eq!(h.events.take(), [(NAME.to_owned(), Change::Defined)]);
    assert_eq!(
        h.stored().unwrap(),
        "{\n  \"mdev_type\": \"nvidia-222\",\n  \"start\": \"manual\",\n  \"attrs\": [\n    {\n      \"x\": \"1\"\n    }\n  ]\n}"
    );
    let dev = h.driver.devices().get(NAME).cloned().unwrap();
    assert!(dev.is_persistent() && !dev.is_active() && !dev.autostart());
    assert_eq!(dev.parent(), Some(GPU));

    // The same definition again changes nothing visible but is still an update of the
    // stored configuration, as libvirt reports it.
    manage::define_xml(&h.driver, &definition("nvidia-223", "2"), false).unwrap();
    assert_eq!(h.events.take(), [(NAME.to_owned(), Change::Updated)]);
    assert!(h.stored().unwrap().contains("nvidia-223"));

    manage::undefine(&h.driver, NAME).unwrap();
    assert_eq!(h.events.take(), [(NAME.to_owned(), Change::Undefined)]);
    assert_eq!(h.stored(), None);
    assert!(h.driver.devices().get(NAME).is_none());
}

#[test]
fn autostart_changes_the_definition_once() {
    let h = Host::new();
    manage::define_xml(&h.driver, &definition("nvidia-222", "1"), false).unwrap();
    h.events.take();
    manage::set_autostart(&h.driver, NAME, true).unwrap();
    assert_eq!(h.events.take(), [(NAME.to_owned(), Change::Updated)]);
    assert!(h.stored().unwrap().contains("\"start\": \"auto\""));
    assert!(h.driver.devices().get(NAME).unwrap().autostart());
    // Already so: nothing to do, no event.
    manage::set_autostart(&h.driver, NAME, true).unwrap();
    assert!(h.events.take().is_empty());
}

#[test]
fn update_of_an_inactive_definition_changes_only_its_config() {
    let h = Host::new();
    manage::define_xml(&h.driver, &definition("nvidia-222", "1"), false).unwrap();
    h.events.take();
    let new =
        definition("nvidia-222", "7").replace("<device>", &format!("<device><name>{NAME}</name>"));
    // An inactive device has no live configuration.
    assert_eq!(
        seen(manage::update(&h.driver, NAME, &new, UPDATE_AFFECT_LIVE).unwrap_err()),
        (
            55,
            22,
            "Requested operation is not valid: node device is not active".into()
        )
    );
    // CURRENT means CONFIG for an inactive device.
    manage::update(&h.driver, NAME, &new, 0).unwrap();
    assert_eq!(h.events.take(), [(NAME.to_owned(), Change::Updated)]);
    assert!(h.stored().unwrap().contains("\"x\": \"7\""));
    let dev = h.driver.devices().get(NAME).cloned().unwrap();
    assert!(manage::inactive_xml(&h.driver, &dev)
        .unwrap()
        .contains("<attr name='x' value='7'/>"));
    // The same again: stored as it was, no event.
    manage::update(&h.driver, NAME, &new, UPDATE_AFFECT_CONFIG).unwrap();
    assert!(h.events.take().is_empty());
}

#[test]
fn refusals_carry_libvirts_errors_and_change_nothing() {
    let h = Host::new();
    let cases: [(&str, (i32, i32, &str)); 4] = [
        (
            "<device><capability type='mdev'><type id='nvidia-222'/></capability></device>",
            (67, 22, "unsupported configuration: missing parent device"),
        ),
        (
            "<device><parent>nowhere</parent><capability type='mdev'><type id='t'/></capability></device>",
            (67, 22, "unsupported configuration: invalid parent device 'nowhere'"),
        ),
        (
            "<device><parent>computer</parent><capability type='mdev'><type id='t'/></capability></device>",
            (32, 22, "failed to parse configuration file Unable to find address for parent device 'computer'"),
        ),
        (
            "<device><parent>computer</parent><capability type='system'><hardware><uuid>x</uuid></hardware></capability></device>",
            (67, 22, "unsupported configuration: Unsupported device type"),
        ),
    ];
    for (xml, (code, domain, message)) in cases {
        let e = manage::define_xml(&h.driver, xml, false).unwrap_err();
        assert_eq!(seen(e), (code, domain, message.to_owned()), "{xml}");
    }
    assert_eq!(
        seen(manage::undefine(&h.driver, "no_such_device").unwrap_err()),
        (
            53,
            22,
            "Node device not found: no node device with matching name 'no_such_device'".into()
        )
    );
    assert_eq!(
        seen(manage::set_autostart(&h.driver, GPU, true).unwrap_err()),
        (
            84,
            22,
            "Operation not supported: Unsupported device type".into()
        )
    );
    assert!(h.events.take().is_empty());
    assert!(!h.store().exists() || std::fs::read_dir(h.store()).unwrap().next().is_none());
}
