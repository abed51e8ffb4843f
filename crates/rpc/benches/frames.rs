//! Frame decode: splitting a client's byte stream into frames and decoding their
//! headers, as the connection loop does for every call. Run with `cargo bench -p rpc`.

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use rpc::connection::{next_frame, Step};
use rpc::header::{frame, Header, MessageType, Status};
use xdr::Decoder;

/// A GET_XML_DESC call (remote program, procedure 114) for `name`, flags 0.
fn xml_desc_call(serial: u32, name: &str) -> Vec<u8> {
    let h = Header {
        prog: 0x2000_8086,
        vers: 1,
        proc_: 114,
        mtype: MessageType::CALL,
        serial,
        status: Status::OK,
    };
    frame(&h, |e| {
        e.put_str(name);
        e.put_u32(0);
    })
}

/// Every frame in `buf`: its length and decoded header.
fn split(buf: &[u8]) -> usize {
    let (mut at, mut n) = (0, 0);
    while let Step::Frame(len) = next_frame(&buf[at..]) {
        let h = Header::decode(&mut Decoder::new(&buf[at + 4..at + len])).unwrap();
        black_box(h);
        at += len;
        n += 1;
    }
    n
}

fn frames(c: &mut Criterion) {
    let one = xml_desc_call(7, "net_veth1234_52_54_00_00_12_34");
    let mut g = c.benchmark_group("frame_decode");
    g.throughput(Throughput::Elements(1));
    g.bench_function("one_call", |b| b.iter(|| split(black_box(&one))));
    // What one read can bring in from a client that pipelines its calls.
    let batch: Vec<u8> = (0..64)
        .flat_map(|i| xml_desc_call(i, &format!("pci_0000_{:02x}_00_{}", i / 8, i % 8)))
        .collect();
    g.throughput(Throughput::Elements(64));
    g.bench_function("64_pipelined_calls", |b| {
        b.iter(|| split(black_box(&batch)))
    });
    g.finish();
}

criterion_group!(benches, frames);
criterion_main!(benches);
