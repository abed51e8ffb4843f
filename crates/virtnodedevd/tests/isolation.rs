//! A panic inside one call costs that call only: with the test-build hook
//! (`VIRTNODEDEVD_TEST_PANIC_DEVICE`), every XML query of one device panics while holding
//! every lock of the driver. The caller gets libvirt's "no error set" failure; its
//! connection, the other clients, their event subscriptions and hotplug go on, and the
//! locks are not left poisoned into a crash loop.

mod common;

use std::path::Path;

use common::*;
use fakesys::NetSpec;
use protocol::remote::{self as r, proc};
use rpc::client::{CallError, Client};
use xdr::{Decoder, Xdr};

fn xml_of(c: &mut Client, name: &str) -> Result<String, String> {
    c.call::<_, r::StringRet>(
        proc::NODE_DEVICE_GET_XML_DESC,
        &r::NameFlagsArgs {
            name: name.into(),
            flags: 0,
        },
    )
    .map(|x| x.value)
    .map_err(|e| match e {
        CallError::Remote(e) => format!("{} {} {}", e.code, e.domain, e.message),
        e => format!("{e:?}"),
    })
}

/// The next lifecycle event's (event, device), skipping keepalives.
fn next_lifecycle(c: &mut Client) -> (i32, String) {
    loop {
        let m = c.read_message().expect("an event");
        if m.header.proc_ == proc::NODE_DEVICE_EVENT_LIFECYCLE {
            let e = r::LifecycleEventMsg::decode(&mut Decoder::new(&m.payload)).unwrap();
            return (e.event, e.dev.name);
        }
    }
}

#[test]
fn a_panicking_call_fails_alone_and_everything_else_goes_on() {
    let tmp = tempfile::tempdir().unwrap();
    let tree = sample_tree(tmp.path());
    let d = Daemon::start_env(
        Some(tree.root()),
        "",
        true,
        &[("VIRTNODEDEVD_TEST_PANIC_DEVICE", Path::new("computer"))],
    );
    let pid = d.pid();

    let mut bystander = d.subscriber();
    let before = device_names(&mut bystander);
    let other = before.iter().find(|n| *n != "computer").unwrap().clone();
    let other_xml = xml_of(&mut bystander, &other).unwrap();

    // Again and again on one connection: each time only that call fails, with what
    // libvirt's dispatcher says when a handler fails without an error.
    let mut c = d.open_client();
    for _ in 0..20 {
        assert_eq!(
            xml_of(&mut c, "computer"),
            Err("1 7 Library function returned error but did not set virError".into())
        );
        assert_eq!(xml_of(&mut c, &other).as_ref(), Ok(&other_xml));
    }
    assert_eq!(device_names(&mut c), before);

    // Real clients see the same.
    if virsh_available() {
        let o = virsh(&d.uri(), &["nodedev-dumpxml", "computer"]);
        assert!(!o.status.success());
        assert!(
            String::from_utf8_lossy(&o.stderr)
                .contains("Library function returned error but did not set virError"),
            "{}",
            String::from_utf8_lossy(&o.stderr)
        );
        assert_eq!(virsh_ok(&d.uri(), &["nodedev-dumpxml", &other]), other_xml);
    }

    // The bystander's connection and subscription, and hotplug (which takes the locks the
    // panics held), still work.
    assert_eq!(device_names(&mut bystander), before);
    let net = tree
        .net(None, &NetSpec::new("vndiso0", 7, "02:00:00:00:00:07"))
        .unwrap();
    d.inject("add", &net, "net");
    assert_eq!(
        next_lifecycle(&mut bystander),
        (0, "net_vndiso0_02_00_00_00_00_07".to_owned())
    );
    assert_eq!(d.pid(), pid);
    assert!(d.log().contains("the handler panicked"), "{}", d.log());
}
