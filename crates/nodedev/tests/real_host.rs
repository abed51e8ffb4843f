//! Compare our view of the real host with the reference libvirtd already
//! running at /tmp/ref (see reference.md). Skips when it is not running.

use std::process::Command;

const SOCK: &str = "/tmp/ref/libvirt-sock";

#[test]
fn real_host_matches_reference_at_tmp_ref() {
    if !std::path::Path::new(SOCK).exists() || !std::path::Path::new("/usr/bin/virsh").exists() {
        eprintln!("NOTE: real-host comparison skipped: no reference at {SOCK}");
        return;
    }
    let uri = format!("nodedev+unix:///system?socket={SOCK}");
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
