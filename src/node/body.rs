//! Splitting an HTTP ingest body into events, by content type.
//!
//! - `application/json`, `application/cloudevents+json`,
//!   `application/cloudevents-batch+json` (or no header): a JSON array of
//!   events, or one event, or several objects one after another;
//! - `application/x-ndjson`, `application/jsonl`, `application/json-lines`:
//!   one event per line (blank lines ignored);
//! - `application/msgpack`: concatenated msgpack events (named fields).
//!
//! Each item is decoded and validated on its own, so one bad event is
//! reported by its index and the rest still go in.

use serde_json::value::RawValue;

use crate::events::{decode_input, Codec, Event, Rejection};
use crate::process::frame_len;

/// One item of a body: the event, or why it was refused; with its bytes.
pub struct Item {
    /// Decoded and validated, or the reason it was not.
    pub event: Result<Event, Rejection>,
    /// The item's bytes as received.
    pub bytes: Vec<u8>,
}

/// How a body is framed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Framing {
    /// JSON: an array, one object, or objects one after another.
    Json,
    /// One JSON event per line.
    Lines,
    /// Concatenated msgpack values.
    MsgPack,
}

/// The framing a `Content-Type` names.
pub fn framing(content_type: Option<&str>) -> Result<Framing, Rejection> {
    let Some(ct) = content_type else {
        return Ok(Framing::Json);
    };
    let base = ct
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    match base.as_str() {
        ""
        | "application/json"
        | "application/cloudevents+json"
        | "application/cloudevents-batch+json" => Ok(Framing::Json),
        "application/x-ndjson"
        | "application/jsonl"
        | "application/json-lines"
        | "application/x-jsonlines" => Ok(Framing::Lines),
        "application/msgpack" | "application/x-msgpack" | "application/vnd.msgpack" => {
            Ok(Framing::MsgPack)
        }
        _ => Err(Rejection::UnsupportedContentType {
            content_type: ct.to_owned(),
        }),
    }
}

/// Splits and decodes `body`. `Err` when the body cannot be framed at all.
pub fn split(framing: Framing, body: &[u8]) -> Result<Vec<Item>, Rejection> {
    let item = |codec: Codec, bytes: &[u8]| Item {
        event: decode_input(codec, bytes),
        bytes: bytes.to_vec(),
    };
    match framing {
        Framing::Json => {
            let trimmed = body.trim_ascii_start();
            if trimmed.first() == Some(&b'[') {
                let values: Vec<&RawValue> = serde_json::from_slice(trimmed).map_err(|e| {
                    Rejection::malformed("", &format!("body is not a JSON array of events: {e}"))
                })?;
                return Ok(values
                    .iter()
                    .map(|v| item(Codec::Json, v.get().as_bytes()))
                    .collect());
            }
            let mut out = Vec::new();
            for v in serde_json::Deserializer::from_slice(body).into_iter::<&RawValue>() {
                let v =
                    v.map_err(|e| Rejection::malformed("", &format!("body is not JSON: {e}")))?;
                out.push(item(Codec::Json, v.get().as_bytes()));
            }
            Ok(out)
        }
        Framing::Lines => Ok(body
            .split(|b| *b == b'\n')
            .filter(|l| !l.iter().all(u8::is_ascii_whitespace))
            .map(|l| item(Codec::Json, l))
            .collect()),
        Framing::MsgPack => {
            let mut out = Vec::new();
            let mut offset = 0;
            while offset < body.len() {
                let len = frame_len(&body[offset..]).map_err(|m| {
                    Rejection::malformed(
                        "",
                        &format!("msgpack item {} at byte {offset}: {m}", out.len()),
                    )
                })?;
                out.push(item(Codec::MsgPack, &body[offset..offset + len]));
                offset += len;
            }
            Ok(out)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"{"specversion":"1.0","id":"a","source":"t","type":"faultline.window","subject":"api","time":"2026-03-01T12:00:00Z","data":{"interval_ms":10000,"requests":10,"errors":1}}"#;
    const BAD: &str = r#"{"specversion":"1.0","id":"b","source":"t","type":"faultline.request","subject":"api","time":"2026-03-01T12:00:00Z","data":{"status":1000}}"#;

    fn outcome(items: &[Item]) -> Vec<bool> {
        items.iter().map(|i| i.event.is_ok()).collect()
    }

    #[test]
    fn json_array_single_object_and_concatenation() {
        let array = format!("[{GOOD},{BAD}]");
        assert_eq!(
            outcome(&split(Framing::Json, array.as_bytes()).unwrap()),
            [true, false]
        );
        assert_eq!(
            outcome(&split(Framing::Json, GOOD.as_bytes()).unwrap()),
            [true]
        );
        let two = format!("{GOOD}\n{BAD}\n");
        assert_eq!(
            outcome(&split(Framing::Json, two.as_bytes()).unwrap()),
            [true, false]
        );
    }

    #[test]
    fn lines_keep_going_past_a_bad_line() {
        let body = format!("{GOOD}\n\nnot json\n{BAD}\n{GOOD}");
        assert_eq!(
            outcome(&split(Framing::Lines, body.as_bytes()).unwrap()),
            [true, false, false, true]
        );
    }

    #[test]
    fn msgpack_items() {
        let e = decode_input(Codec::Json, GOOD.as_bytes()).unwrap();
        let mut body = Codec::MsgPack.encode(&e);
        body.extend(Codec::MsgPack.encode(&e));
        assert_eq!(
            outcome(&split(Framing::MsgPack, &body).unwrap()),
            [true, true]
        );
        assert!(split(Framing::MsgPack, &[0xc1]).is_err());
    }

    #[test]
    fn content_types() {
        assert_eq!(framing(None).unwrap(), Framing::Json);
        assert_eq!(
            framing(Some("application/json; charset=utf-8")).unwrap(),
            Framing::Json
        );
        assert_eq!(
            framing(Some("application/x-ndjson")).unwrap(),
            Framing::Lines
        );
        assert_eq!(
            framing(Some("application/msgpack")).unwrap(),
            Framing::MsgPack
        );
        let err = framing(Some("text/csv")).unwrap_err();
        assert_eq!(err.reason(), "content_type");
    }

    #[test]
    fn unframeable_json_is_one_error() {
        assert!(split(Framing::Json, b"[{\"a\":").is_err());
    }
}
