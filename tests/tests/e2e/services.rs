//! The servers of the later end-to-end tests answer their protocols: PostgreSQL its SSLRequest,
//! Mosquitto an MQTT 3.1.1 CONNECT with CONNACK.

use std::io::{Read as _, Write as _};

use markoff_tests::services::{
    connect, mosquitto_addr, postgres_addr, require_mosquitto, require_postgres,
};

#[test]
fn postgres_answers_the_ssl_request() {
    if !require_postgres() {
        return;
    }
    let addr = postgres_addr();
    let mut conn = connect(&addr).unwrap_or_else(|e| panic!("connect to {addr}: {e}"));
    // SSLRequest: length 8, code 80877103. A PostgreSQL server answers with one byte, S or N.
    let mut request = 8u32.to_be_bytes().to_vec();
    request.extend_from_slice(&80_877_103u32.to_be_bytes());
    conn.write_all(&request).expect("send SSLRequest");
    let mut answer = [0u8; 1];
    conn.read_exact(&mut answer).expect("PostgreSQL answers");
    assert!(
        matches!(answer[0], b'S' | b'N'),
        "{addr} answered {:?}, not PostgreSQL's S or N",
        answer[0]
    );
}

#[test]
fn mosquitto_accepts_an_mqtt_connect() {
    if !require_mosquitto() {
        return;
    }
    let addr = mosquitto_addr();
    let mut conn = connect(&addr).unwrap_or_else(|e| panic!("connect to {addr}: {e}"));
    // CONNECT, MQTT 3.1.1, clean session, keep-alive 60 s, empty client id (the broker assigns
    // one): 2 bytes of fixed header + 12 of variable header and payload.
    let connect_packet: [u8; 14] = [
        0x10, 12, // CONNECT, remaining length
        0x00, 0x04, b'M', b'Q', b'T', b'T', // protocol name
        0x04, // protocol level 3.1.1
        0x02, // flags: clean session
        0x00, 60, // keep-alive
        0x00, 0x00, // client id: empty
    ];
    conn.write_all(&connect_packet).expect("send CONNECT");
    let mut connack = [0u8; 4];
    conn.read_exact(&mut connack).expect("the broker answers");
    assert_eq!(
        connack,
        [0x20, 0x02, 0x00, 0x00],
        "{addr}: expected CONNACK accepted (20 02 00 00)"
    );
    // DISCONNECT, politely.
    conn.write_all(&[0xE0, 0x00]).expect("send DISCONNECT");
}
