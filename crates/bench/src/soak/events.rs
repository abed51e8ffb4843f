//! The event subscribers (our client and `virsh nodedev-event`) and the check that each
//! received every event the load caused, exactly once.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use protocol::remote::{self as r, proc};
use rpc::client::Client;
use xdr::{Decoder, Xdr};

use super::{volatile, EventCounts, Kind, Options, Shared};
use crate::measure::open;

/// Our subscriber: registered for lifecycle and update events of every device.
fn subscribe(o: &Options) -> Result<Client, String> {
    let mut c = open(&o.socket, Duration::from_secs(60))?;
    for id in [0, 1] {
        let _: r::IntRet = c
            .call(
                proc::CONNECT_NODE_DEVICE_EVENT_REGISTER_ANY,
                &r::EventRegisterAnyArgs {
                    event_id: id,
                    dev: None,
                },
            )
            .map_err(|e| format!("EVENT_REGISTER_ANY {id}: {e}"))?;
    }
    // Events may be minutes apart; the main thread ends the wait by shutting the socket.
    c.stream()
        .set_read_timeout(None)
        .map_err(|e| e.to_string())?;
    Ok(c)
}

fn our_events(s: &Shared, mut c: Client) {
    loop {
        let m = match c.read_message() {
            Ok(m) => m,
            Err(e) => {
                if !s.stopping() {
                    s.stats.error(
                        Kind::Event,
                        format!("our subscriber lost its connection: {e}"),
                    );
                }
                return;
            }
        };
        let d = &mut Decoder::new(&m.payload);
        // Every event received counts as a call of this kind of load.
        s.stats.call(Kind::Event, 1);
        match m.header.proc_ {
            proc::NODE_DEVICE_EVENT_LIFECYCLE => match r::LifecycleEventMsg::decode(d) {
                Ok(e) if volatile(&e.dev.name) => s.stats.ours.add(e.event),
                Ok(_) => {}
                Err(_) => s.stats.error(Kind::Event, "undecodable lifecycle event"),
            },
            proc::NODE_DEVICE_EVENT_UPDATE if r::UpdateEventMsg::decode(d).is_err() => {
                s.stats.error(Kind::Event, "undecodable update event")
            }
            _ => {}
        }
    }
}

const VIRSH_EVENTS: [&str; 4] = ["Created", "Deleted", "Defined", "Undefined"];

/// `virsh nodedev-event --event lifecycle --loop`, its lines counted as they come.
fn virsh_events(s: Arc<Shared>) -> Result<(Child, JoinHandle<()>), String> {
    let mut child = Command::new("stdbuf")
        .args([
            "-oL",
            "virsh",
            "-c",
            &s.uri(),
            "nodedev-event",
            "--event",
            "lifecycle",
            "--loop",
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| format!("cannot run virsh nodedev-event: {e}"))?;
    let out = child.stdout.take().expect("piped");
    let t = std::thread::spawn(move || {
        for line in BufReader::new(out).lines() {
            let Ok(line) = line else { break };
            // event 'lifecycle' for node device NAME: Defined
            let Some(rest) = line.strip_prefix("event 'lifecycle' for node device ") else {
                continue;
            };
            let Some((name, ev)) = rest.rsplit_once(": ") else {
                continue;
            };
            if volatile(name) {
                match VIRSH_EVENTS.iter().position(|e| *e == ev) {
                    Some(i) => s.stats.virsh.add(i as i32),
                    None => s
                        .stats
                        .error(Kind::Event, format!("virsh printed {line:?}")),
                }
            }
        }
        if !s.stopping() {
            s.stats.error(Kind::Event, "virsh nodedev-event ended");
        }
    });
    Ok((child, t))
}

/// Compares what a subscriber received with what the load caused.
pub(super) fn check_events(s: &Shared, who: &str, got: &EventCounts) {
    let want = s.stats.expected.get();
    let got = got.get();
    for (i, name) in VIRSH_EVENTS.iter().enumerate() {
        if got[i] != want[i] {
            s.stats.error(
                Kind::Event,
                format!("{who}: {} {name} events, expected {}", got[i], want[i]),
            );
        }
    }
}

/// Waits (bounded) until `got` has caught up with the expected events.
fn settle(s: &Shared, got: &EventCounts, limit: Duration) {
    let end = Instant::now() + limit;
    while got.total() < s.stats.expected.total() && Instant::now() < end {
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Our subscriber and `virsh nodedev-event`, and what ends them.
pub(super) struct Subscribers {
    threads: Vec<JoinHandle<()>>,
    ours: std::os::unix::net::UnixStream,
    virsh: Option<Child>,
}

impl Subscribers {
    pub(super) fn start(s: &Arc<Shared>) -> Result<Subscribers, String> {
        let sub = subscribe(&s.o)?;
        let ours = sub.stream().try_clone().map_err(|e| e.to_string())?;
        let s2 = s.clone();
        let mut threads = vec![std::thread::spawn(move || our_events(&s2, sub))];
        let mut virsh = None;
        if s.o.real_clients {
            let (child, t) = virsh_events(s.clone())?;
            virsh = Some(child);
            threads.push(t);
        }
        Ok(Subscribers {
            threads,
            ours,
            virsh,
        })
    }

    /// Lets them catch up with what the load caused (bounded), then ends them.
    pub(super) fn stop(self, s: &Shared, daemon_alive: bool) {
        if daemon_alive {
            settle(s, &s.stats.ours, Duration::from_secs(20));
            if self.virsh.is_some() {
                settle(s, &s.stats.virsh, Duration::from_secs(20));
            }
        }
        let _ = self.ours.shutdown(std::net::Shutdown::Both);
        if let Some(mut c) = self.virsh {
            let _ = c.kill();
            let _ = c.wait();
        }
        for t in self.threads {
            let _ = t.join();
        }
    }
}
