//! Security headers on every HTTP response: a strict Content-Security-Policy (no inline script, no plugins, no
//! `<base>`, framing only by the origins `--frame-ancestors` names), `nosniff`, no Referer, camera and
//! microphone for `/studio` alone, and `/certificate.sha256` and the scripts readable from any origin.

use axum::extract::Request;
use axum::http::{HeaderMap, HeaderValue, header};
use axum::middleware::Next;
use axum::response::Response;

/// The policy, but for `frame-ancestors`. WebTransport to any relay is `connect-src https:` (the studio may go
/// live to another relay); workers and the player's media come from this origin or from blobs it makes.
const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; \
                   media-src 'self' blob:; connect-src 'self' https: wss: ws:; worker-src 'self' blob:; \
                   object-src 'none'; base-uri 'none'; form-action 'self'";

/// Camera, microphone and screen capture for the studio; nothing of the kind elsewhere.
const STUDIO_PERMISSIONS: &str =
    "camera=(self), microphone=(self), display-capture=(self), geolocation=(), fullscreen=(self)";
const PAGE_PERMISSIONS: &str = "camera=(), microphone=(), display-capture=(), geolocation=(), fullscreen=(self)";

/// The headers for one relay: `frame_ancestors` is the CSP source list of sites that may embed the pages
/// (`'none'` by default).
#[derive(Debug, Clone)]
pub struct SecurityHeaders {
    csp: HeaderValue,
}

impl SecurityHeaders {
    /// Headers allowing framing by `frame_ancestors` (e.g. `'none'`, or `https://example.com https://a.b`).
    pub fn new(frame_ancestors: &str) -> anyhow::Result<SecurityHeaders> {
        let sources = frame_ancestors.split_whitespace().collect::<Vec<_>>();
        if sources.is_empty() || sources.iter().any(|s| !valid_source(s)) {
            anyhow::bail!(
                "--frame-ancestors {frame_ancestors:?}: expected 'none', 'self' or origins like https://example.com"
            );
        }
        let csp = format!("{CSP}; frame-ancestors {}", sources.join(" "));
        Ok(SecurityHeaders { csp: HeaderValue::from_str(&csp)? })
    }

    /// Adds the headers to a response for `path`.
    pub fn apply(&self, path: &str, headers: &mut HeaderMap) {
        headers.insert(header::CONTENT_SECURITY_POLICY, self.csp.clone());
        headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
        headers.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
        let studio = matches!(path, "/studio" | "/studio.html");
        let permissions = if studio { STUDIO_PERMISSIONS } else { PAGE_PERMISSIONS };
        headers.insert("permissions-policy", HeaderValue::from_static(permissions));
        // The certificate hash and the scripts are public: a player embedded in a page of another origin fetches
        // the hash to connect, and may load moq.js, its workers and worklets from here (cross-origin isolated
        // embedders too).
        if path == "/certificate.sha256" || path.ends_with(".js") {
            headers.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, HeaderValue::from_static("*"));
            headers.insert("cross-origin-resource-policy", HeaderValue::from_static("cross-origin"));
        }
    }

    /// Axum middleware: `axum::middleware::from_fn_with_state(headers, SecurityHeaders::layer)`.
    pub async fn layer(
        axum::extract::State(this): axum::extract::State<SecurityHeaders>,
        request: Request,
        next: Next,
    ) -> Response {
        let path = request.uri().path().to_string();
        let mut response = next.run(request).await;
        this.apply(&path, response.headers_mut());
        response
    }
}

/// A CSP source expression we accept for `frame-ancestors`: a keyword or a scheme://host[:port] origin.
fn valid_source(s: &str) -> bool {
    if matches!(s, "'none'" | "'self'") {
        return true;
    }
    let Some((scheme, rest)) = s.split_once("://") else { return false };
    matches!(scheme, "https" | "http")
        && !rest.is_empty()
        && rest.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | ':' | '*'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frame_ancestors_are_checked() {
        assert!(SecurityHeaders::new("'none'").is_ok());
        assert!(SecurityHeaders::new("https://example.com https://*.example.org:8443").is_ok());
        for bad in ["", "example.com", "https://x; script-src *", "javascript:alert(1)", "'unsafe-inline'"] {
            assert!(SecurityHeaders::new(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn only_the_certificate_hash_and_scripts_are_readable_from_other_origins() {
        let h = SecurityHeaders::new("'none'").unwrap();
        for path in ["/certificate.sha256", "/moq.js", "/decoder-worker.js"] {
            let mut public = HeaderMap::new();
            h.apply(path, &mut public);
            assert_eq!(public[header::ACCESS_CONTROL_ALLOW_ORIGIN], "*", "{path}");
            assert_eq!(public["cross-origin-resource-policy"], "cross-origin", "{path}");
        }
        let mut page = HeaderMap::new();
        h.apply("/watch", &mut page);
        assert!(page.get(header::ACCESS_CONTROL_ALLOW_ORIGIN).is_none());
    }

    #[test]
    fn only_the_studio_may_use_the_camera() {
        let h = SecurityHeaders::new("'none'").unwrap();
        let mut studio = HeaderMap::new();
        h.apply("/studio", &mut studio);
        assert!(studio["permissions-policy"].to_str().unwrap().contains("camera=(self)"));
        let mut watch = HeaderMap::new();
        h.apply("/watch", &mut watch);
        assert!(watch["permissions-policy"].to_str().unwrap().contains("camera=()"));
        assert!(watch[header::CONTENT_SECURITY_POLICY].to_str().unwrap().ends_with("frame-ancestors 'none'"));
    }
}
