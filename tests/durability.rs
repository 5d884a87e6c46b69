//! Durability of the sled log under `kill -9`.
//!
//! A child process (this test binary, re-executed) appends batches with
//! `Durability::Sync` and prints the last sequence of each batch once
//! `append` has returned: that line is the acknowledgement. The parent kills
//! the child with SIGKILL after a varying number of acknowledgements (so at
//! varying points inside sled's write path), reopens the log, and checks that
//! every acknowledged record is there, that sequences are contiguous from 1,
//! and that every record decodes to what was written. Twenty rounds share one
//! directory, so later rounds also test recovery of a log that was killed
//! before.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use faultline::events::{Data, Event, Timestamp};
use faultline::log::{read_all, Durability, EventLog, SledLog};

const CHILD_ENV: &str = "FAULTLINE_DURABILITY_CHILD";

fn record(seq_hint: u64, i: usize) -> Event {
    Event {
        id: format!("r{seq_hint}-{i}"),
        source: "durability".into(),
        subject: "svc".into(),
        time: Timestamp::from_millis(seq_hint as i64),
        datacontenttype: None,
        causeseq: None,
        causeid: None,
        data: Data::Tick(Default::default()),
    }
}

/// The child: append forever, acknowledging each batch on stdout.
#[test]
fn child_appender() {
    let Some(dir) = std::env::var_os(CHILD_ENV) else {
        return;
    };
    let mut log = SledLog::open(std::path::Path::new(&dir), Durability::Sync).unwrap();
    loop {
        let next = log.last_seq() + 1;
        let batch: Vec<Event> = (0..(next % 4 + 1) as usize)
            .map(|i| record(next, i))
            .collect();
        let range = log.append(&batch).unwrap();
        println!("ack {}", range.end());
    }
}

#[test]
fn acknowledged_records_survive_sigkill() {
    let dir = tempfile::tempdir().unwrap();
    let exe = std::env::current_exe().unwrap();
    let mut acked_total = 0;
    for round in 0..20u64 {
        let mut child = Command::new(&exe)
            .args([
                "--exact",
                "child_appender",
                "--nocapture",
                "--test-threads",
                "1",
            ])
            .env(CHILD_ENV, dir.path())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let wanted = 1 + (round * 7919) % 40;
        let mut acked = 0;
        let mut seen = 0;
        for line in BufReader::new(stdout).lines() {
            let line = line.unwrap();
            if let Some(n) = line.strip_prefix("ack ") {
                acked = n.trim().parse::<u64>().unwrap();
                seen += 1;
                if seen >= wanted {
                    break;
                }
            }
        }
        child.kill().unwrap(); // SIGKILL on Unix
        child.wait().unwrap();
        assert!(acked > 0, "round {round}: the child acknowledged nothing");

        let log = SledLog::open(dir.path(), Durability::Sync).unwrap();
        assert!(
            log.last_seq() >= acked,
            "round {round}: acknowledged {acked}, log ends at {}",
            log.last_seq()
        );
        let records = read_all(&log, 1).unwrap();
        assert_eq!(
            records.len() as u64,
            log.last_seq(),
            "round {round}: records are not contiguous from 1"
        );
        // Each batch starting at `first` holds `first % 4 + 1` records named r<first>-<i>.
        let mut seq = 1;
        while seq <= log.last_seq() {
            let n = seq % 4 + 1;
            for i in 0..n {
                let (s, e) = &records[(seq - 1 + i) as usize];
                assert_eq!(
                    *e,
                    record(seq, i as usize),
                    "round {round}: record {s} differs"
                );
            }
            seq += n;
        }
        assert_eq!(seq - 1, log.last_seq(), "round {round}: a batch was torn");
        acked_total = acked;
    }
    assert!(acked_total > 0);
}
