//! A client's byte stream as the server's connection loop reads it: frames split by
//! `rpc::server::next_frame`, headers decoded, `CALL_WITH_FDS` counts skipped, and each
//! call's arguments decoded by the program it names (remote or admin).
#![no_main]

use libfuzzer_sys::fuzz_target;
use rpc::header::{HEADER_LEN, LEN_LEN, MESSAGE_MAX};
use rpc::server::{next_frame, Step};
use rpc::{Header, MessageType};
use xdr::{Decoder, Encoder};

fuzz_target!(|data: &[u8]| {
    let mut buf = data;
    loop {
        match next_frame(buf) {
            Step::NeedMore => {
                if buf.len() >= LEN_LEN {
                    let len = u32::from_be_bytes([buf[0], buf[1], buf[2], buf[3]]) as usize;
                    assert!(len > buf.len());
                }
                break;
            }
            Step::Close => break,
            Step::Frame(len) => {
                assert!(len >= LEN_LEN + HEADER_LEN && len <= buf.len());
                assert!(len - LEN_LEN <= MESSAGE_MAX);
                let msg = &buf[LEN_LEN..len];
                buf = &buf[len..];
                let header =
                    Header::decode(&mut Decoder::new(msg)).expect("a frame always holds a header");
                let mut e = Encoder::new();
                header.encode(&mut e);
                assert_eq!(e.into_inner(), &msg[..HEADER_LEN]);
                let mut payload = &msg[HEADER_LEN..];
                match header.mtype {
                    MessageType::CALL => {}
                    MessageType::CALL_WITH_FDS if payload.len() >= 4 => payload = &payload[4..],
                    _ => {
                        let _ = rpc::client::decode_error(payload);
                        continue;
                    }
                }
                virtnodedevd_fuzz::program_call(header.prog, header.proc_, payload);
            }
        }
    }
});
