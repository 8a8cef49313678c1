//! A publisher's MSF catalog: no input panics; a catalog that is accepted is within the bounds and survives a
//! round trip through its JSON.
#![no_main]

use libfuzzer_sys::fuzz_target;
use moq_media::catalog::Catalog;

fuzz_target!(|data: &[u8]| {
    let base = Catalog::from_json(br#"{"version":"draft-01","tracks":[{"name":"video0","packaging":"loc"}]}"#)
        .expect("the base catalog parses");
    for current in [None, Some(&base)] {
        if let Ok(catalog) = Catalog::apply(current, data) {
            let again = Catalog::from_json(catalog.to_json().as_bytes()).expect("an accepted catalog re-parses");
            assert_eq!(again.tracks.len(), catalog.tracks.len());
            assert!(catalog.tracks.len() <= moq_media::catalog_limits::MAX_TRACKS);
            for t in &catalog.tracks {
                assert!(t.codec.as_deref().is_none_or(moq_media::catalog_limits::valid_codec));
            }
        }
    }
});
