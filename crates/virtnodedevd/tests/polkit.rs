//! polkit authentication on the read-write and read-only sockets, against a real polkitd
//! on a private system bus, with the answers of libvirtd 11.3 and 9.0 started under the
//! same polkitd (issue 12, items 1 and 2 as far as they concern authentication). The
//! private bus, polkitd and users are `common::polkit`'s.

mod common;

use std::process::{Child, Command, Stdio};

use common::polkit::*;
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

#[test]
fn polkit_authentication_answers_as_libvirt() {
    if !can_run() {
        return;
    }
    let mut host = PolkitHost::start();
    let bus = host.address();
    let (ours, refs) = start_daemons(&host, &bus, "");
    let targets = targets_of(&ours, &refs);
    let names = [&host.users.plain, &host.users.member, &host.users.denied].map(String::clone);
    let [plain, member, denied] = [0, 1, 2].map(|i| Some(names[i].as_str()));

    // Who may connect where: libvirt's policy lets anyone monitor, its rules file lets
    // the libvirt group manage, root never asks; the test rule refuses one user.
    for t in &targets {
        let got = [
            virsh_list(plain, &t.ro),
            virsh_list(plain, &t.rw),
            virsh_list(member, &t.ro),
            virsh_list(member, &t.rw),
            virsh_list(denied, &t.ro),
            virsh_list(denied, &t.rw),
            virsh_list(None, &t.ro),
            virsh_list(None, &t.rw),
        ];
        let want = [
            "computer", AGENT, "computer", "computer", DENIED, AGENT, "computer", "computer",
        ];
        assert_eq!(got, want, "{}", t.name);
        let py = [
            python_open(plain, &t.ro, true),
            python_open(plain, &t.rw, false),
            python_open(denied, &t.ro, true),
            python_open(member, &t.rw, false),
        ];
        let want = [
            "ok True".to_owned(),
            format!("94 60 {}", &AGENT["error: ".len()..]),
            format!("45 60 {}", &DENIED["error: ".len()..]),
            "ok True".to_owned(),
        ];
        assert_eq!(py, want, "{}", t.name);
    }

    root_passes_at_auth_list(&targets);

    for t in &targets {
        eprintln!(
            "{}: {} connections/s for a libvirt group member through polkit (rw socket)",
            t.name,
            connection_rate(member, &t.rw)
        );
    }

    no_stall(&host, &targets);

    // polkitd gone: libvirt's D-Bus error for the clients that must ask, root unaffected;
    // back again, the same daemons ask it again.
    host.stop_polkitd();
    for t in &targets {
        assert_eq!(virsh_list(member, &t.rw), NO_POLKIT, "{}", t.name);
        assert_eq!(
            python_open(plain, &t.ro, true),
            format!("89 47 {}", &NO_POLKIT["error: ".len()..]),
            "{}",
            t.name
        );
        assert_eq!(virsh_list(None, &t.rw), "computer", "{}", t.name);
    }
    host.start_polkitd();
    for t in &targets {
        assert_eq!(virsh_list(member, &t.rw), "computer", "{}", t.name);
    }
    drop(targets);
    drop(refs);
    drop(ours);

    // No system bus at all.
    let missing = format!("unix:path={}/no-bus", host.dir.path().display());
    let (ours, refs) = start_daemons(&host, &missing, "");
    let targets = targets_of(&ours, &refs);
    for t in &targets {
        assert_eq!(
            python_open(plain, &t.ro, true),
            "1 47 internal error: Unable to get system bus connection: Could not connect: \
             No such file or directory",
            "{}",
            t.name
        );
        assert_eq!(virsh_list(None, &t.rw), "computer", "{}", t.name);
    }
}

/// A polkitd that does not answer (stopped with SIGSTOP, its bus name still owned):
/// the clients waiting for it count as unauthenticated, as libvirt counts them, and get
/// libvirt's D-Bus timeout; meanwhile root is served, and a waiting client that hangs up
/// is dropped at once by our daemon, without waiting for polkitd. (libvirt's client list
/// after such a hang-up was not stable enough here to be compared: not pinned.)
fn no_stall(host: &PolkitHost, targets: &[Target]) {
    let member = host.users.member.clone();
    kill(host.polkitd_pid(), Signal::SIGSTOP).unwrap();
    let waiting: Vec<Child> = targets
        .iter()
        .map(|t| {
            as_user(Some(&member), "virsh")
                .args(["-q", "-c", &t.rw, "nodedev-list", "--cap", "system"])
                .stdin(Stdio::null())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .expect("run virsh")
        })
        .collect();
    for t in targets {
        wait_until(&format!("{}: a pending client", t.name), || {
            t.unauth_clients() == "1"
        });
        assert_eq!(virsh_list(None, &t.rw), "computer", "{}", t.name);
    }
    let ours = &targets[0];
    let mut quitter = as_user(Some(&member), "virsh")
        .args(["-q", "-c", &ours.rw, "nodedev-list", "--cap", "system"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("run virsh");
    wait_until("two pending clients", || ours.unauth_clients() == "2");
    // runuser forks the client and waits for it: the client is runuser's child.
    let mut client = String::new();
    wait_until("the client under runuser", || {
        let out = Command::new("pgrep")
            .args(["-P", &quitter.id().to_string()])
            .output()
            .unwrap();
        client = String::from_utf8_lossy(&out.stdout).trim().to_owned();
        !client.is_empty()
    });
    kill(Pid::from_raw(client.parse().unwrap()), Signal::SIGKILL).unwrap();
    let _ = quitter.wait();
    wait_until("the client that hung up to be dropped", || {
        ours.unauth_clients() == "1"
    });
    for (t, c) in targets.iter().zip(waiting) {
        let out = c.wait_with_output().unwrap();
        assert_eq!(
            outcome(&out),
            "error: error from service: Timeout was reached",
            "{}",
            t.name
        );
    }
    kill(host.polkitd_pid(), Signal::SIGCONT).unwrap();
}

/// Root, on a polkit socket, is an unauthenticated client like any other until it asks
/// AUTH_LIST, which lets it through without asking polkitd (as libvirt does; it counts
/// against max_anonymous_clients meanwhile).
fn root_passes_at_auth_list(targets: &[Target]) {
    use protocol::remote::{proc, AuthListRet, ConnectOpenArgs};
    for t in targets {
        let sock = t.rw.split_once("socket=").expect("a socket URI").1;
        let mut c = rpc::client::Client::connect(
            std::path::Path::new(sock),
            protocol::REMOTE_PROGRAM,
            protocol::REMOTE_VERSION,
        )
        .unwrap();
        let open = ConnectOpenArgs {
            name: Some("nodedev:///system".into()),
            flags: 0,
        };
        let refused = c.call::<_, ()>(proc::CONNECT_OPEN, &open).unwrap_err();
        assert_eq!(refused.to_string(), "authentication required", "{}", t.name);
        assert_eq!(t.unauth_clients(), "1", "{}", t.name);
        let types: AuthListRet = c.call(proc::AUTH_LIST, &()).unwrap();
        assert_eq!(types.types, [0], "{}: AUTH_NONE", t.name);
        assert_eq!(t.unauth_clients(), "0", "{}", t.name);
        c.call::<_, ()>(proc::CONNECT_OPEN, &open).unwrap();
    }
}
