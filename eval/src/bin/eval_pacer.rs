//! eval-pacer: releases a fragmented-MP4 clip on stdout as a live stream, each fragment at `t0 + its decode
//! time`, so that every system under test gets the same frames at the same moments and frame n's capture time is
//! `t0 + n / fps`.

use std::io::{Read, Write};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::Parser;
use moq_eval::fragments::{Piece, Splitter};
use moq_media::mp4::Kind;

/// Writes CLIP to stdout in real time; writes --source-out (t0, fps, frames sent) at the start and the end.
#[derive(Debug, Parser)]
struct Args {
    /// The clip (eval-clip's output).
    #[arg(long)]
    clip: PathBuf,
    /// Where to write when frame 0 was released.
    #[arg(long)]
    source_out: PathBuf,
    /// Stop after this many seconds of media (default: the whole clip).
    #[arg(long)]
    seconds: Option<f64>,
    /// The clip's frame rate.
    #[arg(long, default_value_t = 30.0)]
    fps: f64,
}

fn write_source(path: &PathBuf, t0: f64, fps: f64, frames: u64, max_late_ms: f64, done: bool) -> anyhow::Result<()> {
    let v = serde_json::json!({
        "t0_unix_ms": t0, "fps": fps, "frames_sent": frames, "max_late_ms": max_late_ms, "done": done,
    });
    std::fs::write(path, v.to_string()).with_context(|| format!("writing {}", path.display()))
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let mut data = Vec::new();
    std::fs::File::open(&args.clip)
        .and_then(|mut f| f.read_to_end(&mut data))
        .with_context(|| format!("reading {}", args.clip.display()))?;
    let pieces = Splitter::new().push(&data).context("the clip is not a fragmented MP4")?;
    drop(data);
    let mut out = std::io::stdout().lock();
    let start = Instant::now();
    let t0 = moq_eval::unix_ms();
    write_source(&args.source_out, t0, args.fps, 0, 0.0, false)?;
    let (mut frames, mut max_late) = (0u64, Duration::ZERO);
    for piece in &pieces {
        let bytes = match piece {
            Piece::Init { bytes, .. } => bytes,
            Piece::Fragment(f) => {
                if args.seconds.is_some_and(|s| f.seconds() >= s) {
                    break;
                }
                let due = Duration::from_secs_f64(f.seconds());
                match due.checked_sub(start.elapsed()) {
                    Some(wait) => std::thread::sleep(wait),
                    None => max_late = max_late.max(start.elapsed() - due),
                }
                if f.kind == Kind::Video {
                    frames += 1;
                }
                &f.bytes
            }
        };
        if out.write_all(bytes).and_then(|_| out.flush()).is_err() {
            break; // the system under test went away
        }
    }
    write_source(&args.source_out, t0, args.fps, frames, max_late.as_secs_f64() * 1000.0, true)
}
