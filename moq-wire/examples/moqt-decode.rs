//! `moqt-decode`: print MoQT bytes as decoded values, for interop debugging.
//!
//! ```text
//! cargo run -p moq-wire --example moqt-decode -- --draft 19 --control "03 000b 00 01 01 61 01 62 01 10 01"
//! cargo run -p moq-wire --example moqt-decode -- --stream 1402000000000461626364
//! cargo run -p moq-wire --example moqt-decode -- --datagram 0002050380787a
//! ```
//!
//! HEX may contain spaces, colons and an optional `0x`. Control input may hold several messages back to back;
//! stream input is a unidirectional stream from its first byte (header, then objects). The exit status is 0 when
//! everything decoded, 1 when the input is short (more bytes needed) and 2 when it is malformed.

use std::io::Write;
use std::process::ExitCode;

use bytes::{Bytes, BytesMut};
use clap::Parser;
use moq_wire::control::ControlMessage;
use moq_wire::data::{DataStreamHeader, Datagram, FetchReader, StreamKind, SubgroupReader};
use moq_wire::{Decode, DecodeError, GroupOrder, Version};

#[derive(Parser)]
#[command(about = "Decode MoQT control messages, data streams and datagrams from hex")]
struct Args {
    /// Draft version: 18 or 19.
    #[arg(long, default_value_t = 19)]
    draft: u32,
    /// Group order of the FETCH a fetch stream answers (it decides the sign of group deltas).
    #[arg(long, value_parser = ["ascending", "descending"], default_value = "ascending")]
    fetch_order: String,
    /// One or more framed control messages.
    #[arg(long, group = "input")]
    control: Option<String>,
    /// A unidirectional stream: its header and then its objects.
    #[arg(long, group = "input")]
    stream: Option<String>,
    /// One datagram.
    #[arg(long, group = "input")]
    datagram: Option<String>,
}

/// `println!` that ignores a closed stdout (e.g. piped into `head`), instead of panicking.
macro_rules! out {
    ($($arg:tt)*) => {{
        let _ = writeln!(std::io::stdout().lock(), $($arg)*);
    }};
}

fn parse_hex(s: &str) -> Result<Vec<u8>, String> {
    let s = s.trim();
    let s = s.strip_prefix("0x").unwrap_or(s);
    let digits: Vec<u8> = s.bytes().filter(|c| !c.is_ascii_whitespace() && *c != b':' && *c != b'_').collect();
    if !digits.len().is_multiple_of(2) {
        return Err(format!("odd number of hex digits ({})", digits.len()));
    }
    digits
        .chunks(2)
        .map(|pair| {
            let text = std::str::from_utf8(pair).map_err(|_| "not hex".to_string())?;
            u8::from_str_radix(text, 16).map_err(|_| format!("not a hex byte: {text:?}"))
        })
        .collect()
}

fn fail(at: usize, e: DecodeError) -> ExitCode {
    if e.is_short() {
        eprintln!("error: input is short at byte {at}: {e}");
        ExitCode::from(1)
    } else {
        eprintln!("error: malformed at byte {at}: {e} (session close code {:#x})", e.code());
        ExitCode::from(2)
    }
}

fn control(bytes: &[u8], v: Version) -> ExitCode {
    let mut at = 0;
    while at < bytes.len() {
        match ControlMessage::decode_prefix(&bytes[at..], v) {
            Ok((msg, used)) => {
                out!("[{at}..{}] {} ({:#x}) {:#?}", at + used, msg.name(), msg.message_type(), msg);
                at += used;
            }
            Err(e) => return fail(at, e),
        }
    }
    ExitCode::SUCCESS
}

fn stream(bytes: &[u8], v: Version, order: GroupOrder) -> ExitCode {
    match StreamKind::peek(bytes, v) {
        Ok(StreamKind::Control) => {
            out!("control stream");
            return control(bytes, v);
        }
        Err(e) => return fail(0, e),
        Ok(_) => {}
    }
    let mut buf = BytesMut::from(bytes);
    let header = match DataStreamHeader::decode_from(&mut buf, v) {
        Ok(h) => h,
        Err(e) => return fail(0, e),
    };
    let at = |buf: &BytesMut| bytes.len() - buf.len();
    out!("[0..{}] {header:#?}", at(&buf));
    match header {
        DataStreamHeader::Subgroup(h) => {
            let mut r = SubgroupReader::new(h, v);
            while !buf.is_empty() {
                let start = at(&buf);
                match r.read_object(&mut buf) {
                    Ok(o) => out!("[{start}..{}] {:?} payload {}", at(&buf), o.header, show(&o.payload)),
                    Err(e) => return fail(start, e),
                }
            }
        }
        DataStreamHeader::Fetch(_) => {
            let mut r = FetchReader::new(order, v);
            while !buf.is_empty() {
                let start = at(&buf);
                match r.read_entry(&mut buf) {
                    Ok((e, payload)) => {
                        out!("[{start}..{}] {e:?} payload {}", at(&buf), show(&payload))
                    }
                    Err(e) => return fail(start, e),
                }
            }
        }
        DataStreamHeader::Padding => out!("{} padding bytes", buf.len()),
    }
    ExitCode::SUCCESS
}

fn show(payload: &[u8]) -> String {
    match std::str::from_utf8(payload) {
        Ok(s) if s.chars().all(|c| !c.is_control()) => format!("{} bytes {s:?}", payload.len()),
        _ => format!("{} bytes {:02x?}", payload.len(), &payload[..payload.len().min(32)]),
    }
}

fn main() -> ExitCode {
    let args = Args::parse();
    let Some(v) = Version::from_draft(args.draft) else {
        eprintln!("error: unsupported draft {} (supported: 18, 19)", args.draft);
        return ExitCode::from(2);
    };
    let order = if args.fetch_order == "descending" { GroupOrder::Descending } else { GroupOrder::Ascending };
    let (input, kind) = match (&args.control, &args.stream, &args.datagram) {
        (Some(h), None, None) => (h, 0),
        (None, Some(h), None) => (h, 1),
        (None, None, Some(h)) => (h, 2),
        _ => {
            eprintln!("error: give exactly one of --control, --stream or --datagram");
            return ExitCode::from(2);
        }
    };
    let bytes = match parse_hex(input) {
        Ok(b) => b,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    if bytes.is_empty() {
        eprintln!("error: no input bytes");
        return ExitCode::from(1);
    }
    match kind {
        0 => control(&bytes, v),
        1 => stream(&bytes, v, order),
        _ => match Datagram::decode(&Bytes::from(bytes), v) {
            Ok(d) => {
                out!("{d:#?}");
                ExitCode::SUCCESS
            }
            Err(e) => fail(0, e),
        },
    }
}
