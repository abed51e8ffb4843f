//! The XDR decoder driven by the input: the first bytes pick a string limit and a sequence
//! of reads, the rest is the data read. No read may panic, read past the data or let
//! `remaining()` grow; generic containers must round-trip.
#![no_main]

use libfuzzer_sys::fuzz_target;
use virtnodedevd_fuzz::roundtrip;
use xdr::Decoder;

fuzz_target!(|data: &[u8]| {
    if data.len() < 2 {
        return;
    }
    let string_max = match data[0] % 4 {
        0 => 0,
        1 => 16,
        2 => 4_194_304,
        _ => u32::MAX,
    };
    let nops = (data[1] % 32) as usize;
    let (ops, rest) = data[2..].split_at(nops.min(data.len() - 2));
    let mut d = Decoder::new(rest).with_string_max(string_max);
    for &op in ops {
        let before = d.remaining();
        let ok = match op % 10 {
            0 => d.get_u32().is_ok(),
            1 => d.get_i32().is_ok(),
            2 => d.get_u64().is_ok(),
            3 => d.get_i64().is_ok(),
            4 => d.get_fixed_opaque((op / 10) as usize).is_ok(),
            5 => d
                .get_opaque()
                .map(|b| assert!(b.len() as u64 <= string_max as u64))
                .is_ok(),
            6 => d.get_string().is_ok(),
            7 => d.get_present().is_ok(),
            8 => d.get_count((op / 10) as u32).is_ok(),
            _ => d.get_fixed_opaque(usize::MAX - (op as usize)).is_ok(),
        };
        assert!(d.remaining() <= before);
        if !ok {
            break;
        }
    }

    roundtrip::<Vec<Option<String>>>(rest, string_max);
    roundtrip::<Vec<Vec<u32>>>(rest, string_max);
    roundtrip::<Option<Option<[u8; 16]>>>(rest, string_max);
    roundtrip::<Vec<u64>>(rest, string_max);
    roundtrip::<Vec<f64>>(rest, string_max);
});
