//! Framing of concatenated msgpack values.
//!
//! A msgpack stream has no delimiters, so a record that fails to decode as an
//! event would otherwise leave the reader lost. Measuring each value's extent
//! from its markers first lets a bad record be reported and skipped like a bad
//! JSON line; only bytes that are not msgpack at all stop the stream.

use rmp::Marker;

/// Deepest nesting accepted.
const MAX_DEPTH: usize = 64;

/// Length in bytes of the msgpack value at the start of `buf`.
pub fn frame_len(buf: &[u8]) -> Result<usize, String> {
    let mut pos = 0;
    skip(buf, &mut pos, 0)?;
    Ok(pos)
}

fn take(buf: &[u8], pos: &mut usize, n: usize) -> Result<u64, String> {
    let end = pos
        .checked_add(n)
        .filter(|&e| e <= buf.len())
        .ok_or("truncated value")?;
    let v = buf[*pos..end]
        .iter()
        .fold(0u64, |acc, b| (acc << 8) | u64::from(*b));
    *pos = end;
    Ok(v)
}

fn bytes(buf: &[u8], pos: &mut usize, n: u64) -> Result<(), String> {
    let n = usize::try_from(n).map_err(|_| "length overflows")?;
    take_span(buf, pos, n)
}

fn take_span(buf: &[u8], pos: &mut usize, n: usize) -> Result<(), String> {
    let end = pos
        .checked_add(n)
        .filter(|&e| e <= buf.len())
        .ok_or("truncated value")?;
    *pos = end;
    Ok(())
}

fn skip(buf: &[u8], pos: &mut usize, depth: usize) -> Result<(), String> {
    if depth > MAX_DEPTH {
        return Err(format!("nested deeper than {MAX_DEPTH}"));
    }
    let marker = Marker::from_u8(take(buf, pos, 1)? as u8);
    let items = |n: u64, buf: &[u8], pos: &mut usize| -> Result<(), String> {
        (0..n).try_for_each(|_| skip(buf, pos, depth + 1))
    };
    match marker {
        Marker::FixPos(_) | Marker::FixNeg(_) | Marker::Null | Marker::True | Marker::False => {
            Ok(())
        }
        Marker::U8 | Marker::I8 => take_span(buf, pos, 1),
        Marker::U16 | Marker::I16 => take_span(buf, pos, 2),
        Marker::U32 | Marker::I32 | Marker::F32 => take_span(buf, pos, 4),
        Marker::U64 | Marker::I64 | Marker::F64 => take_span(buf, pos, 8),
        Marker::FixStr(n) => bytes(buf, pos, u64::from(n)),
        Marker::Str8 | Marker::Bin8 => {
            let n = take(buf, pos, 1)?;
            bytes(buf, pos, n)
        }
        Marker::Str16 | Marker::Bin16 => {
            let n = take(buf, pos, 2)?;
            bytes(buf, pos, n)
        }
        Marker::Str32 | Marker::Bin32 => {
            let n = take(buf, pos, 4)?;
            bytes(buf, pos, n)
        }
        Marker::FixArray(n) => items(u64::from(n), buf, pos),
        Marker::Array16 => {
            let n = take(buf, pos, 2)?;
            items(n, buf, pos)
        }
        Marker::Array32 => {
            let n = take(buf, pos, 4)?;
            items(n, buf, pos)
        }
        Marker::FixMap(n) => items(2 * u64::from(n), buf, pos),
        Marker::Map16 => {
            let n = take(buf, pos, 2)?;
            items(2 * n, buf, pos)
        }
        Marker::Map32 => {
            let n = take(buf, pos, 4)?;
            items(2 * n, buf, pos)
        }
        Marker::FixExt1 => take_span(buf, pos, 2),
        Marker::FixExt2 => take_span(buf, pos, 3),
        Marker::FixExt4 => take_span(buf, pos, 5),
        Marker::FixExt8 => take_span(buf, pos, 9),
        Marker::FixExt16 => take_span(buf, pos, 17),
        Marker::Ext8 => {
            let n = take(buf, pos, 1)?;
            bytes(buf, pos, n + 1)
        }
        Marker::Ext16 => {
            let n = take(buf, pos, 2)?;
            bytes(buf, pos, n + 1)
        }
        Marker::Ext32 => {
            let n = take(buf, pos, 4)?;
            bytes(buf, pos, n + 1)
        }
        Marker::Reserved => Err("byte 0xc1 is not msgpack".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_values_of_every_shape() {
        let v = serde_json::json!({"a": [1, -1, 300, 70000, 5_000_000_000u64, 1.5, null, true, "x".repeat(40), "y".repeat(300)], "b": {"c": {}}});
        let one = rmp_serde::to_vec_named(&v).unwrap();
        let mut two = one.clone();
        two.extend_from_slice(&one);
        assert_eq!(frame_len(&two).unwrap(), one.len());
        assert!(frame_len(&one[..one.len() - 1]).is_err());
        assert!(frame_len(&[0xc1]).is_err());
    }
}
