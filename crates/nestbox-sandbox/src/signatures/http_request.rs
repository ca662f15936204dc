//! Network: the sample made HTTP requests (answered by the sink).

use nestbox_types::report::SignatureHit;

use super::{Evidence, Signature, hit};

/// Any request in `network.http`.
pub struct HttpRequest;

impl Signature for HttpRequest {
    fn check(&self, ev: &Evidence<'_>) -> Option<SignatureHit> {
        let found: Vec<(String, String)> = ev
            .network
            .http
            .iter()
            .filter_map(|h| h["uri"].as_str())
            .map(|u| ("url".to_owned(), u.to_owned()))
            .collect();
        (!found.is_empty()).then(|| {
            hit(
                "http_request",
                "Performs HTTP requests",
                2,
                &["network"],
                &[("T1071.001", "Application Layer Protocol: Web Protocols")],
                found,
            )
        })
    }
}
