use tokio::io::{duplex, AsyncReadExt, AsyncWriteExt, DuplexStream};

use super::*;
use crate::header::frame;

fn call(serial: u32, payload: &[u8]) -> Vec<u8> {
    let header = Header {
        prog: 0x2000_8086,
        vers: 1,
        proc_: 1,
        mtype: MessageType::CALL,
        serial,
        status: Status::OK,
    };
    frame(&header, |e| e.put_fixed_opaque(payload))
}

/// Lets `read_frame` take whatever the socket holds now, without waiting for more: the
/// way the connection loop drops it in a `select!` when something else wakes first.
async fn read_now(
    conn: &mut Connection<DuplexStream>,
) -> Option<Result<Option<Frame>, FrameError>> {
    tokio::select! {
        biased;
        r = conn.read_frame() => Some(r),
        _ = std::future::ready(()) => None,
    }
}

#[tokio::test]
async fn a_frame_arriving_in_pieces_is_yielded_whole() {
    let (mut client, server) = duplex(1 << 16);
    let mut conn = Connection::new(server);
    let msg = call(7, b"abcdefgh");
    let cuts = [0, 2, 10, msg.len() - 1];
    for piece in cuts.windows(2) {
        client.write_all(&msg[piece[0]..piece[1]]).await.unwrap();
        assert!(read_now(&mut conn).await.is_none());
        assert_eq!(conn.input.len(), piece[1]);
    }
    client.write_all(&msg[msg.len() - 1..]).await.unwrap();
    let frame = conn.read_frame().await.unwrap().unwrap();
    assert_eq!(frame.header.serial, 7);
    assert_eq!(frame.payload(), b"abcdefgh");
    assert_eq!(frame.call_args(), Some(&b"abcdefgh"[..]));
}

#[tokio::test]
async fn several_frames_from_one_read_need_no_further_read() {
    let (mut client, server) = duplex(1 << 16);
    let mut conn = Connection::new(server);
    let all: Vec<u8> = (1..=3)
        .flat_map(|serial| call(serial, &[serial as u8; 8]))
        .collect();
    client.write_all(&all).await.unwrap();
    drop(client);
    let first = conn.read_frame().await.unwrap().unwrap();
    assert_eq!(first.header.serial, 1);
    for serial in 2..=3 {
        let frame = conn.buffered_frame().unwrap().unwrap();
        assert_eq!(frame.header.serial, serial);
        assert_eq!(frame.payload(), &[serial as u8; 8]);
    }
    assert!(conn.buffered_frame().unwrap().is_none());
    // The client closed its end between two frames.
    assert!(conn.read_frame().await.unwrap().is_none());
}

#[tokio::test]
async fn a_client_closing_mid_frame_is_a_truncated_frame() {
    let (mut client, server) = duplex(1 << 16);
    let mut conn = Connection::new(server);
    let msg = call(1, b"abcd");
    client.write_all(&msg[..msg.len() - 1]).await.unwrap();
    drop(client);
    assert!(matches!(
        conn.read_frame().await,
        Err(FrameError::Truncated)
    ));
}

#[tokio::test]
async fn length_words_libvirt_refuses_close_without_reserving() {
    let too_long = (LEN_LEN + MESSAGE_MAX + 1) as u32;
    let too_short = (LEN_LEN + HEADER_LEN - 1) as u32;
    for len in [too_long, too_short, 0] {
        let (mut client, server) = duplex(1 << 16);
        let mut conn = Connection::new(server);
        // A valid frame first: it is still yielded, the bad length word only after it.
        let mut bytes = call(1, b"");
        bytes.extend_from_slice(&len.to_be_bytes());
        bytes.extend_from_slice(&[0; 64]);
        client.write_all(&bytes).await.unwrap();
        assert!(conn.read_frame().await.unwrap().is_some());
        match conn.read_frame().await {
            Err(FrameError::Length(l)) => assert_eq!(l, len as usize),
            other => panic!("length {len}: {other:?}"),
        }
        assert!(conn.input.capacity() <= INITIAL_CAPACITY);
    }
}

#[tokio::test]
async fn a_large_frame_grows_the_buffer_as_its_bytes_arrive() {
    const PAYLOAD: usize = 8 << 20;
    let payload: Vec<u8> = (0..PAYLOAD).map(|i| (i % 251) as u8).collect();
    let msg = call(9, &payload);
    let (mut client, server) = duplex(1 << 16);
    let mut conn = Connection::new(server);

    // The length word and header with a little payload: nowhere near the whole length.
    let mut sent = LEN_LEN + HEADER_LEN + 1000;
    client.write_all(&msg[..sent]).await.unwrap();
    assert!(read_now(&mut conn).await.is_none());
    assert!(conn.input.capacity() <= 2 * (sent + RESERVE_STEP));

    while sent < msg.len() {
        let end = (sent + (32 << 10)).min(msg.len());
        client.write_all(&msg[sent..end]).await.unwrap();
        sent = end;
        if let Some(r) = read_now(&mut conn).await {
            let frame = r.unwrap().unwrap();
            assert_eq!(sent, msg.len());
            assert_eq!(frame.payload(), &payload[..]);
            // The message left with its buffer; the connection starts small again.
            assert!(conn.input.capacity() <= INITIAL_CAPACITY);
            return;
        }
        let buffered = conn.input.len();
        assert_eq!(buffered, sent);
        assert!(
            conn.input.capacity() <= 4 * buffered.max(RESERVE_STEP),
            "{} bytes reserved for {buffered} received",
            conn.input.capacity()
        );
    }
    panic!("the whole frame was sent but not yielded");
}

#[tokio::test]
async fn queued_messages_go_out_in_order_on_flush() {
    let (mut client, server) = duplex(1 << 16);
    let mut conn = Connection::new(server);
    let event = call(3, b"event");
    conn.queue(&event);
    let ping = Header::message(1, 1, 1, 0);
    conn.queue_message(&ping);
    let asked = Header::decode(&mut Decoder::new(&call(5, b"")[LEN_LEN..])).unwrap();
    assert!(conn.queue_reply(&asked, Ok(b"ok!!".to_vec())));
    assert!(conn.has_output());
    conn.flush().await.unwrap();
    assert!(!conn.has_output());
    conn.close();

    let mut got = Vec::new();
    client.read_to_end(&mut got).await.unwrap();
    let mut expected = event;
    expected.extend(frame(&ping, |_| {}));
    expected.extend(frame(&asked.reply(Status::OK), |e| {
        e.put_fixed_opaque(b"ok!!")
    }));
    assert_eq!(got, expected);
}

#[test]
fn a_reply_too_large_to_send_becomes_libvirts_error() {
    let (_client, server) = duplex(64);
    let mut conn = Connection::new(server);
    let asked = Header::decode(&mut Decoder::new(&call(5, b"")[LEN_LEN..])).unwrap();
    assert!(conn.queue_reply(&asked, Ok(vec![0; MESSAGE_MAX])));
    let reply = Header::decode(&mut Decoder::new(&conn.output[LEN_LEN..])).unwrap();
    assert_eq!(reply, asked.reply(Status::ERROR));
    let err = crate::client::decode_error(&conn.output[LEN_LEN + HEADER_LEN..]).unwrap();
    assert_eq!(err.message, "Unable to encode message payload");
}

#[tokio::test]
async fn a_hang_up_is_seen_while_a_call_runs_and_bytes_before_it_are_kept() {
    let (mut client, server) = duplex(1 << 16);
    let mut conn = Connection::new(server);
    let msg = call(9, b"abcd");
    client.write_all(&msg[..5]).await.unwrap();
    drop(client);
    conn.hung_up().await;
    assert_eq!(conn.input, &msg[..5]);
}

#[tokio::test]
async fn a_whole_frame_buffered_stops_the_watch_for_a_hang_up() {
    let (mut client, server) = duplex(1 << 16);
    let mut conn = Connection::new(server);
    client.write_all(&call(1, b"x")).await.unwrap();
    drop(client);
    let watched = tokio::select! {
        biased;
        _ = conn.hung_up() => true,
        _ = tokio::task::yield_now() => false,
    };
    assert!(!watched);
    assert_eq!(conn.read_frame().await.unwrap().unwrap().header.serial, 1);
}
