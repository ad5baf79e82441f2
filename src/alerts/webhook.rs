//! Webhooks: each fleet's alerts POSTed as JSON to its URL, signed with
//! HMAC-SHA256 over the body (`X-Fleetcare-Signature: sha256=<hex>`), and
//! retried with back-off while the receiver fails or is unreachable.
//!
//! A receiver verifies by computing the HMAC of the raw body with the
//! shared secret and comparing in constant time.

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

use crate::runtime::Backoff;

/// The header that carries the signature.
pub const SIGNATURE_HEADER: &str = "x-fleetcare-signature";

/// `sha256=<hex of HMAC-SHA256(secret, body)>`.
pub fn signature(secret: &[u8], body: &[u8]) -> String {
    // HMAC takes keys of any length; the error is unreachable for it.
    let mut mac = match Hmac::<Sha256>::new_from_slice(secret) {
        Ok(m) => m,
        Err(_) => return String::new(),
    };
    mac.update(body);
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
    #[error("{url} failed {attempts} times, the last: {last}")]
    GaveUp {
        url: String,
        attempts: u32,
        last: String,
    },
}

/// POSTs `body` to `target`, retrying network errors, 5xx and 429.
pub async fn deliver(
    client: &reqwest::Client,
    target: &WebhookTarget,
    body: &[u8],
    retry: Retry,
) -> Result<(), WebhookError> {
    let sig = signature(&target.secret, body);
    let mut last = String::new();
    for attempt in 0..retry.attempts.max(1) {
        if attempt > 0 {
            tokio::time::sleep(retry.backoff.delay(attempt)).await;
        }
        let sent = client
            .post(&target.url)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .header(SIGNATURE_HEADER, &sig)
            .body(body.to_vec())
            .send()
            .await;
        match sent {
            Ok(r) if r.status().is_success() => return Ok(()),
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
            signature(b"Jefe", b"what do ya want for nothing?"),
            "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
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
