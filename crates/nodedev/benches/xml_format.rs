//! XML formatting of typical devices (`Device::to_xml`, libvirt's
//! virNodeDeviceDefFormat): the machine, a PCI Express function, a network interface,
//! a disk and a USB device, discovered from fakesys's rich tree. Run with
//! `cargo bench -p nodedev`.

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use nodedev::{CapType, Device, HostRoot};

/// The device with the longest XML among those whose own capability is `cap`.
fn pick(devs: &[Device], cap: CapType) -> &Device {
    devs.iter()
        .filter(|d| d.cap_data().first().is_some_and(|c| c.cap_type() == cap))
        .max_by_key(|d| d.to_xml().len())
        .unwrap_or_else(|| panic!("no {} device in the rich tree", cap.name()))
}

fn xml_format(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    fakesys::trees::rich_full(dir.path()).unwrap();
    let devs = nodedev::enumerate(&HostRoot::new(dir.path()));
    let mut g = c.benchmark_group("xml_format");
    for cap in [
        CapType::System,
        CapType::Pci,
        CapType::Net,
        CapType::Storage,
        CapType::UsbDev,
    ] {
        let d = pick(&devs, cap);
        g.bench_with_input(BenchmarkId::new("to_xml", cap.name()), d, |b, d| {
            b.iter(|| black_box(d).to_xml())
        });
    }
    g.bench_function("to_xml/all_rich_full", |b| {
        b.iter(|| devs.iter().map(|d| d.to_xml().len()).sum::<usize>())
    });
    g.finish();
}

criterion_group!(benches, xml_format);
criterion_main!(benches);
