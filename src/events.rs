//! The event contract: envelope, observation and decision types, codecs,
//! validation and subjects. This is the public interface for publishers in any
//! language; `schemas/` holds its JSON Schemas, generated from these types.

pub mod codec;
pub mod decision;
pub mod envelope;
pub mod observation;
pub mod reject;
pub mod subject;
pub mod summary;
pub mod time;
pub mod validate;

pub use codec::Codec;
pub use envelope::{Data, Event, EventType};
pub use reject::Rejection;
pub use time::Timestamp;

/// Decodes and validates one input event: what every ingest path does.
pub fn decode_input(codec: Codec, bytes: &[u8]) -> Result<Event, Rejection> {
    let event = codec.decode(bytes)?;
    validate::validate_input(&event)?;
    Ok(event)
}
