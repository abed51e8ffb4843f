//! Print every device's XML for a host root (default "/"), sorted by name,
//! each followed by an empty line like `virsh nodedev-dumpxml`.
//! Usage: cargo run -p nodedev --example dump [ROOT] [--tree]

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let root = args
        .iter()
        .find(|a| !a.starts_with("--"))
        .map(nodedev::HostRoot::new)
        .unwrap_or_default();
    let mut devs = nodedev::enumerate(&root);
    devs.sort_by(|a, b| a.name().cmp(b.name()));
    if args.iter().any(|a| a == "--names") {
        for d in &devs {
            println!("{}", d.name());
        }
        return;
    }
    for d in &mut devs {
        d.refresh(&root);
        println!("{}", d.to_xml());
    }
}
