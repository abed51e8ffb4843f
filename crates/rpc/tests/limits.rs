//! The accept loop's client limits, in-process: clients wait in the listen backlog
//! before the server runs, so every accept decision is made with the backlog full.

use std::future::Future;
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::sync::Arc;

use rpc::{ClientInfo, EventSender, Header, Limits, Reply, Server, Service};
use tokio::sync::watch;

/// A service whose clients must authenticate (as on a polkit socket) or not.
struct Program {
    needs_auth: bool,
}

impl Service for Program {
    type Session = ();

    fn has_program(&self, _prog: u32, _vers: u32) -> bool {
        true
    }

    fn connect(&self, _info: ClientInfo, _events: EventSender) {}

    async fn call(&self, _session: &mut (), _header: &Header, _args: &[u8]) -> Reply {
        Reply::ok(Vec::new())
    }

    fn disconnect(&self, _session: ()) {}

    fn auth_pending(&self, _session: &()) -> bool {
        self.needs_auth
    }
}

struct Dir(PathBuf);

impl Dir {
    fn new(name: &str) -> Dir {
        let d = std::env::temp_dir().join(format!("rpc-limits-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        Dir(d)
    }
}

impl Drop for Dir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Lets every other task of the current-thread runtime run until nothing is left to do
/// (a task woken by a socket needs at most a few turns).
async fn settle() {
    for _ in 0..200 {
        tokio::task::yield_now().await;
    }
}

fn ids(server: &Server) -> Vec<u64> {
    server.clients().iter().map(|c| c.info.id).collect()
}

/// Starts `serve` on a listener that already holds `n` waiting clients.
fn with_waiting_clients(
    name: &str,
    needs_auth: bool,
    limits: Limits,
    n: usize,
    check: impl FnOnce(Arc<Server>, Vec<UnixStream>) -> std::pin::Pin<Box<dyn Future<Output = ()>>>,
) {
    let dir = Dir::new(name);
    let path = dir.0.join("sock");
    let std_listener = std::os::unix::net::UnixListener::bind(&path).unwrap();
    std_listener.set_nonblocking(true).unwrap();
    let clients: Vec<UnixStream> = (0..n)
        .map(|_| UnixStream::connect(&path).unwrap())
        .collect();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async move {
        let listener = tokio::net::UnixListener::from_std(std_listener).unwrap();
        let server = Server::new(limits);
        let (stop_tx, stop_rx) = watch::channel(false);
        let task = tokio::spawn(rpc::serve(
            server.clone(),
            listener,
            false,
            Arc::new(Program { needs_auth }),
            stop_rx,
        ));
        check(server, clients).await;
        let _ = stop_tx.send(true);
        let _ = task.await;
    });
}

#[test]
fn anonymous_limit_stops_accepting_at_the_limit_not_one_later() {
    let limits = Limits {
        max_anonymous_clients: 2,
        ..Limits::default()
    };
    with_waiting_clients("anon", true, limits, 3, |server, mut clients| {
        Box::pin(async move {
            settle().await;
            // virNetServerCheckLimits counts each unauthenticated client as it is added:
            // the third stays in the backlog.
            assert_eq!(server.client_limits(), (5000, 2, 2, 2));
            assert_eq!(ids(&server), [1, 2]);
            // One leaves: the waiting one is taken, and the limit holds again.
            drop(clients.remove(0));
            settle().await;
            assert_eq!(server.client_limits(), (5000, 2, 2, 2));
            assert_eq!(ids(&server), [2, 3]);
        })
    });
}

#[test]
fn clients_that_need_no_auth_do_not_count_as_anonymous() {
    let limits = Limits {
        max_anonymous_clients: 1,
        ..Limits::default()
    };
    with_waiting_clients("noauth", false, limits, 3, |server, clients| {
        Box::pin(async move {
            let _open = clients;
            settle().await;
            assert_eq!(server.client_limits(), (5000, 3, 1, 0));
        })
    });
}

#[test]
fn max_clients_counts_every_client() {
    let limits = Limits {
        max_clients: 2,
        max_anonymous_clients: 0,
        ..Limits::default()
    };
    with_waiting_clients("max", true, limits, 3, |server, clients| {
        Box::pin(async move {
            let _open = clients;
            settle().await;
            assert_eq!(server.client_limits(), (2, 2, 0, 2));
        })
    });
}
