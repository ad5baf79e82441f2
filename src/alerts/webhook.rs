//! Webhooks: each fleet's alerts POSTed as JSON to its URL, signed, and
//! retried with back-off while the receiver fails or is unreachable.
//!
//! Every attempt carries the time it was sent and a signature over that
//! time and the body (issue 20, finding 9: a signature over the body
//! alone could be replayed for ever):
//!
//! ```text
//! X-Fleetcare-Timestamp: 1772323200
//! X-Fleetcare-Signature: sha256=<hex of HMAC-SHA256(secret, "1772323200." + body)>
//! ```
//!
//! A receiver recomputes the HMAC over the timestamp header's value, a
//! `.` and the raw body, compares it with the signature in constant time,
//! and refuses a timestamp more than [`TOLERANCE`] away from its own
//! clock (docs/webhooks.md; docs/decisions.md).
//!
//! Redirects are never followed (the client is built with
//! `redirect::Policy::none()`): a 3xx answer is a failed delivery, logged
//! with its `Location` and not retried, because it means the configured
//! URL is wrong, and following it would send the signed alert to a host
//! nobody configured.

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

use crate::runtime::Backoff;

/// The header that carries the signature.
pub const SIGNATURE_HEADER: &str = "x-fleetcare-signature";
/// The header that carries the time of sending, in seconds since the Unix
/// epoch (UTC), as decimal digits.
pub const TIMESTAMP_HEADER: &str = "x-fleetcare-timestamp";
/// How far a receiver should accept a timestamp from its own clock, either
/// way: older deliveries are refused as replays.
pub const TOLERANCE: std::time::Duration = std::time::Duration::from_secs(300);

/// `sha256=<hex of HMAC-SHA256(secret, "{timestamp}.{body}")>`.
pub fn signature(secret: &[u8], timestamp: i64, body: &[u8]) -> String {
    hmac_hex(secret, &[timestamp.to_string().as_bytes(), b".", body])
}

/// `sha256=` and the hex HMAC-SHA256 of `parts` one after the other.
fn hmac_hex(secret: &[u8], parts: &[&[u8]]) -> String {
    // HMAC takes keys of any length; the error is unreachable for it.
    let mut mac = match Hmac::<Sha256>::new_from_slice(secret) {
        Ok(m) => m,
        Err(_) => return String::new(),
    };
    for part in parts {
        mac.update(part);
    }
    format!(
        "sha256={}",
        crate::runtime::secret::hex(&mac.finalize().into_bytes())
    )
}

/// One fleet's webhook.
#[derive(Debug, Clone)]
pub struct WebhookTarget {
    pub url: String,
    pub secret: Vec<u8>,
}

/// How hard to try: `attempts` in all, waiting as `backoff` says between
/// them.
#[derive(Debug, Clone, Copy)]
pub struct Retry {
    pub attempts: u32,
    pub backoff: Backoff,
}

/// Why a delivery gave up.
#[derive(Debug, thiserror::Error)]
pub enum WebhookError {
    #[error("{url} refused the alert with HTTP {status}; not retried")]
    Refused { url: String, status: u16 },
    #[error(
        "{url} answered HTTP {status} redirecting to {location}; redirects are not followed: set the webhook's url to the address that takes the POST"
    )]
    Redirected {
        url: String,
        status: u16,
        /// The `Location` header, or `(none)`.
        location: String,
    },
    #[error("{url} failed {attempts} times, the last: {last}")]
    GaveUp {
        url: String,
        attempts: u32,
        last: String,
    },
}

/// POSTs `body` to `target`, signed at each attempt with the time it is
/// sent, retrying network errors, 5xx and 429. A redirect (3xx) and other
/// 4xx end the delivery at once: the receiver's configuration is wrong.
/// `client` must not follow redirects ([`crate::runtime::tls::https_client`]).
pub async fn deliver(
    client: &reqwest::Client,
    target: &WebhookTarget,
    body: &[u8],
    retry: Retry,
) -> Result<(), WebhookError> {
    let mut last = String::new();
    for attempt in 0..retry.attempts.max(1) {
        if attempt > 0 {
            tokio::time::sleep(retry.backoff.delay(attempt)).await;
        }
        let timestamp = chrono::Utc::now().timestamp();
        let sent = client
            .post(&target.url)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .header(TIMESTAMP_HEADER, timestamp)
            .header(SIGNATURE_HEADER, signature(&target.secret, timestamp, body))
            .body(body.to_vec())
            .send()
            .await;
        match sent {
            Ok(r) if r.status().is_success() => return Ok(()),
            Ok(r) if r.status().is_redirection() => {
                let location = r.headers().get(reqwest::header::LOCATION).map_or_else(
                    || "(none)".to_owned(),
                    |l| String::from_utf8_lossy(l.as_bytes()).into_owned(),
                );
                return Err(WebhookError::Redirected {
                    url: target.url.clone(),
                    status: r.status().as_u16(),
                    location,
                });
            }
            Ok(r) if r.status().is_client_error() && r.status().as_u16() != 429 => {
                return Err(WebhookError::Refused {
                    url: target.url.clone(),
                    status: r.status().as_u16(),
                });
            }
            Ok(r) => last = format!("HTTP {}", r.status().as_u16()),
            Err(e) => last = e.to_string(),
        }
        tracing::debug!(url = %target.url, attempt, error = %last, "webhook delivery failed; retrying");
    }
    Err(WebhookError::GaveUp {
        url: target.url.clone(),
        attempts: retry.attempts.max(1),
        last,
    })
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn rfc_4231_test_case_2() {
        assert_eq!(
            hmac_hex(b"Jefe", &[b"what do ya ", b"want for nothing?"]),
            "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    /// The signed text is the timestamp's decimal digits, a dot and the
    /// body; the value checked against `openssl dgst -sha256 -hmac` (the
    /// recipe in docs/webhooks.md):
    /// `printf '1772323200.{"id":"a-1"}' | openssl dgst -sha256 -hmac 'a shared secret'`.
    #[test]
    fn the_signature_covers_the_timestamp_and_the_body() {
        let body = br#"{"id":"a-1"}"#;
        let signed = signature(b"a shared secret", 1_772_323_200, body);
        assert_eq!(
            signed,
            hmac_hex(b"a shared secret", &[b"1772323200.{\"id\":\"a-1\"}"])
        );
        assert_eq!(
            signed,
            "sha256=3a2cc4f3f9b57447e8cfad67607103c8b9078fd114569d0fbed23dc56b39d306"
        );
        assert_ne!(signed, signature(b"a shared secret", 1_772_323_201, body));
    }

    #[test]
    fn back_off_doubles_to_the_cap() {
        let r = Retry {
            attempts: 8,
            backoff: Backoff::new(Duration::from_secs(1), Duration::from_secs(30)),
        };
        let d: Vec<u64> = (1..8).map(|n| r.backoff.delay(n).as_secs()).collect();
        assert_eq!(d, [1, 2, 4, 8, 16, 30, 30]);
    }
}
