//! Wire codecs: CloudEvents structured-mode JSON and MessagePack with named fields.
//!
//! The codec is chosen by the message's content type; JSON is the default when
//! there is none. Decoding is bounded (64 KiB) before any parsing, and a failure
//! is reported with the path of the offending field (`data.requests: invalid
//! type ...`), found by decoding a second time with path tracking only when the
//! fast path has already failed.

use super::envelope::Event;
use super::reject::Rejection;

/// Largest accepted encoded event, in bytes.
pub const MAX_EVENT_BYTES: usize = 64 * 1024;

/// An event encoding.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Codec {
    /// `application/cloudevents+json` or `application/json`.
    Json,
    /// `application/msgpack` (rmp-serde, named fields).
    MsgPack,
}

impl Codec {
    /// Picks the codec for a `Content-Type` header value (`None`: JSON).
    pub fn from_content_type(content_type: Option<&str>) -> Result<Self, Rejection> {
        let Some(ct) = content_type else {
            return Ok(Self::Json);
        };
        let essence = ct
            .split(';')
            .next()
            .unwrap_or("")
            .trim()
            .to_ascii_lowercase();
        match essence.as_str() {
            "" | "application/json" | "application/cloudevents+json" => Ok(Self::Json),
            "application/msgpack" | "application/x-msgpack" | "application/vnd.msgpack" => {
                Ok(Self::MsgPack)
            }
            _ => Err(Rejection::UnsupportedContentType {
                content_type: ct.to_owned(),
            }),
        }
    }

    /// The canonical content type.
    pub fn content_type(self) -> &'static str {
        match self {
            Self::Json => "application/cloudevents+json",
            Self::MsgPack => "application/msgpack",
        }
    }

    /// Decodes one event (no semantic validation; see [`super::validate`]).
    pub fn decode(self, bytes: &[u8]) -> Result<Event, Rejection> {
        if bytes.len() > MAX_EVENT_BYTES {
            return Err(Rejection::TooLarge {
                size: bytes.len(),
                limit: MAX_EVENT_BYTES,
            });
        }
        let fast = match self {
            Self::Json => serde_json::from_slice::<Event>(bytes).map_err(|_| ()),
            Self::MsgPack => rmp_serde::from_slice::<Event>(bytes).map_err(|_| ()),
        };
        fast.map_err(|()| self.explain(bytes))
    }

    /// Re-decodes with path tracking to say where the input went wrong.
    fn explain(self, bytes: &[u8]) -> Rejection {
        let (path, message) = match self {
            Self::Json => {
                let mut de = serde_json::Deserializer::from_slice(bytes);
                match serde_path_to_error::deserialize::<_, Event>(&mut de) {
                    Ok(_) => return Rejection::malformed("", "trailing data after the event"),
                    Err(e) => (e.path().to_string(), e.into_inner().to_string()),
                }
            }
            Self::MsgPack => {
                let mut de = rmp_serde::Deserializer::from_read_ref(bytes);
                match serde_path_to_error::deserialize::<_, Event>(&mut de) {
                    Ok(_) => return Rejection::malformed("", "could not decode"),
                    Err(e) => (e.path().to_string(), e.into_inner().to_string()),
                }
            }
        };
        let path = if path == "." { String::new() } else { path };
        if message.starts_with("unknown type") {
            return Rejection::UnknownType { message };
        }
        Rejection::malformed(&path, &message)
    }

    /// Encodes one event.
    pub fn encode(self, event: &Event) -> Vec<u8> {
        match self {
            Self::Json => serde_json::to_vec(event).expect("events always serialise to JSON"),
            Self::MsgPack => {
                rmp_serde::to_vec_named(event).expect("events always serialise to msgpack")
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"{"specversion":"1.0","id":"e1","source":"t","type":"faultline.request","subject":"checkout","time":"2026-01-01T00:00:00Z","data":{"status":503,"latency_ms":12.5}}"#;

    #[test]
    fn json_and_msgpack_agree() {
        let e = Codec::Json.decode(GOOD.as_bytes()).unwrap();
        let packed = Codec::MsgPack.encode(&e);
        assert_eq!(Codec::MsgPack.decode(&packed).unwrap(), e);
        assert_eq!(Codec::Json.decode(&Codec::Json.encode(&e)).unwrap(), e);
    }

    #[test]
    fn data_before_type_is_accepted() {
        let text = r#"{"data":{"status":200},"specversion":"1.0","id":"e1","source":"t","type":"faultline.request","subject":"a","time":"2026-01-01T00:00:00Z"}"#;
        let e = Codec::Json.decode(text.as_bytes()).unwrap();
        assert_eq!(e.event_type().name(), "faultline.request");
    }

    #[test]
    fn errors_name_the_field() {
        let bad = GOOD.replace("\"status\":503", "\"status\":\"x\"");
        let err = Codec::Json.decode(bad.as_bytes()).unwrap_err().to_string();
        assert!(err.contains("data.status"), "{err}");
        let bad = GOOD.replace("latency_ms", "latency");
        let err = Codec::Json.decode(bad.as_bytes()).unwrap_err().to_string();
        assert!(err.contains("unknown field `latency`"), "{err}");
        let bad = GOOD.replace("faultline.request", "faultline.bogus");
        let err = Codec::Json.decode(bad.as_bytes()).unwrap_err();
        assert_eq!(err.reason(), "unknown_type");
        assert!(err.to_string().contains("faultline.bogus"), "{err}");
    }

    #[test]
    fn oversized_payload_is_rejected_before_parsing() {
        let big = vec![b' '; MAX_EVENT_BYTES + 1];
        assert_eq!(Codec::Json.decode(&big).unwrap_err().reason(), "too_large");
    }

    #[test]
    fn content_types() {
        assert_eq!(Codec::from_content_type(None).unwrap(), Codec::Json);
        assert_eq!(
            Codec::from_content_type(Some("application/msgpack")).unwrap(),
            Codec::MsgPack
        );
        assert_eq!(
            Codec::from_content_type(Some("application/cloudevents+json; charset=utf-8")).unwrap(),
            Codec::Json
        );
        assert!(Codec::from_content_type(Some("text/xml")).is_err());
    }
}
