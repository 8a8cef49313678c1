//! The glass-to-glass stamp of `web/src/media/stamp.ts`, drawn into raw YUV 4:2:0 frames: a 16 x 4 grid of black
//! and white blocks in the top-left corner carrying a time (ms, modulo 2^40), the frame number (modulo 2^16) and
//! an 8-bit check. The browser players read it back from the pixels they show.

const COLUMNS: usize = 16;
const ROWS: usize = 4;
/// Luma of a white and a black block (video range).
const WHITE: u8 = 235;
const BLACK: u8 = 16;

/// The block size in pixels for a frame `width` pixels wide (1/80 of it, at least 2).
pub fn block_size(width: usize) -> usize {
    ((width as f64 / 80.0).round() as usize).max(2)
}

/// The 64 bits of a stamp, most significant first.
pub fn stamp_bits(time_ms: u64, frame: u32) -> [bool; 64] {
    let time = time_ms % (1 << 40);
    let frame = frame % (1 << 16);
    let mut bytes = [0u8; 8];
    bytes[..5].copy_from_slice(&time.to_be_bytes()[3..]);
    bytes[5..7].copy_from_slice(&(frame as u16).to_be_bytes());
    let sum = bytes[..7].iter().map(|&b| u32::from(b)).sum::<u32>();
    bytes[7] = ((sum ^ 0xa5) & 0xff) as u8;
    let mut bits = [false; 64];
    for (i, bit) in bits.iter_mut().enumerate() {
        *bit = (bytes[i / 8] >> (7 - i % 8)) & 1 == 1;
    }
    bits
}

/// Draws the stamp into a YUV 4:2:0 frame (`width` x `height`, planes back to back), chroma neutral under it.
pub fn draw(frame: &mut [u8], width: usize, height: usize, time_ms: u64, number: u32) {
    let b = block_size(width);
    if ROWS * b > height || COLUMNS * b > width || frame.len() < width * height * 3 / 2 {
        return;
    }
    let bits = stamp_bits(time_ms, number);
    for (i, &bit) in bits.iter().enumerate() {
        let (x0, y0) = ((i % COLUMNS) * b, (i / COLUMNS) * b);
        for y in y0..y0 + b {
            frame[y * width + x0..y * width + x0 + b].fill(if bit { WHITE } else { BLACK });
        }
    }
    let (cw, luma) = (width / 2, width * height);
    for plane in [luma, luma + cw * (height / 2)] {
        for y in 0..ROWS * b / 2 {
            frame[plane + y * cw..plane + y * cw + COLUMNS * b / 2].fill(128);
        }
    }
}

/// Reads a stamp back from a YUV 4:2:0 frame's luma: `(time_ms, frame)`, or `None` when the check fails.
pub fn read(frame: &[u8], width: usize, height: usize) -> Option<(u64, u32)> {
    let b = block_size(width);
    if ROWS * b > height || frame.len() < width * height {
        return None;
    }
    let mut bytes = [0u8; 8];
    for i in 0..64 {
        let (x, y) = ((i % COLUMNS) * b + b / 2, (i / COLUMNS) * b + b / 2);
        if frame[y * width + x] >= 128 {
            bytes[i / 8] |= 1 << (7 - i % 8);
        }
    }
    let sum = bytes[..7].iter().map(|&b| u32::from(b)).sum::<u32>();
    if bytes[7] != ((sum ^ 0xa5) & 0xff) as u8 {
        return None;
    }
    let mut time = [0u8; 8];
    time[3..].copy_from_slice(&bytes[..5]);
    Some((u64::from_be_bytes(time), u32::from(u16::from_be_bytes([bytes[5], bytes[6]]))))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bit_string(bits: &[bool]) -> String {
        bits.iter().map(|&b| if b { '1' } else { '0' }).collect()
    }

    /// The same bits as `stampBits` in web/src/media/stamp.ts (printed by it for these inputs).
    #[test]
    fn bits_match_the_browser_stamp() {
        assert_eq!(
            bit_string(&stamp_bits(123_456_789, 4242)),
            "0000000000000111010110111100110100010101000100001001001001000011"
        );
        assert_eq!(bit_string(&stamp_bits(0, 0)), "0000000000000000000000000000000000000000000000000000000010100101");
    }

    #[test]
    fn a_drawn_stamp_reads_back() {
        let (w, h) = (1280, 720);
        let mut frame = vec![90u8; w * h * 3 / 2];
        draw(&mut frame, w, h, 33_367, 1001);
        assert_eq!(read(&frame, w, h), Some((33_367, 1001)));
        // One flipped block breaks the check.
        frame[8 * w + 8] = 255 - frame[8 * w + 8];
        assert_eq!(read(&frame, w, h), None);
    }

    #[test]
    fn frame_numbers_wrap_at_16_bits() {
        let (w, h) = (320, 180);
        let mut frame = vec![0u8; w * h * 3 / 2];
        draw(&mut frame, w, h, 5, 65_536 + 7);
        assert_eq!(read(&frame, w, h), Some((5, 7)));
    }
}
