//! Bad input makes `moq-pub` exit non-zero with a clear message, before it connects anywhere.

use std::io::Write;
use std::process::{Command, Stdio};

/// Runs moq-pub on `input` (stdin) with extra `args`; returns its exit code and stderr.
fn run(input: &[u8], args: &[&str]) -> (i32, String) {
    // Port 9 (discard) on loopback: nothing listens, and bad input must fail before any connection attempt.
    let mut child = Command::new(env!("CARGO_BIN_EXE_moq-pub"))
        .args(["moqt://127.0.0.1:9/", "--namespace", "test/bad"])
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    // moq-pub may exit before reading everything; a broken pipe is fine.
    let _ = stdin.write_all(input);
    drop(stdin);
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(!stderr.contains("panicked"), "moq-pub panicked: {stderr}");
    (out.status.code().unwrap_or(-1), stderr)
}

#[test]
fn not_mp4_is_refused() {
    let (code, err) = run(b"this is not a video, just text that goes on for a while", &[]);
    assert_eq!(code, 1);
    assert!(err.contains("not an MP4 stream"), "{err}");
    let (code, err) = run(b"", &[]);
    assert_eq!(code, 1);
    assert!(err.contains("not an MP4 stream"), "{err}");
}

#[test]
fn truncated_init_segment_is_refused() {
    let (code, err) = run(&moq_media::DEMO_CLIP[..600], &[]);
    assert_eq!(code, 1);
    assert!(err.contains("truncated MP4") && err.contains("moov"), "{err}");
}

#[test]
fn unsupported_codec_is_named() {
    // The demo clip with its H.264 sample entry renamed to a codec we do not carry.
    let mut clip = moq_media::DEMO_CLIP.to_vec();
    let at = clip.windows(4).position(|w| w == b"avc1").expect("an avc1 sample entry");
    clip[at..at + 4].copy_from_slice(b"xyz1");
    let (code, err) = run(&clip, &[]);
    assert_eq!(code, 1);
    assert!(err.contains("unsupported codec `xyz1`"), "{err}");
}

#[test]
fn missing_file_and_bad_options_are_errors() {
    let (code, err) = run(b"", &["--input", "/nonexistent/clip.mp4"]);
    assert_eq!(code, 1);
    assert!(err.contains("/nonexistent/clip.mp4"), "{err}");
    let (code, err) = run(b"", &["--loop"]);
    assert_eq!(code, 1);
    assert!(err.contains("--loop needs a file"), "{err}");
}
