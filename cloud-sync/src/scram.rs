//! SCRAM-SHA-256 password verifiers (RFC 5802, RFC 7677), computed on this side so a new
//! gateway's password never reaches the server, its logs or `pg_stat_statements` in clear text:
//! `CREATE ROLE ... PASSWORD 'SCRAM-SHA-256$...'` stores the verifier as given, the way psql's
//! `\password` does.
//!
//! Owns: the verifier format PostgreSQL stores in `pg_authid.rolpassword`. Does not own: choosing
//! or delivering passwords (`crate::admin`).

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use hmac::{Hmac, KeyInit, Mac};
use sha2::{Digest, Sha256};

/// PostgreSQL's default iteration count (`scram_iterations`).
pub(crate) const ITERATIONS: u32 = 4096;

type HmacSha256 = Hmac<Sha256>;

/// The verifier `SCRAM-SHA-256$<iterations>:<salt>$<StoredKey>:<ServerKey>` for `password`.
/// The password is used as its UTF-8 bytes; callers accept only printable ASCII, for which
/// SASLprep (what clients apply) changes nothing.
pub(crate) fn verifier(password: &str, salt: &[u8], iterations: u32) -> String {
    let salted = salted_password(password.as_bytes(), salt, iterations);
    let client_key = hmac(&salted, b"Client Key");
    let stored_key = Sha256::digest(client_key);
    let server_key = hmac(&salted, b"Server Key");
    format!(
        "SCRAM-SHA-256${iterations}:{}${}:{}",
        BASE64.encode(salt),
        BASE64.encode(stored_key),
        BASE64.encode(server_key)
    )
}

/// `Hi(password, salt, i)`: PBKDF2-HMAC-SHA-256 with one output block.
fn salted_password(password: &[u8], salt: &[u8], iterations: u32) -> [u8; 32] {
    let mut block = Vec::with_capacity(salt.len() + 4);
    block.extend_from_slice(salt);
    block.extend_from_slice(&1u32.to_be_bytes());
    let mut u = hmac(password, &block);
    let mut out = u;
    for _ in 1..iterations {
        u = hmac(password, &u);
        for (o, x) in out.iter_mut().zip(u) {
            *o ^= x;
        }
    }
    out
}

fn hmac(key: &[u8], data: &[u8]) -> [u8; 32] {
    // HMAC accepts keys of any length; new_from_slice cannot fail for it.
    let mut mac = match HmacSha256::new_from_slice(key) {
        Ok(m) => m,
        Err(_) => unreachable_key_error(),
    };
    mac.update(data);
    mac.finalize().into_bytes().into()
}

#[cold]
fn unreachable_key_error() -> ! {
    // Invariant: HMAC takes keys of every length (RFC 2104); the error type exists only for
    // fixed-key-size MACs.
    panic!("HMAC-SHA-256 rejected a key length")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pbkdf2_matches_rfc7914_vector() {
        // RFC 7914 section 11: PBKDF2-HMAC-SHA256 (P="passwd", S="salt", c=1), first 32 bytes.
        let dk = salted_password(b"passwd", b"salt", 1);
        let hex: String = dk.iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(
            hex,
            "55ac046e56e3089fec1691c22544b605f94185216dde0465e68b9d57c20dacbc"
        );
    }

    #[test]
    fn verifier_has_postgres_shape() {
        let v = verifier("pencil", b"0123456789abcdef", ITERATIONS);
        assert!(v.starts_with("SCRAM-SHA-256$4096:MDEyMzQ1Njc4OWFiY2RlZg==$"));
        let keys = v.rsplit('$').next().unwrap();
        assert_eq!(keys.split(':').count(), 2);
    }
}
