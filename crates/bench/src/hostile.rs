//! Hostile clients: random and mutated-valid frames (garbage, truncated frames, huge length
//! words, valid headers with random procedures and random arguments) interleaved with valid
//! calls whose answers are checked, and XML definitions built to exhaust a parser (deep
//! nesting, over-long names). Used by `nodedev-bench soak`; written so that the hostile
//! integration test can share it.
//!
//! A refusal is the expected answer to every hostile call; what counts as a failure is a
//! well-formed call left unanswered, a wrong answer to a valid call, or a refused connection.

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use protocol::admin::ADMIN_PROGRAM;
use protocol::remote::{self as r, proc};
use protocol::{REMOTE_PROGRAM, REMOTE_VERSION};
use rpc::client::{CallError, Client};
use rpc::header::{frame, Header, MessageType, Status, KEEPALIVE_PROGRAM, MESSAGE_MAX};

/// xorshift64*: deterministic per thread, so a failure names its seed.
pub struct Rng(pub u64);

impl Rng {
    /// splitmix64 of a seed and a stream number: distinct, never zero.
    pub fn seed(seed: u64, stream: u64) -> u64 {
        let mut x = seed.wrapping_add((stream + 1).wrapping_mul(0x9e37_79b9_7f4a_7c15));
        x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        (x ^ (x >> 31)).max(1)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n
    }
    pub fn bytes(&mut self, max: usize) -> Vec<u8> {
        let n = self.below(max as u64 + 1) as usize;
        (0..n).map(|_| self.next_u64() as u8).collect()
    }
    pub fn pick<'a, T>(&mut self, v: &'a [T]) -> &'a T {
        &v[self.below(v.len() as u64) as usize]
    }
}

fn call_header(prog: u32, proc_: i32, serial: u32) -> Header {
    Header {
        prog,
        vers: 1,
        proc_,
        mtype: MessageType::CALL,
        serial,
        status: Status::OK,
    }
}

pub fn call_frame(prog: u32, proc_: i32, serial: u32, args: &[u8]) -> Vec<u8> {
    frame(&call_header(prog, proc_, serial), |e| {
        e.put_fixed_opaque(args)
    })
}

pub fn open_args() -> Vec<u8> {
    xdr::to_bytes(&r::ConnectOpenArgs {
        name: Some("nodedev:///system".into()),
        flags: 0,
    })
}

/// Valid argument payloads of the remote procedures, the material of mutations. They name
/// `computer` and `pci_0000_01_00_0`, which the sample tree and the benchmark's generated
/// tree both have.
pub fn valid_remote_calls() -> Vec<(i32, Vec<u8>)> {
    let name = |n: &str| xdr::to_bytes(&r::NameArgs { name: n.into() });
    vec![
        (proc::CONNECT_OPEN, open_args()),
        (proc::CONNECT_GET_TYPE, Vec::new()),
        (
            proc::CONNECT_SUPPORTS_FEATURE,
            xdr::to_bytes(&r::SupportsFeatureArgs { feature: 10 }),
        ),
        (proc::NODE_DEVICE_LOOKUP_BY_NAME, name("computer")),
        (proc::NODE_DEVICE_GET_PARENT, name("pci_0000_01_00_0")),
        (proc::NODE_DEVICE_LIST_CAPS, {
            xdr::to_bytes(&r::ListCapsArgs {
                name: "computer".into(),
                maxnames: 16,
            })
        }),
        (
            proc::NODE_DEVICE_GET_XML_DESC,
            xdr::to_bytes(&r::NameFlagsArgs {
                name: "computer".into(),
                flags: 0,
            }),
        ),
        (
            proc::CONNECT_LIST_ALL_NODE_DEVICES,
            xdr::to_bytes(&r::ListAllArgs {
                need_results: 1,
                flags: 0,
            }),
        ),
        (
            proc::NODE_LIST_DEVICES,
            xdr::to_bytes(&r::NodeListDevicesArgs {
                cap: Some("pci".into()),
                maxnames: 100,
                flags: 0,
            }),
        ),
        (
            proc::NODE_DEVICE_LOOKUP_SCSI_HOST_BY_WWN,
            xdr::to_bytes(&r::LookupScsiHostByWwnArgs {
                wwnn: "2001001b32a9e000".into(),
                wwpn: "2101001b32a9e000".into(),
                flags: 0,
            }),
        ),
        (
            proc::CONNECT_NODE_DEVICE_EVENT_REGISTER_ANY,
            xdr::to_bytes(&r::EventRegisterAnyArgs {
                event_id: 0,
                dev: None,
            }),
        ),
        (
            proc::CONNECT_SET_IDENTITY,
            xdr::to_bytes(&r::SetIdentityArgs {
                params: vec![r::TypedParam {
                    field: "user_name".into(),
                    value: r::TypedValue::String("root".into()),
                }],
                flags: 0,
            }),
        ),
        (
            proc::NODE_DEVICE_CREATE_XML,
            xdr::to_bytes(&r::XmlFlagsArgs {
                xml_desc: "<device><parent>pci_0000_01_00_0</parent><capability type='mdev'>\
                           <type id='nvidia-222'/></capability></device>"
                    .into(),
                flags: 1,
            }),
        ),
    ]
}

/// Flips, overwrites or inserts a few bytes.
pub fn mutate(rng: &mut Rng, mut v: Vec<u8>) -> Vec<u8> {
    for _ in 0..1 + rng.below(6) {
        match rng.below(4) {
            _ if v.is_empty() => v.push(rng.next_u64() as u8),
            0 => {
                let i = rng.below(v.len() as u64) as usize;
                v[i] ^= 1 << rng.below(8);
            }
            1 => {
                let i = rng.below(v.len() as u64) as usize;
                v[i] = *rng.pick(&[0, 0xff, 0x7f, 0x80, 1]);
            }
            2 => {
                let i = rng.below(v.len() as u64 + 1) as usize;
                v.insert(i, rng.next_u64() as u8);
            }
            _ => {
                let i = rng.below(v.len() as u64) as usize;
                v.remove(i);
            }
        }
    }
    v
}

/// Sends `bytes` (a write the daemon cut short is fine), stops writing, then reads what
/// comes back until the daemon closes or a short timeout. Only a refused connection fails.
pub fn send_and_drain(sock: &Path, bytes: &[u8]) -> Result<(), String> {
    let mut s = UnixStream::connect(sock)
        .map_err(|e| format!("daemon refused a connection on {}: {e}", sock.display()))?;
    let _ = s.set_read_timeout(Some(Duration::from_millis(300)));
    let _ = s.set_write_timeout(Some(Duration::from_secs(5)));
    let _ = s.write_all(bytes);
    let _ = s.shutdown(std::net::Shutdown::Write);
    let mut buf = [0u8; 65536];
    let mut total = 0;
    while let Ok(n) = s.read(&mut buf) {
        total += n;
        if n == 0 || total > 16 << 20 {
            break;
        }
    }
    Ok(())
}

/// What the hostile clients did.
#[derive(Default)]
pub struct Counters {
    pub connections: AtomicU64,
    pub frames: AtomicU64,
    /// Answers to valid calls checked along the way.
    pub checked: AtomicU64,
}

impl Counters {
    fn add(&self, frames: u64) {
        self.connections.fetch_add(1, Ordering::Relaxed);
        self.frames.fetch_add(frames, Ordering::Relaxed);
    }
}

/// One connection of one kind of abuse on a remote-program socket.
pub fn remote_abuse(
    rng: &mut Rng,
    sock: &Path,
    valid: &[(i32, Vec<u8>)],
    n: &Counters,
) -> Result<(), String> {
    let open = call_frame(REMOTE_PROGRAM, proc::CONNECT_OPEN, 1, &open_args());
    match rng.below(6) {
        // Garbage of random length.
        0 => {
            send_and_drain(sock, &rng.bytes(4096))?;
            n.add(1);
        }
        // Valid frames, then one cut short.
        1 => {
            let mut bytes = open.clone();
            let (p, a) = rng.pick(valid);
            let f = call_frame(REMOTE_PROGRAM, *p, 2, a);
            let cut = rng.below(f.len() as u64) as usize;
            bytes.extend_from_slice(&f[..cut]);
            send_and_drain(sock, &bytes)?;
            n.add(2);
        }
        // Length words the daemon must refuse or wait on.
        2 => {
            let any = 28 + rng.below(MESSAGE_MAX as u64 - 28) as u32;
            let len: u32 = *rng.pick(&[
                0,
                3,
                4,
                27,
                (MESSAGE_MAX + 5) as u32,
                u32::MAX,
                (MESSAGE_MAX + 4) as u32,
                any,
            ]);
            let mut f = call_frame(REMOTE_PROGRAM, proc::CONNECT_GET_TYPE, 1, &rng.bytes(64));
            f[..4].copy_from_slice(&len.to_be_bytes());
            send_and_drain(sock, &f)?;
            n.add(1);
        }
        // Mutated valid frames (length word included), after a valid open.
        3 => {
            let mut bytes = open.clone();
            let k = 1 + rng.below(8);
            for i in 0..k {
                let (p, a) = rng.pick(valid);
                bytes.extend(mutate(rng, call_frame(REMOTE_PROGRAM, *p, 2 + i as u32, a)));
            }
            send_and_drain(sock, &bytes)?;
            n.add(1 + k);
        }
        // Valid headers of odd types and programs with random payloads.
        4 => {
            let mut bytes = open.clone();
            let k = 1 + rng.below(8);
            for i in 0..k {
                let h = Header {
                    prog: *rng.pick(&[REMOTE_PROGRAM, KEEPALIVE_PROGRAM, ADMIN_PROGRAM, 7]),
                    vers: *rng.pick(&[1, 0, 2]),
                    proc_: rng.next_u64() as i32 % 500,
                    mtype: MessageType(rng.below(8) as i32),
                    serial: i as u32,
                    status: Status(rng.below(3) as i32),
                };
                let args = rng.bytes(256);
                bytes.extend(frame(&h, |e| e.put_fixed_opaque(&args)));
            }
            send_and_drain(sock, &bytes)?;
            n.add(1 + k);
        }
        // Well-formed calls with random procedures and random or mutated arguments,
        // interleaved with valid calls: every call must be answered, and correctly.
        _ => {
            let mut c = Client::connect(sock, REMOTE_PROGRAM, REMOTE_VERSION)
                .map_err(|e| format!("daemon refused a connection: {e}"))?;
            let _ = c.stream().set_read_timeout(Some(Duration::from_secs(20)));
            c.call_raw(proc::CONNECT_OPEN, &open_args())
                .map_err(|e| format!("CONNECT_OPEN: {e}"))?;
            let k = 4 + rng.below(24);
            for i in 0..k {
                let (p, args) = match rng.below(3) {
                    0 => (rng.below(460) as i32, rng.bytes(512)),
                    1 => (rng.next_u64() as i32, rng.bytes(64)),
                    _ => {
                        let (p, a) = rng.pick(valid);
                        (*p, mutate(rng, a.clone()))
                    }
                };
                // OPEN again forgets the connection and CLOSE ends it, both as libvirt
                // does; they are exercised by the other kinds.
                if p == proc::CONNECT_OPEN || p == proc::CONNECT_CLOSE {
                    continue;
                }
                match c.call_raw(p, &args) {
                    Ok(_) | Err(CallError::Remote(_)) => {}
                    Err(e) => {
                        return Err(format!(
                            "no answer to procedure {p} with arguments {args:02x?}: {e}"
                        ))
                    }
                }
                if i % 4 == 0 {
                    check_valid_answers(&mut c)?;
                    n.checked.fetch_add(2, Ordering::Relaxed);
                }
            }
            n.add(1 + k);
        }
    }
    Ok(())
}

/// Two valid calls on a connection that has seen hostile ones; their answers must be right.
fn check_valid_answers(c: &mut Client) -> Result<(), String> {
    let t: r::StringRet = c
        .call(proc::CONNECT_GET_TYPE, &())
        .map_err(|e| format!("CONNECT_GET_TYPE: {e}"))?;
    if t.value != "nodedev" {
        return Err(format!("CONNECT_GET_TYPE answered {:?}", t.value));
    }
    let d: r::NodeDeviceRet = c
        .call(
            proc::NODE_DEVICE_LOOKUP_BY_NAME,
            &r::NameArgs {
                name: "computer".into(),
            },
        )
        .map_err(|e| format!("NODE_DEVICE_LOOKUP_BY_NAME computer: {e}"))?;
    if d.dev.name != "computer" {
        return Err(format!("lookup of computer answered {:?}", d.dev.name));
    }
    Ok(())
}

/// Admin-socket abuse: garbage, and read-only procedures with random arguments (those
/// that change the daemon — limits, logging, timeout, closing clients — are left out:
/// the admin socket is for the daemon's own user, and random settings would only test
/// themselves).
pub fn admin_abuse(rng: &mut Rng, sock: &Path, n: &Counters) -> Result<(), String> {
    if rng.below(3) == 0 {
        send_and_drain(sock, &rng.bytes(2048))?;
        n.add(1);
        return Ok(());
    }
    let mut c = Client::connect(sock, ADMIN_PROGRAM, 1)
        .map_err(|e| format!("admin socket refused a connection: {e}"))?;
    let _ = c.stream().set_read_timeout(Some(Duration::from_secs(20)));
    let k = 1 + rng.below(12);
    for _ in 0..k {
        let p = *rng.pick(&[1, 3, 4, 5, 6, 8, 9, 10, 12, 14, 15, 18, 20, 0, -1]);
        let args = rng.bytes(96);
        match c.call_raw(p, &args) {
            Ok(_) | Err(CallError::Remote(_)) => {}
            Err(e) => {
                return Err(format!(
                    "no admin answer to procedure {p} with {args:02x?}: {e}"
                ))
            }
        }
    }
    n.add(k);
    Ok(())
}

/// Libxml2's limits without XML_PARSE_HUGE that these bombs exceed: nesting depth 256,
/// names of 50,000 characters.
pub const BOMB_DEPTH: usize = 4000;
pub const BOMB_NAME_LEN: usize = 50_001;

/// Node-device definitions made to exhaust a parser, each with a short label: nesting
/// [`BOMB_DEPTH`] deep (which overflowed the stack of a recursive parser), and an element
/// name, an attribute name and an attribute value of [`BOMB_NAME_LEN`] characters. Every one
/// must be refused.
pub fn xml_bombs() -> Vec<(&'static str, String)> {
    let long = "a".repeat(BOMB_NAME_LEN);
    vec![
        (
            "deep nesting",
            format!(
                "<device><name>x</name>{}{}</device>",
                "<a>".repeat(BOMB_DEPTH),
                "</a>".repeat(BOMB_DEPTH)
            ),
        ),
        (
            "long element name",
            format!("<device><name>x</name><{long}/></device>"),
        ),
        (
            "long attribute name",
            format!("<device {long}='1'><name>x</name></device>"),
        ),
        (
            "long attribute value",
            format!(
                "<device><name>x</name><parent>computer</parent>\
                 <capability type='mdev'><type id='{long}'/></capability></device>"
            ),
        ),
    ]
}

/// Sends `xml` with CREATE_XML or DEFINE_XML on `c`. A refusal is the expected answer;
/// acceptance or no answer fails.
pub fn send_bomb(c: &mut Client, define: bool, label: &str, xml: &str) -> Result<(), String> {
    let (p, via) = if define {
        (proc::NODE_DEVICE_DEFINE_XML, "DEFINE_XML")
    } else {
        (proc::NODE_DEVICE_CREATE_XML, "CREATE_XML")
    };
    let args = xdr::to_bytes(&r::XmlFlagsArgs {
        xml_desc: xml.to_owned(),
        flags: 0,
    });
    match c.call_raw(p, &args) {
        Err(CallError::Remote(_)) => Ok(()),
        Ok(_) => Err(format!(
            "{label} ({} bytes) through {via} was accepted",
            xml.len()
        )),
        Err(e) => Err(format!(
            "{label} ({} bytes) through {via}: no answer: {e}",
            xml.len()
        )),
    }
}
