//! SSE decoding of arbitrary bytes: never panics, and cutting the input into
//! pieces (at places the input itself chooses) never changes the events.
#![no_main]

use libfuzzer_sys::fuzz_target;
use llmgate::sse::SseDecoder;

fn decode(chunks: &[&[u8]]) -> Result<Vec<llmgate::sse::SseEvent>, llmgate::sse::SseError> {
    let mut decoder = SseDecoder::with_max_event_size(1 << 16);
    let mut out = Vec::new();
    for chunk in chunks {
        decoder.feed(chunk, &mut out)?;
    }
    decoder.finish(&mut out)?;
    Ok(out)
}

fuzz_target!(|data: &[u8]| {
    if data.is_empty() {
        return;
    }
    // The first byte picks the piece size.
    let size = 1 + data[0] as usize % 17;
    let body = &data[1..];
    let whole = decode(&[body]);
    let pieces: Vec<&[u8]> = body.chunks(size).collect();
    let split = decode(&pieces);
    if let (Ok(whole), Ok(split)) = (&whole, &split) {
        assert_eq!(whole, split);
    }
    assert_eq!(whole.is_ok(), split.is_ok());
});
