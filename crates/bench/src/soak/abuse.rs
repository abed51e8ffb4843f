//! The hostile load: abusive clients on every socket ([`bench::hostile`]) and XML bombs.

use std::sync::atomic::Ordering::Relaxed;
use std::time::Duration;

use bench::hostile::{self, Rng};
use rpc::client::Client;

use super::{Kind, Shared, HOSTILE_PAUSE};

/// Hostile thread `t`: the read-write socket, the read-only one, the admin one, and then
/// the read-write one again.
pub(super) fn hostile_thread(s: &Shared, t: usize) {
    let mut rng = Rng(Rng::seed(s.o.seed, t as u64));
    let valid = hostile::valid_remote_calls();
    let n = &s.stats.hostile;
    while !s.stopping() {
        let before = n.frames.load(Relaxed);
        let r = match t % 3 {
            2 => hostile::admin_abuse(&mut rng, &s.o.admin_socket, n),
            1 => hostile::remote_abuse(&mut rng, &s.o.ro_socket, &valid, n),
            _ => hostile::remote_abuse(&mut rng, &s.o.socket, &valid, n),
        };
        s.stats
            .call(Kind::Hostile, n.frames.load(Relaxed).saturating_sub(before));
        if let Err(e) = r {
            s.stats.error(Kind::Hostile, e);
            s.pause(Duration::from_millis(500));
        }
        // A breath between connections: enough abuse to matter, not so much that the
        // rest of the load starves on a small machine.
        s.pause(HOSTILE_PAUSE);
    }
}

/// One XML bomb a second, through CREATE_XML and DEFINE_XML in turn.
pub(super) fn bombs(s: &Shared) {
    let bombs = hostile::xml_bombs();
    let mut c: Option<Client> = None;
    let mut i = 0usize;
    while !s.stopping() {
        let (label, xml) = &bombs[i % bombs.len()];
        let define = (i / bombs.len()) % 2 == 1;
        i += 1;
        let Some(conn) = s.connected(&mut c, Kind::Bomb) else {
            continue;
        };
        s.stats.call(Kind::Bomb, 1);
        *s.stats.last_bomb.lock().unwrap_or_else(|e| e.into_inner()) = format!(
            "{label} ({} bytes) through {}",
            xml.len(),
            if define { "DEFINE_XML" } else { "CREATE_XML" },
        );
        if let Err(e) = hostile::send_bomb(conn, define, label, xml) {
            s.stats.error(Kind::Bomb, e);
            c = None;
        }
        s.pause(Duration::from_secs(1));
    }
}
