//! The load that changes the device set: persistent mdevs defined and undefined, virtual
//! interfaces added to the fake tree and announced as uevents.

use std::collections::VecDeque;
use std::os::unix::net::UnixDatagram;
use std::path::Path;
use std::sync::atomic::Ordering::Relaxed;
use std::time::{Duration, Instant};

use protocol::remote::{self as r, proc};
use rpc::client::{CallError, Client};
use xdr::Xdr;

use super::{Kind, Shared, CHURN_NAME_PREFIX, CHURN_UUID_PREFIX, CHURN_WINDOW, UEVENT_IF_PREFIX};
use crate::measure::open;

fn churn_uuid(i: u64) -> String {
    format!(
        "{CHURN_UUID_PREFIX}-{:04x}-4000-8000-{:012x}",
        (i >> 48) & 0xffff,
        i & 0xffff_ffff_ffff
    )
}

/// Defines persistent mdevs and undefines them, CHURN_WINDOW defined at any time.
#[derive(Default)]
pub(super) struct Churn {
    c: Option<Client>,
    next: u64,
    defined: VecDeque<String>,
}

impl Churn {
    /// A call on the churn's connection, reopened after a transport error.
    fn call<A: Xdr, R: Xdr>(&mut self, s: &Shared, p: i32, args: &A) -> Result<R, String> {
        let c = match self.c {
            Some(ref mut c) => c,
            None => self.c.insert(open(&s.o.socket, Duration::from_secs(60))?),
        };
        c.call(p, args).map_err(|e| {
            if !matches!(e, CallError::Remote(_)) {
                self.c = None;
            }
            e.to_string()
        })
    }

    fn define(&mut self, s: &Shared, parent: &str) {
        let uuid = churn_uuid(self.next);
        self.next += 1;
        let xml = format!(
            "<device><parent>{parent}</parent><capability type='mdev'><type id='{}'/>\
             <uuid>{uuid}</uuid><attr name='soak' value='{}'/></capability></device>",
            s.o.mdev_type, self.next
        );
        let r: Result<r::NodeDeviceRet, String> = self
            .call(
                s,
                proc::NODE_DEVICE_DEFINE_XML,
                &r::XmlFlagsArgs {
                    xml_desc: xml,
                    flags: 0,
                },
            )
            .map_err(|e| format!("define {uuid}: {e}"));
        s.stats.call(Kind::Churn, 1);
        match r {
            Ok(d) if d.dev.name.starts_with(CHURN_NAME_PREFIX) => {
                s.stats.expected.add(2);
                self.defined.push_back(d.dev.name);
            }
            Ok(d) => s
                .stats
                .error(Kind::Churn, format!("define named it {}", d.dev.name)),
            Err(e) => s.stats.error(Kind::Churn, e),
        }
    }

    fn undefine_oldest(&mut self, s: &Shared) {
        let Some(name) = self.defined.pop_front() else {
            return;
        };
        let r: Result<(), String> = self
            .call(
                s,
                proc::NODE_DEVICE_UNDEFINE,
                &r::NameFlagsArgs {
                    name: name.clone(),
                    flags: 0,
                },
            )
            .map_err(|e| format!("undefine {name}: {e}"));
        s.stats.call(Kind::Churn, 1);
        match r {
            Ok(()) => s.stats.expected.add(3),
            Err(e) => s.stats.error(Kind::Churn, e),
        }
    }
}

pub(super) fn churn(s: &Shared, parent: &str, mut ch: Churn) {
    let period = Duration::from_secs_f64(1.0 / s.o.churn_rate.max(0.01));
    let mut next = Instant::now();
    while !s.stopping() {
        ch.define(s, parent);
        while ch.defined.len() > CHURN_WINDOW {
            ch.undefine_oldest(s);
        }
        next += period;
        let now = Instant::now();
        if next > now {
            s.pause(next - now);
        } else {
            next = now;
        }
    }
    while !ch.defined.is_empty() {
        ch.undefine_oldest(s);
    }
}

/// Defines and undefines an mdev until every subscriber has seen it, so that expected
/// and received count the same events from then on (virsh says nothing once subscribed).
pub(super) fn probe(s: &Shared, parent: &str, ch: &mut Churn) -> Result<(), String> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        ch.define(s, parent);
        ch.undefine_oldest(s);
        std::thread::sleep(Duration::from_millis(300));
        if s.stats.total_errors() > 0 {
            return Err("the probe define/undefine failed (see above)".into());
        }
        let virsh_ready = !s.o.real_clients || s.stats.virsh.total() > 0;
        if virsh_ready && s.stats.ours.total() > 0 {
            // The probe rounds virsh ran before it subscribed count as seen.
            std::thread::sleep(Duration::from_millis(500));
            let (want, got) = (s.stats.expected.get(), s.stats.virsh.get());
            for i in 0..4 {
                s.stats.virsh.0[i].fetch_add(want[i].saturating_sub(got[i]), Relaxed);
            }
            return Ok(());
        }
        if Instant::now() > deadline {
            return Err("the subscribers saw no event of the probe within 30 s".into());
        }
    }
}

/// Virtual interfaces `vndsoakN` added to the fake tree and announced, then removed and
/// announced: one CREATED and one DELETED each.
pub(super) fn uevents(s: &Shared, root: &Path, sock: &Path) {
    let f = match fakesys::FakeSys::new(root) {
        Ok(f) => f,
        Err(e) => {
            return s
                .stats
                .error(Kind::Uevent, format!("{}: {e}", root.display()))
        }
    };
    let tx = match UnixDatagram::unbound() {
        Ok(t) => t,
        Err(e) => return s.stats.error(Kind::Uevent, e),
    };
    let send = |action: &str, devpath: &str| {
        let devpath = devpath.strip_prefix("/sys").unwrap_or(devpath);
        let msg = format!(
            "{action}@{devpath}\0ACTION={action}\0DEVPATH={devpath}\0SUBSYSTEM=net\0SEQNUM=1\0"
        );
        tx.send_to(msg.as_bytes(), sock).map(|_| ())
    };
    let mut i = 0u32;
    while !s.stopping() {
        let name = format!("{UEVENT_IF_PREFIX}{i}");
        let spec = fakesys::NetSpec::new(
            &name,
            100_000 + i,
            &format!("52:54:00:5a:{:02x}:{:02x}", i >> 8 & 0xff, i & 0xff),
        );
        let r = f
            .net(None, &spec)
            .map_err(|e| e.to_string())
            .and_then(|dev| {
                send("add", &dev).map_err(|e| format!("add {name}: {e}"))?;
                s.stats.expected.add(0);
                s.stats.call(Kind::Uevent, 1);
                s.pause(Duration::from_millis(500));
                std::fs::remove_file(f.path(&format!("/sys/class/net/{name}")))
                    .and_then(|()| std::fs::remove_dir_all(f.path(&dev)))
                    .map_err(|e| format!("remove {name}: {e}"))?;
                send("remove", &dev).map_err(|e| format!("remove {name}: {e}"))?;
                s.stats.expected.add(1);
                s.stats.call(Kind::Uevent, 1);
                Ok(())
            });
        if let Err(e) = r {
            s.stats.error(Kind::Uevent, e);
        }
        i += 1;
        s.pause(Duration::from_millis(1500));
    }
}
