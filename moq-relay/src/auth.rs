//! Authorization with JWTs (HS256): tokens grant publish and/or subscribe on namespace prefixes, with expiry.
//!
//! A token travels in the URL query (`?jwt=...`: the WebTransport URL, or the PATH setup option on raw QUIC) or
//! as an AUTHORIZATION_TOKEN (setup option or request parameter, any alias type carrying a value). Anonymous
//! access can be granted per prefix. Without a key configured, everything is allowed (development).

use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::Context;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use moq_transport::wire::namespace::TrackNamespace;
use moq_transport::wire::token::AuthToken;
use moq_transport::{Action, AuthContext};
use serde::{Deserialize, Serialize};

/// What a token grants.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    /// Namespace prefixes (`/`-separated; empty = everything) the holder may publish under.
    #[serde(default)]
    pub publish: Vec<String>,
    /// Namespace prefixes the holder may subscribe under.
    #[serde(default)]
    pub subscribe: Vec<String>,
    /// Expiry, seconds since the Unix epoch.
    pub exp: u64,
}

/// The relay's authorization policy.
#[derive(Clone, Default)]
pub struct Auth {
    key: Option<DecodingKey>,
    public: Vec<TrackNamespace>,
    /// Seconds a token is still accepted after its `exp` (clock skew between the issuer and the relay).
    leeway: u64,
}

/// The default [`Auth::with_leeway`]: a few seconds of clock skew, not jsonwebtoken's 60.
pub const DEFAULT_LEEWAY: u64 = 5;

impl std::fmt::Debug for Auth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Auth").field("key", &self.key.is_some()).field("public", &self.public).finish()
    }
}

/// Reads a key file: the secret as hex.
pub fn load_key(path: &Path) -> anyhow::Result<Vec<u8>> {
    let text = std::fs::read_to_string(path).with_context(|| format!("read {}", path.display()))?;
    let text = text.trim();
    if text.len() % 2 != 0 || text.len() < 32 {
        anyhow::bail!("{}: expected at least 16 bytes of hex", path.display());
    }
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&text[i..i + 2], 16).with_context(|| format!("{}: not hex", path.display())))
        .collect()
}

/// Makes a new random 32-byte key, as hex.
pub fn generate_key() -> anyhow::Result<String> {
    let mut bytes = [0u8; 32];
    ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut bytes)
        .map_err(|_| anyhow::anyhow!("no system randomness"))?;
    Ok(moq_transport::tls::hex(&bytes))
}

/// Signs a token.
pub fn sign(key: &[u8], claims: &Claims) -> anyhow::Result<String> {
    Ok(jsonwebtoken::encode(&Header::new(Algorithm::HS256), claims, &EncodingKey::from_secret(key))?)
}

/// Seconds since the Unix epoch.
pub fn now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

impl Auth {
    /// A policy: tokens signed with `key` (none: allow everything), plus anonymous access under `public`.
    pub fn new(key: Option<&[u8]>, public: Vec<TrackNamespace>) -> Auth {
        Auth { key: key.map(DecodingKey::from_secret), public, leeway: DEFAULT_LEEWAY }
    }

    /// Whether tokens are checked (a key is configured); without one everything is allowed.
    pub fn checks_tokens(&self) -> bool {
        self.key.is_some()
    }

    /// Accepts tokens up to `seconds` after they expired.
    pub fn with_leeway(mut self, seconds: u64) -> Auth {
        self.leeway = seconds;
        self
    }

    /// Whether the request is allowed.
    pub fn authorize(&self, ctx: &AuthContext<'_>, action: Action, ns: &TrackNamespace) -> bool {
        let Some(key) = &self.key else { return true };
        if self.public.iter().any(|p| ns.starts_with(p)) {
            return true;
        }
        let mut validation = Validation::new(Algorithm::HS256);
        validation.required_spec_claims = ["exp".to_string()].into_iter().collect();
        validation.leeway = self.leeway;
        candidates(ctx).into_iter().any(|jwt| match jsonwebtoken::decode::<Claims>(&jwt, key, &validation) {
            Ok(data) => {
                let prefixes = match action {
                    Action::Publish => &data.claims.publish,
                    Action::Subscribe => &data.claims.subscribe,
                };
                prefixes.iter().filter_map(|p| TrackNamespace::from_path(p).ok()).any(|p| ns.starts_with(&p))
            }
            Err(e) => {
                tracing::debug!(error = %e, "token refused");
                false
            }
        })
    }
}

/// Every string that could be a JWT for this request.
fn candidates(ctx: &AuthContext<'_>) -> Vec<String> {
    let mut out = Vec::new();
    if let Some(query) = ctx.path.and_then(|p| p.split_once('?')).map(|(_, q)| q) {
        for pair in query.split('&') {
            if let Some(v) = pair.strip_prefix("jwt=") {
                out.push(v.to_string());
            }
        }
    }
    for t in ctx.setup_tokens.iter().chain(ctx.request_tokens) {
        if let AuthToken::UseValue { value, .. } | AuthToken::Register { value, .. } = t
            && let Ok(s) = std::str::from_utf8(value)
        {
            out.push(s.to_string());
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ns(p: &str) -> TrackNamespace {
        TrackNamespace::from_path(p).unwrap()
    }

    #[test]
    fn grants_follow_the_claims() {
        let key = b"0123456789abcdef0123456789abcdef";
        let auth = Auth::new(Some(key), vec![ns("public")]);
        let token =
            sign(key, &Claims { publish: vec!["live/alice".into()], subscribe: vec!["live".into()], exp: now() + 60 })
                .unwrap();
        let path = format!("/?jwt={token}");
        let ctx = AuthContext { path: Some(&path), setup_tokens: &[], request_tokens: &[] };
        assert!(auth.authorize(&ctx, Action::Publish, &ns("live/alice/cam")));
        assert!(!auth.authorize(&ctx, Action::Publish, &ns("live/bob")));
        assert!(auth.authorize(&ctx, Action::Subscribe, &ns("live/bob")));
        assert!(!auth.authorize(&ctx, Action::Subscribe, &ns("other")));
        // Anonymous prefix.
        let anon = AuthContext { path: None, setup_tokens: &[], request_tokens: &[] };
        assert!(auth.authorize(&anon, Action::Subscribe, &ns("public/x")));
        assert!(!auth.authorize(&anon, Action::Subscribe, &ns("live")));
        // As an AUTHORIZATION_TOKEN.
        let tokens = [AuthToken::value(token.clone().into_bytes())];
        let ctx = AuthContext { path: None, setup_tokens: &tokens, request_tokens: &[] };
        assert!(auth.authorize(&ctx, Action::Subscribe, &ns("live")));
        // Expired, or signed with another key.
        let old = sign(key, &Claims { publish: vec![], subscribe: vec!["live".into()], exp: now() - 3600 }).unwrap();
        let path = format!("/?jwt={old}");
        assert!(!auth.authorize(
            &AuthContext { path: Some(&path), setup_tokens: &[], request_tokens: &[] },
            Action::Subscribe,
            &ns("live")
        ));
        let forged = sign(
            b"another key, not the relay's one",
            &Claims { publish: vec![], subscribe: vec!["".into()], exp: now() + 60 },
        )
        .unwrap();
        let path = format!("/?jwt={forged}");
        assert!(!auth.authorize(
            &AuthContext { path: Some(&path), setup_tokens: &[], request_tokens: &[] },
            Action::Subscribe,
            &ns("live")
        ));
        // Expired 30 s ago: refused with the default leeway (5 s), accepted with a minute's.
        let recent = sign(key, &Claims { publish: vec![], subscribe: vec!["live".into()], exp: now() - 30 }).unwrap();
        let tokens = [AuthToken::value(recent.into_bytes())];
        let ctx = AuthContext { path: None, setup_tokens: &tokens, request_tokens: &[] };
        assert!(!auth.authorize(&ctx, Action::Subscribe, &ns("live")));
        let lenient = Auth::new(Some(key), vec![]).with_leeway(60);
        assert!(lenient.authorize(&ctx, Action::Subscribe, &ns("live")));
        // No key: open.
        assert!(Auth::default().authorize(&anon, Action::Publish, &ns("anything")));
    }
}
