//! Every response of the relay's HTTP port carries the security headers: a strict Content-Security-Policy,
//! `nosniff`, no Referer, and a Permissions-Policy that gives camera and microphone to `/studio` alone.

mod common;

use common::*;

/// The header block of a response, lower-cased names.
fn headers(response: &str) -> Vec<(String, String)> {
    let head = response.split("\r\n\r\n").next().unwrap_or_default();
    head.lines()
        .skip(1)
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect()
}

fn header<'a>(h: &'a [(String, String)], name: &str) -> Option<&'a str> {
    h.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
}

#[tokio::test]
async fn every_response_has_the_security_headers() {
    let relay = start_with(moq_relay::Config { demo: false, ..test_config() }).await;
    let mut paths: Vec<String> =
        ["/", "/watch", "/watch?name=live/x", "/studio", "/certificate.sha256", "/health", "/metrics", "/no-such-file"]
            .map(String::from)
            .to_vec();
    // Every built file the relay serves.
    let dist = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../web/dist");
    for entry in std::fs::read_dir(&dist).unwrap() {
        paths.push(format!("/{}", entry.unwrap().file_name().to_string_lossy()));
    }
    for path in &paths {
        let response = relay.http_get(path).await;
        let h = headers(&response);
        let csp = header(&h, "content-security-policy").unwrap_or_else(|| panic!("{path}: no CSP"));
        for directive in [
            "default-src 'self'",
            "script-src 'self'",
            "object-src 'none'",
            "base-uri 'none'",
            "frame-ancestors 'none'",
        ] {
            assert!(csp.split(';').any(|d| d.trim() == directive), "{path}: CSP lacks {directive}: {csp}");
        }
        assert!(!csp.contains("unsafe-inline") && !csp.contains("unsafe-eval"), "{path}: {csp}");
        assert_eq!(header(&h, "x-content-type-options"), Some("nosniff"), "{path}");
        assert_eq!(header(&h, "referrer-policy"), Some("no-referrer"), "{path}");
        let permissions = header(&h, "permissions-policy").unwrap_or_else(|| panic!("{path}: no Permissions-Policy"));
        let studio = path == "/studio" || path == "/studio.html";
        assert_eq!(permissions.contains("camera=(self)"), studio, "{path}: {permissions}");
        assert_eq!(permissions.contains("microphone=(self)"), studio, "{path}: {permissions}");
        if !studio {
            assert!(permissions.contains("camera=()") && permissions.contains("microphone=()"), "{path}");
        }
    }
}

/// `--frame-ancestors` lets named sites embed the player.
#[tokio::test]
async fn embedding_sites_are_named_by_a_flag() {
    let config = moq_relay::Config { frame_ancestors: "https://example.com".into(), ..test_config() };
    let relay = start_with(config).await;
    let h = headers(&relay.http_get("/watch").await);
    let csp = header(&h, "content-security-policy").unwrap();
    assert!(csp.ends_with("frame-ancestors https://example.com"), "{csp}");
    assert!(
        moq_relay::Relay::bind(&moq_relay::Config { frame_ancestors: "x; script-src *".into(), ..test_config() })
            .await
            .is_err()
    );
}
