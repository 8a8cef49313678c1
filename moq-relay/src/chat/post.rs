//! What a participant posts, checked: the parser the relay runs on every chat object (untrusted input, fuzzed by
//! `fuzz/fuzz_targets/chat_post.rs`), and the token bucket of the rate limits.

use tokio::time::Instant;

use super::ChatLimits;

/// Why a post was not added to its room; the participant is told (its `notices` track).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Rejected {
    #[error("not a JSON object with string fields name and text (or a moderation request)")]
    Malformed,
    #[error("empty or too long text")]
    Text,
    #[error("empty or too long name, or control characters in it")]
    Name,
    #[error("the name is reserved for the channel's streamer")]
    Reserved,
    #[error("rate limit: wait a moment")]
    RateLimited,
    #[error("muted by the channel's moderator")]
    Muted,
    #[error("only the channel's streamer may moderate")]
    NotModerator,
    #[error("one chat participant per session and room")]
    SecondParticipant,
}

/// A post after its checks: a message, or a moderation request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Post {
    /// A message with the poster's display name (trimmed, 1..=max_name characters, no control characters) and
    /// its text (trimmed, control characters but newlines removed, 1..=max_text bytes).
    Message { name: String, text: String },
    /// Remove the room's message with this sequence number.
    Remove { seq: u64 },
    /// Mute the participant with this relay-assigned id.
    Mute { id: String },
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct Wire {
    name: String,
    #[serde(default)]
    text: Option<String>,
    #[serde(default, rename = "mod")]
    moderation: Option<String>,
    #[serde(default)]
    seq: Option<u64>,
    #[serde(default)]
    id: Option<String>,
}

/// Longest relay-assigned participant id we accept in a mute request.
const MAX_ID: usize = 32;

impl Post {
    /// Parses and checks a participant's object.
    pub fn parse(payload: &[u8], limits: &ChatLimits) -> Result<Post, Rejected> {
        if payload.len() > 4 * (limits.max_text + limits.max_name) + 64 {
            return Err(Rejected::Text);
        }
        let wire: Wire = serde_json::from_slice(payload).map_err(|_| Rejected::Malformed)?;
        let name = wire.name.trim();
        if name.is_empty() || name.chars().count() > limits.max_name || name.chars().any(char::is_control) {
            return Err(Rejected::Name);
        }
        match (wire.moderation.as_deref(), wire.text, wire.seq, wire.id) {
            (None, Some(text), None, None) => {
                let text: String = text.trim().chars().filter(|c| *c == '\n' || !c.is_control()).collect();
                if text.is_empty() || text.len() > limits.max_text {
                    return Err(Rejected::Text);
                }
                Ok(Post::Message { name: name.to_string(), text })
            }
            (Some("remove"), None, Some(seq), None) => Ok(Post::Remove { seq }),
            (Some("mute"), None, None, Some(id)) if !id.is_empty() && id.len() <= MAX_ID && id.is_ascii() => {
                Ok(Post::Mute { id })
            }
            _ => Err(Rejected::Malformed),
        }
    }
}

/// Whether a display name is one only the channel's streamer may use: any name that starts with "streamer",
/// whatever its case.
pub fn reserved(name: &str) -> bool {
    name.trim().chars().take(8).flat_map(char::to_lowercase).eq("streamer".chars())
}

/// A token bucket: `burst` at once, refilled at `per_second`.
#[derive(Debug, Clone)]
pub struct RateLimiter {
    tokens: f64,
    burst: f64,
    per_second: f64,
    at: Option<Instant>,
}

impl RateLimiter {
    pub fn new(burst: u32, per_second: f64) -> RateLimiter {
        RateLimiter { tokens: burst as f64, burst: burst as f64, per_second, at: None }
    }

    /// Takes one token if there is one.
    pub fn allow(&mut self, now: Instant) -> bool {
        if let Some(at) = self.at {
            self.tokens = (self.tokens + now.duration_since(at).as_secs_f64() * self.per_second).min(self.burst);
        }
        self.at = Some(now);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }

    /// Whether the bucket is full (nothing to remember about its owner).
    pub fn is_full(&mut self, now: Instant) -> bool {
        let before = (self.tokens, self.at);
        let full = self.allow(now) && self.tokens + 1.0 >= self.burst;
        (self.tokens, self.at) = before;
        full
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn parse(s: &str) -> Result<Post, Rejected> {
        Post::parse(s.as_bytes(), &ChatLimits::default())
    }

    #[test]
    fn the_bucket_allows_a_burst_then_the_rate() {
        let start = Instant::now();
        let mut l = RateLimiter::new(5, 1.0);
        assert_eq!((0..8).filter(|_| l.allow(start)).count(), 5);
        assert!(!l.allow(start + Duration::from_millis(500)));
        assert!(l.allow(start + Duration::from_millis(1600)));
        assert!(!l.allow(start + Duration::from_millis(1700)));
        assert!(!l.is_full(start + Duration::from_millis(1700)));
        assert!(l.is_full(start + Duration::from_secs(100)));
        assert_eq!((0..8).filter(|_| l.allow(start + Duration::from_secs(100))).count(), 5, "refills to the burst");
    }

    #[test]
    fn messages_are_checked() {
        let ok = parse(r#"{"name":" ann ","text":" hi\u0007 there "}"#);
        assert_eq!(ok, Ok(Post::Message { name: "ann".into(), text: "hi there".into() }), "trimmed, controls dropped");
        assert_eq!(parse("not json"), Err(Rejected::Malformed));
        assert_eq!(parse(r#"{"name":"a"}"#), Err(Rejected::Malformed));
        assert_eq!(parse(r#"{"name":"a","text":"x","admin":true}"#), Err(Rejected::Malformed), "no unknown fields");
        assert_eq!(parse(r#"{"name":"a","text":"  "}"#), Err(Rejected::Text));
        assert_eq!(parse(&format!(r#"{{"name":"a","text":"{}"}}"#, "x".repeat(501))), Err(Rejected::Text));
        assert_eq!(parse(&format!(r#"{{"name":"{}","text":"x"}}"#, "n".repeat(33))), Err(Rejected::Name));
        assert_eq!(parse(r#"{"name":"a\nb","text":"x"}"#), Err(Rejected::Name));
        assert_eq!(parse(r#"{"name":"s","mod":"remove","seq":4}"#), Ok(Post::Remove { seq: 4 }));
        assert_eq!(parse(r#"{"name":"s","mod":"mute","id":"s12"}"#), Ok(Post::Mute { id: "s12".into() }));
        assert_eq!(parse(r#"{"name":"s","mod":"remove","seq":4,"text":"x"}"#), Err(Rejected::Malformed));
        assert_eq!(parse(r#"{"name":"s","mod":"ban","id":"s1"}"#), Err(Rejected::Malformed));
    }

    #[test]
    fn streamer_names_are_reserved() {
        for name in ["streamer-tv", "Streamer", " STREAMERx", "streamer"] {
            assert!(reserved(name), "{name}");
        }
        for name in ["stream", "viewer-streamer", "strea mer", "ştreamer"] {
            assert!(!reserved(name), "{name}");
        }
    }
}
