//! Incident bundles: a slice of the log plus everything needed to replay it
//! elsewhere: the policy text in force, the selection, and each agent's
//! state just before the slice (so the slice replays without the log before
//! it).
//!
//! Layout: the line `FAULTLINE-BUNDLE 1`, a msgpack header, one msgpack
//! binary per agent snapshot, then records as `[seq, bin]` (the record's
//! msgpack) or `[seq, nil]` (a record a live node refused), to the end of
//! the file. Written and read as a stream: a bundle of any size needs
//! constant memory.

use std::io::{BufRead, BufWriter, Read, Seek, Write};

use serde::{Deserialize, Serialize};

use super::range::Selection;
use crate::log::{Seq, Snapshot};

/// The first line of every bundle.
pub const MAGIC: &[u8] = b"FAULTLINE-BUNDLE 1\n";

/// What a bundle says about itself.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Header {
    /// Where the slice was cut from.
    pub source: String,
    /// The policy file's text in force (empty: built-in defaults).
    pub policy: String,
    /// Its hash.
    pub policy_hash: String,
    /// The selection the bundle was cut for.
    pub selection: Selection,
    /// The incident, when cut for one.
    pub incident: Option<String>,
    /// The first record in the bundle.
    pub first_seq: Seq,
    /// Agents whose snapshots follow, with the sequence each covers.
    pub lanes: Vec<(String, Seq)>,
}

/// What can go wrong with a bundle.
#[derive(Debug, thiserror::Error)]
pub enum BundleError {
    /// Reading or writing failed.
    #[error("bundle i/o: {0}")]
    Io(#[from] std::io::Error),
    /// Not a bundle, or damaged.
    #[error("not a faultline bundle, or damaged: {0}")]
    Format(String),
}

fn bad(e: impl std::fmt::Display) -> BundleError {
    BundleError::Format(e.to_string())
}

/// Writes a bundle; records after the last [`Writer::mark`] are cut off at the end.
pub struct Writer<W: Write + Seek> {
    out: BufWriter<W>,
    written: u64,
    mark: u64,
}

struct Counting<'a, W: Write>(&'a mut BufWriter<W>, &'a mut u64);

impl<W: Write> Write for Counting<'_, W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.0.write(buf)?;
        *self.1 += n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.0.flush()
    }
}

impl<W: Write + Seek> Writer<W> {
    /// Starts a bundle with its header and the agents' snapshots.
    pub fn new(
        out: W,
        header: &Header,
        snapshots: &[(String, Snapshot)],
    ) -> Result<Self, BundleError> {
        let mut w = Self {
            out: BufWriter::with_capacity(1 << 16, out),
            written: 0,
            mark: 0,
        };
        let mut c = Counting(&mut w.out, &mut w.written);
        c.write_all(MAGIC)?;
        rmp_serde::encode::write_named(&mut c, header).map_err(bad)?;
        for (_, s) in snapshots {
            rmp::encode::write_bin(&mut c, &s.bytes).map_err(bad)?;
        }
        w.mark = w.written;
        Ok(w)
    }

    /// Appends the record at `seq` (its msgpack, or `None` for a refused one).
    pub fn record(&mut self, seq: Seq, msgpack: Option<&[u8]>) -> Result<(), BundleError> {
        let mut c = Counting(&mut self.out, &mut self.written);
        rmp::encode::write_array_len(&mut c, 2).map_err(bad)?;
        rmp::encode::write_uint(&mut c, seq).map_err(bad)?;
        match msgpack {
            Some(b) => rmp::encode::write_bin(&mut c, b).map_err(bad)?,
            None => rmp::encode::write_nil(&mut c).map_err(bad)?,
        }
        Ok(())
    }

    /// The bundle keeps everything written so far.
    pub fn mark(&mut self) {
        self.mark = self.written;
    }

    /// Flushes, cuts the records after the last mark, and returns the file's length.
    pub fn finish(
        self,
        truncate: impl FnOnce(W, u64) -> std::io::Result<()>,
    ) -> Result<u64, BundleError> {
        let inner = self
            .out
            .into_inner()
            .map_err(|e| BundleError::Io(e.into_error()))?;
        truncate(inner, self.mark)?;
        Ok(self.mark)
    }
}

/// A record in a bundle: its sequence and msgpack (`None`: refused by the node).
pub type BundleRecord = (Seq, Option<Vec<u8>>);

/// Reads a bundle.
pub struct Reader<R: BufRead> {
    input: R,
    /// The header.
    pub header: Header,
    /// Each agent's snapshot.
    pub snapshots: Vec<(String, Snapshot)>,
}

impl<R: BufRead> Reader<R> {
    /// Reads the header and snapshots.
    pub fn open(mut input: R) -> Result<Self, BundleError> {
        let mut magic = vec![0u8; MAGIC.len()];
        if input.read_exact(&mut magic).is_err() || magic != MAGIC {
            return Err(bad("it does not start with FAULTLINE-BUNDLE 1"));
        }
        let header: Header = rmp_serde::from_read(&mut input).map_err(bad)?;
        let mut snapshots = Vec::new();
        for (agent, covers) in &header.lanes {
            let bytes = read_bin(&mut input)?.ok_or_else(|| bad("a snapshot is missing"))?;
            snapshots.push((
                agent.clone(),
                Snapshot {
                    covers: *covers,
                    bytes,
                },
            ));
        }
        Ok(Self {
            input,
            header,
            snapshots,
        })
    }

    /// The next record: its sequence and msgpack (`None`: refused), or `None` at the end.
    pub fn next_record(&mut self) -> Result<Option<BundleRecord>, BundleError> {
        if self.input.fill_buf()?.is_empty() {
            return Ok(None);
        }
        let n = rmp::decode::read_array_len(&mut self.input).map_err(bad)?;
        if n != 2 {
            return Err(bad(format!("a record has {n} fields, not 2")));
        }
        let seq: Seq = rmp::decode::read_int(&mut self.input).map_err(bad)?;
        Ok(Some((seq, read_bin(&mut self.input)?)))
    }
}

fn read_bin(input: &mut impl Read) -> Result<Option<Vec<u8>>, BundleError> {
    use rmp::Marker;
    let len = match rmp::decode::read_marker(input).map_err(|e| bad(format!("{e:?}")))? {
        Marker::Null => return Ok(None),
        Marker::Bin8 => u32::from(rmp::decode::RmpRead::read_data_u8(input).map_err(bad)?),
        Marker::Bin16 => u32::from(rmp::decode::RmpRead::read_data_u16(input).map_err(bad)?),
        Marker::Bin32 => rmp::decode::RmpRead::read_data_u32(input).map_err(bad)?,
        other => return Err(bad(format!("expected binary data, found {other:?}"))),
    };
    let mut buf = vec![0u8; len as usize];
    input.read_exact(&mut buf)?;
    Ok(Some(buf))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Cursor;

    #[test]
    fn a_bundle_round_trips_and_is_cut_at_the_last_mark() {
        let header = Header {
            source: "test".into(),
            policy: "agents = [\"breaker\"]\n".into(),
            policy_hash: "abc".into(),
            selection: Selection::default(),
            incident: Some("INC-1".into()),
            first_seq: 5,
            lanes: vec![("breaker".into(), 4)],
        };
        let snaps = vec![(
            "breaker".to_owned(),
            Snapshot {
                covers: 4,
                bytes: vec![7; 300],
            },
        )];
        let mut w = Writer::new(Cursor::new(Vec::new()), &header, &snaps).unwrap();
        w.record(5, Some(b"\x80")).unwrap();
        w.record(6, None).unwrap();
        w.mark();
        w.record(7, Some(b"\x81")).unwrap();
        let mut kept = Vec::new();
        w.finish(|c, len| {
            kept = c.into_inner();
            kept.truncate(len as usize);
            Ok(())
        })
        .unwrap();
        let mut r = Reader::open(Cursor::new(kept)).unwrap();
        assert_eq!(r.header, header);
        assert_eq!(r.snapshots, snaps);
        assert_eq!(r.next_record().unwrap(), Some((5, Some(b"\x80".to_vec()))));
        assert_eq!(r.next_record().unwrap(), Some((6, None)));
        assert_eq!(r.next_record().unwrap(), None);
    }

    #[test]
    fn other_files_are_refused() {
        let e = Reader::open(Cursor::new(b"{\"json\": true}\n".to_vec()))
            .err()
            .unwrap();
        assert!(e.to_string().contains("FAULTLINE-BUNDLE"), "{e}");
    }
}
