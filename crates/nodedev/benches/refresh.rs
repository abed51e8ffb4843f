//! What one GetXMLDesc re-reads (`Device::refresh`: driver binding, link state, SR-IOV,
//! IOMMU group, mdev types, ...) per device of this host and of fakesys's rich tree, and
//! the whole per-call path (clone, re-read, compare). Run with `cargo bench -p nodedev`.

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use nodedev::{Device, HostRoot};

fn bench_devices(c: &mut Criterion, group: &str, root: &HostRoot, devs: &[Device]) {
    let mut g = c.benchmark_group(group);
    // As the daemon re-reads: through directories it holds.
    nodedev::set_held_dirs_max(devs.len() + 1);
    for d in devs {
        g.bench_with_input(BenchmarkId::new("refresh", d.name()), d, |b, d| {
            b.iter(|| black_box(d.reread(root) == *d))
        });
    }
    g.finish();
}

fn refresh(c: &mut Criterion) {
    let host = HostRoot::default();
    let devs = nodedev::enumerate(&host);
    bench_devices(c, "refresh_host", &host, &devs);
    let dir = tempfile::tempdir().unwrap();
    fakesys::trees::rich_full(dir.path()).unwrap();
    let fake = HostRoot::new(dir.path());
    let devs = nodedev::enumerate(&fake);
    bench_devices(c, "refresh_rich", &fake, &devs);
}

criterion_group!(benches, refresh);
criterion_main!(benches);
