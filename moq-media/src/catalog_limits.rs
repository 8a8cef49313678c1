//! Bounds on a catalog from the network (a publisher's catalog is hostile until checked): counts, string
//! lengths and characters, codec syntax, dimensions and rates, init data size. A catalog beyond them is refused
//! as a whole with a message that names the field.

use super::catalog::{Catalog, CatalogError, Track};

/// The largest catalog object we parse, in bytes.
pub const MAX_CATALOG_BYTES: usize = 4 << 20;
/// Tracks in one catalog.
pub const MAX_TRACKS: usize = 256;
/// Entries of `initDataList`.
pub const MAX_INIT_DATA: usize = 256;
/// Bytes of any string field but init data.
pub const MAX_STRING: usize = 1024;
/// Characters of a codec string.
pub const MAX_CODEC: usize = 64;
/// Largest width or height, pixels.
pub const MAX_DIMENSION: u32 = 16384;
/// Largest decoded init data, bytes.
pub const MAX_INIT_BYTES: usize = 1 << 20;

fn bad(field: &str, why: &str) -> CatalogError {
    CatalogError::Limit(format!("{field}: {why}"))
}

fn text(field: &str, value: &str) -> Result<(), CatalogError> {
    if value.len() > MAX_STRING {
        return Err(bad(field, "too long"));
    }
    if value.chars().any(char::is_control) {
        return Err(bad(field, "control characters"));
    }
    Ok(())
}

fn opt_text(field: &str, value: &Option<String>) -> Result<(), CatalogError> {
    value.as_deref().map_or(Ok(()), |v| text(field, v))
}

/// A WebCodecs codec string: letters, digits, `.`, `-`, `_`; `avc1.42e01f`, `opus`, `mp4a.40.2`, `vp09.00.10.08`.
pub fn valid_codec(codec: &str) -> bool {
    !codec.is_empty()
        && codec.len() <= MAX_CODEC
        && codec.starts_with(|c: char| c.is_ascii_alphanumeric())
        && codec.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_'))
}

fn track(t: &Track) -> Result<(), CatalogError> {
    if t.name.is_empty() {
        return Err(bad("track name", "empty"));
    }
    text("track name", &t.name)?;
    let field = |f: &str| format!("track `{}` {f}", t.name.chars().take(64).collect::<String>());
    text(&field("packaging"), &t.packaging)?;
    opt_text(&field("namespace"), &t.namespace)?;
    opt_text(&field("role"), &t.role)?;
    opt_text(&field("channelConfig"), &t.channel_config)?;
    opt_text(&field("initRef"), &t.init_ref)?;
    opt_text(&field("parentName"), &t.parent_name)?;
    if t.codec.as_deref().is_some_and(|c| !valid_codec(c)) {
        return Err(bad(&field("codec"), "not a codec string"));
    }
    for (name, v) in [("width", t.width), ("height", t.height)] {
        if v.is_some_and(|v| v == 0 || v > MAX_DIMENSION) {
            return Err(bad(&field(name), "out of range"));
        }
    }
    if t.framerate.is_some_and(|f| !(f > 0.0 && f <= 1000.0)) {
        return Err(bad(&field("framerate"), "out of range"));
    }
    if t.samplerate.is_some_and(|s| s == 0 || s > 768_000) {
        return Err(bad(&field("samplerate"), "out of range"));
    }
    if t.timescale == Some(0) {
        return Err(bad(&field("timescale"), "zero"));
    }
    if t.init_data.as_ref().is_some_and(|d| d.len() > MAX_INIT_BYTES / 3 * 4 + 4) {
        return Err(bad(&field("initData"), "too large"));
    }
    Ok(())
}

/// Checks a whole catalog.
pub(crate) fn check(c: &Catalog) -> Result<(), CatalogError> {
    text("version", &c.version)?;
    if c.tracks.len() > MAX_TRACKS {
        return Err(bad("tracks", "too many"));
    }
    if c.init_data_list.len() > MAX_INIT_DATA {
        return Err(bad("initDataList", "too many"));
    }
    for (i, t) in c.tracks.iter().enumerate() {
        track(t)?;
        if c.tracks[..i].iter().any(|o| o.name == t.name && o.namespace == t.namespace) {
            return Err(bad("tracks", "a name twice"));
        }
    }
    for d in &c.init_data_list {
        text("initDataList id", &d.id)?;
        text("initDataList type", &d.kind)?;
        if d.data.len() > MAX_INIT_BYTES / 3 * 4 + 4 {
            return Err(bad("initDataList data", "too large"));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn catalog(track: serde_json::Value) -> Vec<u8> {
        serde_json::json!({ "version": "draft-01", "tracks": [track] }).to_string().into_bytes()
    }

    fn video(extra: serde_json::Value) -> serde_json::Value {
        let mut t = serde_json::json!({ "name": "video0", "packaging": "loc", "codec": "avc1.42e01f", "width": 640,
                                        "height": 360 });
        if let (Some(t), Some(e)) = (t.as_object_mut(), extra.as_object()) {
            t.extend(e.clone());
        }
        t
    }

    #[test]
    fn a_plain_catalog_passes() {
        assert!(Catalog::from_json(&catalog(video(serde_json::json!({ "framerate": 30, "unknown": [1, 2] })))).is_ok());
    }

    #[test]
    fn hostile_catalogs_are_refused() {
        let markup = r#"video0"><img src=x onerror="alert(1)">"#;
        let cases = [
            ("markup in a codec", video(serde_json::json!({ "codec": markup }))),
            ("a control character in a name", video(serde_json::json!({ "name": "a\u{7}b" }))),
            ("an empty name", video(serde_json::json!({ "name": "" }))),
            ("a huge name", video(serde_json::json!({ "name": "x".repeat(MAX_STRING + 1) }))),
            ("a zero width", video(serde_json::json!({ "width": 0 }))),
            ("a huge height", video(serde_json::json!({ "height": 100_000 }))),
            ("a negative framerate", video(serde_json::json!({ "framerate": -1 }))),
            ("a zero timescale", video(serde_json::json!({ "timescale": 0 }))),
            ("huge init data", video(serde_json::json!({ "initData": "A".repeat(2 << 20) }))),
        ];
        for (what, track) in cases {
            let r = Catalog::from_json(&catalog(track));
            assert!(matches!(r, Err(CatalogError::Limit(_))), "{what}: {r:?}");
        }
        // Wrong types fail to parse at all.
        assert!(Catalog::from_json(&catalog(video(serde_json::json!({ "width": "640" })))).is_err());
        let many: Vec<_> = (0..MAX_TRACKS + 1).map(|i| video(serde_json::json!({ "name": format!("v{i}") }))).collect();
        let json = serde_json::json!({ "version": "1", "tracks": many }).to_string();
        assert!(matches!(Catalog::from_json(json.as_bytes()), Err(CatalogError::Limit(_))));
        let twice = serde_json::json!({ "version": "1", "tracks": [video(serde_json::json!({})), video(serde_json::json!({}))] });
        assert!(matches!(Catalog::from_json(twice.to_string().as_bytes()), Err(CatalogError::Limit(_))));
        let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
        assert!(Catalog::from_json(deep.as_bytes()).is_err(), "deep nesting is an error, not a stack overflow");
    }

    #[test]
    fn a_delta_cannot_grow_a_catalog_past_the_bounds() {
        let base = Catalog::from_json(&catalog(video(serde_json::json!({})))).unwrap();
        let delta = serde_json::json!({ "deltaUpdate": [{ "op": "add", "tracks": [
            video(serde_json::json!({ "name": "v2", "codec": "<script>" })) ] }] });
        let r = Catalog::apply(Some(&base), delta.to_string().as_bytes());
        assert!(matches!(r, Err(CatalogError::Limit(_))), "{r:?}");
    }

    #[test]
    fn codec_strings() {
        for ok in ["avc1.42e01f", "opus", "mp4a.40.2", "vp09.00.10.08", "av01.0.04M.08"] {
            assert!(valid_codec(ok), "{ok}");
        }
        for bad in ["", ".avc", "avc1 42", "a<b", "x".repeat(65).as_str()] {
            assert!(!valid_codec(bad), "{bad}");
        }
    }
}
