//! A compact binary form of one item's co-visitation links, for handing
//! many items' ragged link lists to a single SQL statement as a `bytea[]`
//! (one element per item) instead of text array literals, whose formatting
//! and parsing were a large share of a single-row insert.
//!
//! Layout, repeated per link: key length (u32 LE), key bytes (UTF-8),
//! weight (f32 LE).

/// Packs (key, weight) pairs.
pub fn encode<'a>(links: impl IntoIterator<Item = (&'a str, f32)>) -> Vec<u8> {
    let mut out = Vec::new();
    for (key, weight) in links {
        out.extend_from_slice(&(key.len() as u32).to_le_bytes());
        out.extend_from_slice(key.as_bytes());
        out.extend_from_slice(&weight.to_le_bytes());
    }
    out
}

/// Unpacks what `encode` wrote; None if the bytes are not such a list.
pub fn decode(mut bytes: &[u8]) -> Option<Vec<(&str, f32)>> {
    let mut out = Vec::new();
    while !bytes.is_empty() {
        let len = u32::from_le_bytes(bytes.get(..4)?.try_into().ok()?) as usize;
        let key = std::str::from_utf8(bytes.get(4..4 + len)?).ok()?;
        let weight = f32::from_le_bytes(bytes.get(4 + len..8 + len)?.try_into().ok()?);
        out.push((key, weight));
        bytes = &bytes[8 + len..];
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_rejects_garbage() {
        let links = [("42", 1.5f32), ("", 0.0), ("ünï \"q\"", -2.25e-30)];
        let packed = encode(links.iter().copied());
        assert_eq!(decode(&packed).unwrap(), links.to_vec());
        assert_eq!(decode(&[]).unwrap(), vec![]);
        assert!(decode(&packed[..packed.len() - 1]).is_none(), "truncated");
        assert!(decode(&[9, 0, 0, 0, b'a']).is_none(), "length past the end");
        assert!(
            decode(&[1, 0, 0, 0, 0xff, 0, 0, 0, 0]).is_none(),
            "not UTF-8"
        );
    }
}
