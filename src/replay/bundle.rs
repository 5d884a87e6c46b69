//! Incident bundles: a slice of the log plus everything needed to replay it
//! elsewhere: the policy text in force, the selection, and each agent's
//! state just before the slice (so the slice replays without the log before
//! it).
//!
//! Layout: the line `FAULTLINE-BUNDLE 1`, a msgpack header, one msgpack
//! binary per agent snapshot, then records as `[seq, bin]` (the record's
//! msgpack) or `[seq, nil]` (a record a live node refused), then a single
//! msgpack `nil` that ends the bundle: a copy cut short anywhere, even
//! between two records, is refused rather than replayed as a shorter slice.
//! Written and read as a stream: a bundle of any size needs constant memory.

use std::io::{BufRead, BufWriter, Read, Seek, Write};

use serde::{Deserialize, Serialize};

use super::range::Selection;
use crate::log::{Seq, Snapshot};

/// The first line of every bundle.
pub const MAGIC: &[u8] = b"FAULTLINE-BUNDLE 1\n";

/// The last byte of every bundle (msgpack `nil`; records are arrays).
const END: u8 = 0xc0;

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
    /// The file ends inside a record.
    #[error("the bundle ends after record #{after}, before its end mark: it was cut short (an unfinished copy?)")]
    Truncated {
        /// The last whole record's sequence (0: none).
        after: Seq,
    },
}

fn bad(e: impl std::fmt::Display) -> BundleError {
    BundleError::Format(e.to_string())
}

/// rmp's read errors: I/O stays I/O (so that the end of the file is seen as such).
fn value_err(e: rmp::decode::ValueReadError) -> BundleError {
    use rmp::decode::ValueReadError::{InvalidDataRead, InvalidMarkerRead};
    match e {
        InvalidMarkerRead(io) | InvalidDataRead(io) => BundleError::Io(io),
        other => bad(other),
    }
}

fn num_err(e: rmp::decode::NumValueReadError) -> BundleError {
    use rmp::decode::NumValueReadError::{InvalidDataRead, InvalidMarkerRead};
    match e {
        InvalidMarkerRead(io) | InvalidDataRead(io) => BundleError::Io(io),
        other => bad(other),
    }
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

    /// Flushes, cuts the records after the last mark, ends the bundle there
    /// and returns the file's length.
    pub fn finish(
        self,
        truncate: impl FnOnce(W, u64) -> std::io::Result<()>,
    ) -> Result<u64, BundleError> {
        let mut inner = self
            .out
            .into_inner()
            .map_err(|e| BundleError::Io(e.into_error()))?;
        inner.seek(std::io::SeekFrom::Start(self.mark))?;
        inner.write_all(&[END])?;
        inner.flush()?;
        truncate(inner, self.mark + 1)?;
        Ok(self.mark + 1)
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
    /// The last record read.
    last: Seq,
    /// The end was read.
    ended: bool,
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
            last: 0,
            ended: false,
        })
    }

    /// The next record: its sequence and msgpack (`None`: refused), or `None` at the end.
    pub fn next_record(&mut self) -> Result<Option<BundleRecord>, BundleError> {
        if self.ended {
            return Ok(None);
        }
        match self.input.fill_buf()?.first() {
            None => return Err(BundleError::Truncated { after: self.last }),
            Some(&END) => {
                self.input.consume(1);
                self.ended = true;
                return Ok(None);
            }
            Some(_) => {}
        }
        let record = self.record().map_err(|e| match e {
            BundleError::Io(io) if io.kind() == std::io::ErrorKind::UnexpectedEof => {
                BundleError::Truncated { after: self.last }
            }
            other => other,
        })?;
        self.last = record.0;
        Ok(Some(record))
    }

    fn record(&mut self) -> Result<BundleRecord, BundleError> {
        let n = rmp::decode::read_array_len(&mut self.input).map_err(value_err)?;
        if n != 2 {
            return Err(bad(format!("a record has {n} fields, not 2")));
        }
        let seq: Seq = rmp::decode::read_int(&mut self.input).map_err(num_err)?;
        Ok((seq, read_bin(&mut self.input)?))
    }
}

fn read_bin(input: &mut impl Read) -> Result<Option<Vec<u8>>, BundleError> {
    use rmp::decode::RmpRead;
    use rmp::Marker;
    let len = match rmp::decode::read_marker(input).map_err(|e| BundleError::Io(e.0))? {
        Marker::Null => return Ok(None),
        Marker::Bin8 => u32::from(input.read_data_u8().map_err(value_err)?),
        Marker::Bin16 => u32::from(input.read_data_u16().map_err(value_err)?),
        Marker::Bin32 => input.read_data_u32().map_err(value_err)?,
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
    fn a_bundle_cut_short_says_so_and_where() {
        let header = Header {
            source: "test".into(),
            policy: String::new(),
            policy_hash: "abc".into(),
            selection: Selection::default(),
            incident: None,
            first_seq: 5,
            lanes: vec![],
        };
        let mut w = Writer::new(Cursor::new(Vec::new()), &header, &[]).unwrap();
        w.record(5, Some(b"\x80")).unwrap();
        w.record(6, Some(&[0x81; 40])).unwrap();
        w.mark();
        let mut kept = Vec::new();
        w.finish(|c, _| {
            kept = c.into_inner();
            Ok(())
        })
        .unwrap();
        // Record 6 takes 44 bytes, the end mark 1.
        for (cut, after) in [(1, 6), (2, 5), (20, 5), (44, 5), (45, 5)] {
            let mut r = Reader::open(Cursor::new(kept[..kept.len() - cut].to_vec())).unwrap();
            let e = loop {
                match r.next_record() {
                    Ok(Some(_)) => {}
                    Ok(None) => panic!("cut by {cut}: read to the end"),
                    Err(e) => break e,
                }
            };
            assert!(
                matches!(e, BundleError::Truncated { after: a } if a == after),
                "cut by {cut}: {e}"
            );
        }
    }

    #[test]
    fn other_files_are_refused() {
        let e = Reader::open(Cursor::new(b"{\"json\": true}\n".to_vec()))
            .err()
            .unwrap();
        assert!(e.to_string().contains("FAULTLINE-BUNDLE"), "{e}");
    }
}
