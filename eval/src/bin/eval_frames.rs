//! eval-frames: the CLI viewer's frame log. Reads fragmented MP4 (moq-sub's output) on stdin and writes, for each
//! video frame, its number (its decode time x fps) and when it arrived.

use std::io::{BufWriter, Read, Write};
use std::path::PathBuf;

use anyhow::Context;
use clap::Parser;
use moq_media::mp4::{Demuxer, Event, Kind};

/// Logs `frame,display_unix_ms` per received video frame to --out.
#[derive(Debug, Parser)]
struct Args {
    /// The CSV to write.
    #[arg(long)]
    out: PathBuf,
    /// The stream's frame rate.
    #[arg(long, default_value_t = 30.0)]
    fps: f64,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let file = std::fs::File::create(&args.out).with_context(|| format!("creating {}", args.out.display()))?;
    let mut csv = BufWriter::new(file);
    writeln!(csv, "frame,display_unix_ms")?;
    let mut demuxer = Demuxer::new();
    let mut stdin = std::io::stdin().lock();
    let mut buf = vec![0u8; 256 * 1024];
    let mut last_flush = std::time::Instant::now();
    loop {
        let n = stdin.read(&mut buf)?;
        if n == 0 {
            break;
        }
        let now = moq_eval::unix_ms();
        for event in demuxer.push(&buf[..n]).context("the input is not fragmented MP4")? {
            let Event::Sample(s) = event else { continue };
            let Some(track) = demuxer.tracks().iter().find(|t| t.id == s.track_id) else { continue };
            if track.config.kind != Kind::Video {
                continue;
            }
            let frame = (s.dts as f64 * args.fps / f64::from(track.config.timescale.max(1))).round();
            writeln!(csv, "{frame},{now:.3}")?;
        }
        if last_flush.elapsed().as_secs() >= 1 {
            csv.flush()?;
            last_flush = std::time::Instant::now();
        }
    }
    csv.flush()?;
    Ok(())
}
