//! Definitions beyond libxml2's limits (nesting deeper than 256, names longer than 50,000
//! bytes) and huge flat ones, sent by raw calls, virsh and libvirt-python to our daemon and
//! to the reference libvirtd 9.0 over the same tree: the same refusal, word for word, and
//! our daemon keeps serving every other client and its event subscription.

mod common;

use std::process::Command;

use common::*;
use protocol::remote::{proc, XmlFlagsArgs};
use rpc::client::{CallError, Client};

/// Each hostile definition: what it is, and the XML.
fn bombs() -> Vec<(&'static str, String)> {
    let nested = |depth: usize| {
        format!(
            "<device><name>x</name>{}{}</device>",
            "<a>".repeat(depth - 1),
            "</a>".repeat(depth - 1)
        )
    };
    let n = |k: usize| "n".repeat(k);
    let attrs: String = (0..20_000).map(|i| format!(" a{i}='{i}'")).collect();
    vec![
        // The report: this used to overflow the stack and abort the daemon.
        ("4,000 levels", nested(4_001)),
        ("the deepest libxml2 takes", nested(257)),
        ("one level deeper", nested(258)),
        (
            "a million unclosed levels on many lines",
            format!("<device>\n{}", "<a>\n".repeat(1_000_000)),
        ),
        (
            "element name of 50,001",
            format!("<device><{}/></device>", n(50_001)),
        ),
        (
            "attribute name of 50,001",
            format!("<device a{}='1'/>", n(50_000)),
        ),
        (
            "entity name of 50,001",
            format!("<device><a>&{};</a></device>", n(50_001)),
        ),
        ("20,000 attributes", format!("<device{attrs}/>")),
        (
            "a duplicate after 20,000 attributes",
            format!("<device{attrs} a19999='x'/>"),
        ),
        (
            "800,000 empty elements",
            format!("<device>{}</device>", "<a/>\n".repeat(800_000)),
        ),
        (
            "a 3 MB attribute value",
            format!("<device a='{}'/>", "v".repeat(3_000_000)),
        ),
    ]
}

/// One call's answer, every field of an error included.
fn answer(c: &mut Client, procedure: i32, xml: &str) -> String {
    let args = XmlFlagsArgs {
        xml_desc: xml.to_owned(),
        flags: 0,
    };
    match c.call_raw(procedure, &xdr::to_bytes(&args)) {
        Ok(_) => "ok".into(),
        Err(CallError::Remote(e)) => format!(
            "code={} domain={} message={:?} str1={:?} str2={:?} int1={} int2={}",
            e.code, e.domain, e.message, e.str1, e.str2, e.int1, e.int2
        ),
        Err(e) => format!("call failed: {e:?}"),
    }
}

/// What a real client prints for a definition in a file: virsh's error lines, then
/// libvirt-python's (code, domain, message) for CreateXML and DefineXML.
fn real_clients(uri: &str, file: &std::path::Path) -> String {
    let virsh = virsh(uri, &["nodedev-create", file.to_str().unwrap()]);
    let py = python(
        uri,
        &format!(
            "import libvirt, os\n\
             libvirt.registerErrorHandler(lambda *a: None, None)\n\
             c = libvirt.open(os.environ['URI'])\n\
             xml = open({:?}).read()\n\
             for f in (c.nodeDeviceCreateXML, c.nodeDeviceDefineXML):\n\
             \x20   try:\n\
             \x20       f(xml, 0); print('ok')\n\
             \x20   except libvirt.libvirtError as e:\n\
             \x20       print(e.get_error_code(), e.get_error_domain(), repr(e.get_error_message()))\n",
            file.display()
        ),
    );
    assert!(
        py.status.success(),
        "{}",
        String::from_utf8_lossy(&py.stderr)
    );
    format!(
        "virsh exit {:?}: {}\npython: {}",
        virsh.status.code(),
        String::from_utf8_lossy(&virsh.stderr),
        String::from_utf8_lossy(&py.stdout)
    )
}

#[test]
fn definitions_beyond_libxml2_limits_are_refused_as_libvirt_refuses_them_and_the_daemon_keeps_serving(
) {
    if !virsh_available() || !python_libvirt_available() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let tree = sample_tree(tmp.path());
    let Some(reference) = Reference::start(Some(tree.root())) else {
        return;
    };
    let ours = Daemon::start(Some(tree.root()), "");
    let pid = ours.pid();

    // Another client, subscribed to events, must see nothing of what follows.
    let mut bystander = ours.subscriber();
    let before = device_names(&mut bystander);

    let mut a = ours.open_client();
    let mut b = reference.open_client();
    for (label, xml) in bombs() {
        for procedure in [proc::NODE_DEVICE_CREATE_XML, proc::NODE_DEVICE_DEFINE_XML] {
            let want = answer(&mut b, procedure, &xml);
            let got = answer(&mut a, procedure, &xml);
            assert_eq!(got, want, "{label}, procedure {procedure}");
            assert_ne!(got, "ok", "{label}");
        }
    }

    // Beyond what the reference answers in reasonable time (its duplicate-attribute check
    // is quadratic): ours still answers at once.
    let attrs: String = (0..200_000).map(|i| format!(" a{i}='{i}'")).collect();
    assert_eq!(
        answer(
            &mut a,
            proc::NODE_DEVICE_CREATE_XML,
            &format!("<device{attrs}/>")
        ),
        answer(&mut a, proc::NODE_DEVICE_CREATE_XML, "<device/>")
    );

    // The report's exact input, through virsh and libvirt-python.
    let file = tmp.path().join("bomb.xml");
    std::fs::write(&file, bombs()[0].1.as_bytes()).unwrap();
    let want = real_clients(&reference.uri, &file);
    let got = real_clients(&ours.uri(), &file);
    assert_eq!(got, want);
    assert!(got.contains("Excessive depth in document: 256"), "{got}");

    // Same process, same answers, the subscription still there.
    assert_eq!(ours.pid(), pid);
    assert!(Command::new("kill")
        .args(["-0", &pid.to_string()])
        .status()
        .unwrap()
        .success());
    assert_eq!(device_names(&mut bystander), before);
    assert_eq!(device_names(&mut a), before);
    let _: () = bystander
        .call(
            proc::CONNECT_NODE_DEVICE_EVENT_DEREGISTER_ANY,
            &protocol::remote::EventDeregisterAnyArgs { callback_id: 0 },
        )
        .unwrap();
}
