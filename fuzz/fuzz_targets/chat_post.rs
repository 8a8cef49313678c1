//! A chat participant's post: no input panics; an accepted message is within the limits.
#![no_main]

use libfuzzer_sys::fuzz_target;
use moq_relay::chat::{ChatLimits, Post};

fuzz_target!(|data: &[u8]| {
    let limits = ChatLimits::default();
    if let Ok(Post::Message { name, text }) = Post::parse(data, &limits) {
        assert!(!text.is_empty() && text.len() <= limits.max_text);
        assert!(!name.is_empty() && name.chars().count() <= limits.max_name);
        assert!(!name.chars().any(char::is_control));
        assert!(!text.chars().any(|c| c.is_control() && c != '\n'));
    }
});
