//! Reading record lines with a bound on their length.
//!
//! A reader of audit files must not let a hostile file make it buffer an
//! unbounded line. [`LineReader`] keeps at most
//! [`MAX_RECORD_BYTES`](crate::MAX_RECORD_BYTES) + 1 bytes of a line and
//! skips the rest, still reporting how long the line was and where it began.

use std::io::{self, BufRead};

use crate::MAX_RECORD_BYTES;

/// Where a line was and how it ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct LineInfo {
    /// 1-based line number within the file.
    pub number: u64,
    /// Byte offset of the line's first byte.
    pub offset: u64,
    /// Length of the line without its newline, even when it was not all kept.
    pub len: u64,
    /// Whether the line ended with a newline (false only for the last line of
    /// a file that a crash or truncation cut short).
    pub terminated: bool,
}

impl LineInfo {
    /// Whether only a prefix of the line was kept.
    pub fn is_oversized(&self) -> bool {
        self.len > MAX_RECORD_BYTES as u64
    }
}

/// Reads lines of at most [`MAX_RECORD_BYTES`] into a reused buffer.
pub(crate) struct LineReader<R> {
    inner: R,
    number: u64,
    offset: u64,
}

impl<R: BufRead> LineReader<R> {
    pub fn new(inner: R) -> Self {
        LineReader {
            inner,
            number: 0,
            offset: 0,
        }
    }

    /// Reads the next line into `buf` (cleared first, newline removed).
    /// Returns `None` at end of file.
    pub fn next_line(&mut self, buf: &mut Vec<u8>) -> io::Result<Option<LineInfo>> {
        buf.clear();
        let start = self.offset;
        let mut len: u64 = 0;
        let mut terminated = false;
        loop {
            let chunk = match self.inner.fill_buf() {
                Ok(chunk) => chunk,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            };
            if chunk.is_empty() {
                break;
            }
            let (take, found) = match chunk.iter().position(|&b| b == b'\n') {
                Some(i) => (i, true),
                None => (chunk.len(), false),
            };
            let room = (MAX_RECORD_BYTES + 1).saturating_sub(buf.len());
            buf.extend_from_slice(chunk.get(..take.min(room)).unwrap_or_default());
            len = len.saturating_add(take as u64);
            let consumed = if found { take.saturating_add(1) } else { take };
            self.inner.consume(consumed);
            self.offset = self.offset.saturating_add(consumed as u64);
            if found {
                terminated = true;
                break;
            }
        }
        if len == 0 && !terminated {
            return Ok(None);
        }
        self.number = self.number.saturating_add(1);
        Ok(Some(LineInfo {
            number: self.number,
            offset: start,
            len,
            terminated,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(data: &[u8]) -> Vec<(Vec<u8>, LineInfo)> {
        let mut reader = LineReader::new(io::BufReader::with_capacity(7, data));
        let mut out = Vec::new();
        let mut buf = Vec::new();
        while let Some(info) = reader.next_line(&mut buf).unwrap() {
            out.push((buf.clone(), info));
        }
        out
    }

    #[test]
    fn splits_lines_and_tracks_offsets() {
        let got = lines(b"one\ntwo\n\nthree");
        let texts: Vec<_> = got.iter().map(|(b, _)| b.as_slice()).collect();
        assert_eq!(texts, [&b"one"[..], b"two", b"", b"three"]);
        assert_eq!(got[1].1.offset, 4);
        assert!(got[2].1.terminated);
        assert!(!got[3].1.terminated, "last line has no newline");
        assert_eq!(got[3].1.number, 4);
    }

    #[test]
    fn oversized_line_is_cut_but_measured() {
        let mut data = vec![b'x'; MAX_RECORD_BYTES * 2];
        data.extend_from_slice(b"\nnext\n");
        let got = lines(&data);
        assert_eq!(got[0].0.len(), MAX_RECORD_BYTES + 1);
        assert!(got[0].1.is_oversized());
        assert_eq!(got[0].1.len, (MAX_RECORD_BYTES * 2) as u64);
        assert_eq!(got[1].0, b"next");
    }
}
