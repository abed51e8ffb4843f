//! `nodedev-bench watch`: counts the lifecycle events one client receives, for the storm
//! benchmark (bench/storm). Prints `ready` once subscribed, then one summary line.

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use protocol::remote::{self as r, proc};
use protocol::{REMOTE_PROGRAM, REMOTE_VERSION};
use rpc::client::Client;
use xdr::{Decoder, Xdr};

pub fn run(args: Vec<String>) -> Result<(), String> {
    let mut sock = None;
    let mut expect = 0usize;
    let mut timeout = 300u64;
    let mut it = args.into_iter();
    while let Some(a) = it.next() {
        let mut val = || it.next().ok_or(format!("{a} needs a value"));
        match a.as_str() {
            "--uri-socket" => sock = Some(PathBuf::from(val()?)),
            "--expect" => expect = val()?.parse().map_err(|e| format!("--expect: {e}"))?,
            "--timeout" => timeout = val()?.parse().map_err(|e| format!("--timeout: {e}"))?,
            _ => return Err(format!("watch: unknown argument {a}")),
        }
    }
    let sock = sock.ok_or("watch: --uri-socket is required")?;
    let mut c =
        Client::connect(&sock, REMOTE_PROGRAM, REMOTE_VERSION).map_err(|e| e.to_string())?;
    let _: () = c
        .call(
            proc::CONNECT_OPEN,
            &r::ConnectOpenArgs {
                name: Some("nodedev:///system".into()),
                flags: 0,
            },
        )
        .map_err(|e| e.to_string())?;
    let _: r::IntRet = c
        .call(
            proc::CONNECT_NODE_DEVICE_EVENT_REGISTER_ANY,
            &r::EventRegisterAnyArgs {
                event_id: 0,
                dev: None,
            },
        )
        .map_err(|e| e.to_string())?;
    println!("ready");
    let start = Instant::now();
    let deadline = start + Duration::from_secs(timeout);
    let mut seen: HashMap<(String, i32), u32> = HashMap::new();
    let (mut total, mut created, mut deleted) = (0usize, 0usize, 0usize);
    let mut last = Duration::ZERO;
    while total < expect {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            break;
        }
        c.stream()
            .set_read_timeout(Some(left))
            .map_err(|e| e.to_string())?;
        let Ok(m) = c.read_message() else { break };
        if m.header.proc_ != proc::NODE_DEVICE_EVENT_LIFECYCLE {
            continue;
        }
        let Ok(e) = r::LifecycleEventMsg::decode(&mut Decoder::new(&m.payload)) else {
            continue;
        };
        total += 1;
        match e.event {
            0 => created += 1,
            1 => deleted += 1,
            _ => {}
        }
        *seen.entry((e.dev.name, e.event)).or_default() += 1;
        last = start.elapsed();
    }
    let duplicates: u32 = seen.values().map(|n| n - 1).sum();
    println!(
        "events={total} created={created} deleted={deleted} duplicates={duplicates} last_event_s={:.3}",
        last.as_secs_f64()
    );
    Ok(())
}
