//! The little of an HLS media playlist (RFC 8216bis) that the load tool and the tests read: media sequence,
//! target durations, segments with their parts, trailing parts and the preload hint.

/// One `EXT-X-PART`.
#[derive(Debug, Clone, PartialEq)]
pub struct PartEntry {
    /// Its URI.
    pub uri: String,
    /// DURATION.
    pub duration: f64,
    /// INDEPENDENT=YES.
    pub independent: bool,
}

/// One complete segment.
#[derive(Debug, Clone, PartialEq)]
pub struct SegmentEntry {
    /// Media sequence number.
    pub msn: u64,
    /// Its URI.
    pub uri: String,
    /// EXTINF duration.
    pub duration: f64,
    /// Its parts, if listed.
    pub parts: Vec<PartEntry>,
}

/// A parsed media playlist.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct MediaPlaylist {
    /// EXT-X-MEDIA-SEQUENCE.
    pub media_sequence: u64,
    /// EXT-X-TARGETDURATION.
    pub target_duration: f64,
    /// EXT-X-PART-INF PART-TARGET.
    pub part_target: Option<f64>,
    /// EXT-X-SERVER-CONTROL CAN-BLOCK-RELOAD=YES.
    pub can_block_reload: bool,
    /// Complete segments.
    pub segments: Vec<SegmentEntry>,
    /// Parts of the segment still being written (media sequence `next_msn()`).
    pub trailing_parts: Vec<PartEntry>,
    /// EXT-X-PRELOAD-HINT URI.
    pub preload_hint: Option<String>,
    /// EXT-X-ENDLIST.
    pub ended: bool,
}

/// Why a playlist was refused.
#[derive(Debug, thiserror::Error, PartialEq)]
#[error("not an HLS media playlist: {0}")]
pub struct PlaylistError(String);

/// The attributes of a tag (`KEY=VALUE,KEY="quoted, value"`).
pub fn attributes(list: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut rest = list;
    while !rest.is_empty() {
        let Some((key, after)) = rest.split_once('=') else { break };
        let (value, after) = match after.strip_prefix('"') {
            Some(q) => match q.split_once('"') {
                Some((v, a)) => (v, a.strip_prefix(',').unwrap_or(a)),
                None => (q, ""),
            },
            None => after.split_once(',').unwrap_or((after, "")),
        };
        out.push((key.trim().to_string(), value.to_string()));
        rest = after;
    }
    out
}

fn attr<'a>(attrs: &'a [(String, String)], key: &str) -> Option<&'a str> {
    attrs.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
}

impl MediaPlaylist {
    /// Parses `text`.
    pub fn parse(text: &str) -> Result<MediaPlaylist, PlaylistError> {
        let mut lines = text.lines().map(str::trim).filter(|l| !l.is_empty());
        if lines.next() != Some("#EXTM3U") {
            return Err(PlaylistError("no #EXTM3U".into()));
        }
        let mut pl = MediaPlaylist::default();
        let mut duration = None;
        let num = |v: &str, tag: &str| v.parse::<f64>().map_err(|_| PlaylistError(format!("bad {tag}: {v}")));
        for line in lines {
            if let Some(v) = line.strip_prefix("#EXT-X-MEDIA-SEQUENCE:") {
                pl.media_sequence = v.parse().map_err(|_| PlaylistError(format!("bad media sequence: {v}")))?;
            } else if let Some(v) = line.strip_prefix("#EXT-X-TARGETDURATION:") {
                pl.target_duration = num(v, "target duration")?;
            } else if let Some(v) = line.strip_prefix("#EXT-X-PART-INF:") {
                pl.part_target = attr(&attributes(v), "PART-TARGET").map(|t| num(t, "part target")).transpose()?;
            } else if let Some(v) = line.strip_prefix("#EXT-X-SERVER-CONTROL:") {
                pl.can_block_reload = attr(&attributes(v), "CAN-BLOCK-RELOAD") == Some("YES");
            } else if let Some(v) = line.strip_prefix("#EXT-X-PART:") {
                let a = attributes(v);
                let uri = attr(&a, "URI").ok_or_else(|| PlaylistError("a part without a URI".into()))?;
                pl.trailing_parts.push(PartEntry {
                    uri: uri.to_string(),
                    duration: num(attr(&a, "DURATION").unwrap_or("0"), "part duration")?,
                    independent: attr(&a, "INDEPENDENT") == Some("YES"),
                });
            } else if let Some(v) = line.strip_prefix("#EXT-X-PRELOAD-HINT:") {
                let a = attributes(v);
                if attr(&a, "TYPE") == Some("PART") {
                    pl.preload_hint = attr(&a, "URI").map(str::to_string);
                }
            } else if let Some(v) = line.strip_prefix("#EXTINF:") {
                duration = Some(num(v.split(',').next().unwrap_or(""), "EXTINF")?);
            } else if line == "#EXT-X-ENDLIST" {
                pl.ended = true;
            } else if !line.starts_with('#') {
                let msn = pl.media_sequence + pl.segments.len() as u64;
                pl.segments.push(SegmentEntry {
                    msn,
                    uri: line.to_string(),
                    duration: duration.take().ok_or_else(|| PlaylistError(format!("{line} without #EXTINF")))?,
                    parts: std::mem::take(&mut pl.trailing_parts),
                });
            }
        }
        Ok(pl)
    }

    /// The media sequence number of the segment after the last complete one.
    pub fn next_msn(&self) -> u64 {
        self.media_sequence + self.segments.len() as u64
    }

    /// The part after the last one listed, `(msn, index)`: what a blocking reload asks for next.
    pub fn next_part(&self) -> Option<(u64, usize)> {
        if !self.trailing_parts.is_empty() {
            return Some((self.next_msn(), self.trailing_parts.len()));
        }
        self.segments.last().filter(|s| !s.parts.is_empty()).map(|_| (self.next_msn(), 0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LL: &str = "#EXTM3U\n#EXT-X-TARGETDURATION:2\n#EXT-X-PART-INF:PART-TARGET=0.33334\n\
        #EXT-X-SERVER-CONTROL:CAN-BLOCK-RELOAD=YES,PART-HOLD-BACK=1.0\n#EXT-X-MEDIA-SEQUENCE:7\n\
        #EXT-X-MAP:URI=\"init.mp4\"\n#EXT-X-PART:DURATION=0.33333,URI=\"part7.0.m4s\",INDEPENDENT=YES\n\
        #EXTINF:2.00000,\nseg7.m4s\n#EXT-X-PART:DURATION=0.33333,URI=\"part8.0.m4s\",INDEPENDENT=YES\n\
        #EXT-X-PRELOAD-HINT:TYPE=PART,URI=\"part8.1.m4s\"\n";

    #[test]
    fn reads_an_ll_hls_playlist() {
        let pl = MediaPlaylist::parse(LL).unwrap();
        assert_eq!((pl.media_sequence, pl.target_duration, pl.part_target), (7, 2.0, Some(0.33334)));
        assert!(pl.can_block_reload);
        assert_eq!(pl.segments.len(), 1);
        assert_eq!(pl.segments[0].uri, "seg7.m4s");
        assert_eq!(pl.segments[0].parts[0].uri, "part7.0.m4s");
        assert_eq!(pl.trailing_parts.len(), 1);
        assert_eq!(pl.next_part(), Some((8, 1)));
        let ended = LL.replace("#EXT-X-PART:DURATION=0.33333,URI=\"part8.0.m4s\",INDEPENDENT=YES\n", "");
        assert_eq!(MediaPlaylist::parse(&ended).unwrap().next_part(), Some((8, 0)));
        assert_eq!(pl.preload_hint.as_deref(), Some("part8.1.m4s"));
    }

    #[test]
    fn reads_quoted_attributes_with_commas() {
        assert_eq!(
            attributes("URI=\"a,b.m4s\",DURATION=1.5"),
            vec![("URI".into(), "a,b.m4s".into()), ("DURATION".into(), "1.5".into())]
        );
    }

    #[test]
    fn refuses_what_is_not_a_playlist() {
        assert!(MediaPlaylist::parse("<html>").is_err());
        assert!(MediaPlaylist::parse("#EXTM3U\nseg.ts\n").is_err(), "a segment without EXTINF");
    }
}
