//! The LIST_ALL_NODE_DEVICES reply: encoding the names of every device and framing the
//! reply, for a host's worth of devices and for the benchmark's 3k and 10k trees. Run
//! with `cargo bench -p protocol`.

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use protocol::remote::{ListAllRet, NodeDevice};
use rpc::header::{frame, Header, MessageType, Status};

/// Names shaped like a big SR-IOV host's: PCI functions and their interfaces.
fn names(n: usize) -> Vec<String> {
    (0..n)
        .map(|i| match i % 2 {
            0 => format!("pci_0000_{:02x}_{:02x}_{}", i / 2000, (i / 8) % 32, i % 8),
            _ => format!(
                "net_vf{}v{}_52_54_00_{:02x}_{:02x}_{:02x}",
                i / 500,
                i % 500,
                i >> 16 & 0xff,
                i >> 8 & 0xff,
                i & 0xff
            ),
        })
        .collect()
}

fn list_reply(c: &mut Criterion) {
    let mut g = c.benchmark_group("list_reply");
    for n in [12usize, 3_009, 10_033] {
        let ret = ListAllRet {
            devices: names(n)
                .into_iter()
                .map(|name| NodeDevice { name })
                .collect(),
            ret: n as u32,
        };
        let h = Header {
            prog: protocol::REMOTE_PROGRAM,
            vers: protocol::REMOTE_VERSION,
            proc_: protocol::remote::proc::CONNECT_LIST_ALL_NODE_DEVICES,
            mtype: MessageType::REPLY,
            serial: 1,
            status: Status::OK,
        };
        g.throughput(Throughput::Elements(n as u64));
        g.bench_with_input(BenchmarkId::new("encode", n), &ret, |b, ret| {
            b.iter(|| xdr::to_bytes(black_box(ret)))
        });
        g.bench_with_input(BenchmarkId::new("encode_and_frame", n), &ret, |b, ret| {
            b.iter(|| frame(&h, |e| xdr::Xdr::encode(black_box(ret), e)))
        });
    }
    g.finish();
}

criterion_group!(benches, list_reply);
criterion_main!(benches);
