//! Compare our view of the real host with a reference libvirtd a developer already
//! runs (see reference.md), named by NODEDEV_REFERENCE_SOCKET, without starting a
//! daemon of ours. The test suite's own real-host comparison, which starts both daemons
//! itself, is crates/virtnodedevd/tests/differential.rs; this one is ignored unless asked
//! for (`NODEDEV_REFERENCE_SOCKET=... cargo test -p nodedev --test real_host -- --ignored`).

mod common;

use std::process::Command;

#[test]
#[ignore = "needs a running reference named by NODEDEV_REFERENCE_SOCKET"]
fn real_host_matches_a_running_reference() {
    let Some(sock) = std::env::var_os("NODEDEV_REFERENCE_SOCKET") else {
        common::skip_or_fail("NODEDEV_REFERENCE_SOCKET (a running reference's libvirt-sock)");
        return;
    };
    let sock = sock.to_string_lossy().into_owned();
    let uri = format!("nodedev+unix:///system?socket={sock}");
    let virsh = |args: &[&str]| {
        let o = Command::new("virsh")
            .arg("-c")
            .arg(&uri)
            .args(args)
            .output()
            .unwrap();
        assert!(o.status.success(), "virsh {args:?}");
        String::from_utf8(o.stdout).unwrap()
    };
    let root = nodedev::HostRoot::default();
    let mut ours = nodedev::enumerate(&root);
    ours.sort_by(|a, b| a.name().cmp(b.name()));
    let names = virsh(&["nodedev-list"]);
    let theirs: Vec<&str> = names.lines().filter(|l| !l.is_empty()).collect();
    let mine: Vec<&str> = ours.iter().map(|d| d.name()).collect();
    assert_eq!(mine, theirs);
    for d in &mut ours {
        d.refresh(&root);
        assert_eq!(
            format!("{}\n", d.to_xml()),
            virsh(&["nodedev-dumpxml", d.name()]),
            "{}",
            d.name()
        );
    }
}
