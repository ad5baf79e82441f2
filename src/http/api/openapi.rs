//! `GET /api/v1/openapi.json`: the OpenAPI 3 document of this API.
//!
//! Hand-written (a JSON file beside this one) rather than derived: the
//! derive crates would be a new dependency, and a written document is
//! reviewed as a diff. tests/api.rs checks that every operation it lists is
//! served, and schemathesis (tests/api/schemathesis.sh) that the server
//! answers as it says.

use axum::http::header;
use axum::response::IntoResponse;

/// The document, embedded at build time.
pub(crate) const DOCUMENT: &str = include_str!("openapi.json");

pub(super) async fn document() -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "application/json")], DOCUMENT)
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_document_is_json_with_every_path_under_the_api() {
        let doc: serde_json::Value = serde_json::from_str(super::DOCUMENT).unwrap();
        assert_eq!(doc["openapi"], "3.0.3");
        let paths = doc["paths"].as_object().unwrap();
        assert_eq!(paths.len(), 24);
        for path in paths.keys() {
            assert!(
                path.starts_with("/api/v1/") || path == "/healthz" || path == "/metrics",
                "{path}"
            );
        }
    }
}
