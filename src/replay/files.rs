//! Stream files: one file per input stream in a directory, `<stream>.jsonl` (one JSON object per
//! line) or `<stream>.avro` (an Avro object container file with the stream's schema). Records are
//! decoded and validated lazily, so a file larger than memory replays fine; a bad record becomes a
//! [`RawRecord`] carrying its error and original bytes (for the dead-letter output), never a stop.

use std::fs::File;
use std::io::{self, BufRead, BufReader, BufWriter, Write};
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::codec::{json, DecodeError, Format, SchemaKind};
use crate::model::{
    validate, ClaimAck, ClaimSubmitted, Encounter, EpochMillis, InputEvent, InputStream,
    MemberEnrollment, Remittance,
};

/// Fixed sync marker so that the same records always give byte-identical Avro files.
const SYNC_MARKER: [u8; 16] = *b"claimwatch-sync!";

/// Path of a stream's file in `dir` for `format`.
pub fn stream_path(dir: &Path, stream: InputStream, format: Format) -> PathBuf {
    let ext = match format {
        Format::Json => "jsonl",
        Format::Avro => "avro",
    };
    dir.join(format!("{}.{ext}", stream.name()))
}

fn schema_kind(stream: InputStream) -> SchemaKind {
    match stream {
        InputStream::Claims => SchemaKind::ClaimSubmitted,
        InputStream::Encounters => SchemaKind::Encounter,
        InputStream::Acks => SchemaKind::ClaimAck,
        InputStream::Remits => SchemaKind::Remittance,
        InputStream::Enrollment => SchemaKind::MemberEnrollment,
    }
}

/// One record read from a stream file.
#[derive(Debug)]
pub struct RawRecord {
    pub stream: InputStream,
    /// Record number in the file (JSONL: line number - 1).
    pub offset: i64,
    /// Event time used for ordering: the event's own, or for a bad record the last good one.
    pub order_time: EpochMillis,
    pub event: Result<InputEvent, DecodeError>,
    /// The original bytes when the record is bad (for the dead letter).
    pub raw: Vec<u8>,
}

fn decode_json(stream: InputStream, line: &[u8]) -> Result<InputEvent, DecodeError> {
    let event = match stream {
        InputStream::Claims => InputEvent::Claim(json::decode::<ClaimSubmitted>(line)?),
        InputStream::Encounters => InputEvent::Encounter(json::decode::<Encounter>(line)?),
        InputStream::Acks => InputEvent::Ack(json::decode::<ClaimAck>(line)?),
        InputStream::Remits => InputEvent::Remit(json::decode::<Remittance>(line)?),
        InputStream::Enrollment => InputEvent::Enrollment(json::decode::<MemberEnrollment>(line)?),
    };
    validate(&event)?;
    Ok(event)
}

enum Source {
    Json(std::io::Split<BufReader<File>>),
    Avro(
        Box<
            serde_avro_fast::object_container_file_encoding::Reader<
                serde_avro_fast::de::read::ReaderRead<BufReader<File>>,
            >,
        >,
        /// The file, for messages about it.
        PathBuf,
    ),
    Done,
}

/// A lazy reader of one stream file.
pub struct StreamReader {
    stream: InputStream,
    source: Source,
    offset: i64,
    last_time: EpochMillis,
}

impl StreamReader {
    /// Opens the stream's file in `dir` (JSONL preferred, then Avro), or `None` if neither exists.
    pub fn open(dir: &Path, stream: InputStream) -> io::Result<Option<Self>> {
        let jsonl = stream_path(dir, stream, Format::Json);
        let avro = stream_path(dir, stream, Format::Avro);
        if jsonl.exists() && avro.exists() {
            tracing::warn!(
                json = %jsonl.display(),
                avro = %avro.display(),
                "both formats of one input stream: reading the JSON lines, not the Avro file"
            );
        }
        let source = if jsonl.exists() {
            Source::Json(BufReader::with_capacity(1 << 20, File::open(jsonl)?).split(b'\n'))
        } else if avro.exists() {
            let reader = serde_avro_fast::object_container_file_encoding::Reader::from_reader(
                BufReader::with_capacity(1 << 20, File::open(&avro)?),
            )
            .map_err(|e| {
                io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!("{}: {e}", avro.display()),
                )
            })?;
            Source::Avro(Box::new(reader), avro)
        } else {
            return Ok(None);
        };
        Ok(Some(Self {
            stream,
            source,
            offset: 0,
            last_time: i64::MIN,
        }))
    }

    /// The stream this reader reads.
    pub fn stream(&self) -> InputStream {
        self.stream
    }

    fn finish(&mut self, event: Result<InputEvent, DecodeError>, raw: Vec<u8>) -> RawRecord {
        if let Ok(e) = &event {
            self.last_time = e.event_time();
        }
        let rec = RawRecord {
            stream: self.stream,
            offset: self.offset,
            order_time: self.last_time,
            event,
            raw,
        };
        self.offset += 1;
        rec
    }
}

impl Iterator for StreamReader {
    type Item = io::Result<RawRecord>;

    fn next(&mut self) -> Option<Self::Item> {
        match &mut self.source {
            Source::Done => None,
            Source::Json(lines) => loop {
                let line = match lines.next()? {
                    Ok(l) => l,
                    Err(e) => return Some(Err(e)),
                };
                // A byte-order mark some editors and exports put at the start of a file.
                let line = match line.strip_prefix(b"\xEF\xBB\xBF") {
                    Some(rest) if self.offset == 0 => rest.to_vec(),
                    _ => line,
                };
                if line.iter().all(u8::is_ascii_whitespace) {
                    // Blank lines are not records but keep line numbering.
                    self.offset += 1;
                    continue;
                }
                let event = decode_json(self.stream, &line);
                let raw = if event.is_err() { line } else { Vec::new() };
                return Some(Ok(self.finish(event, raw)));
            },
            Source::Avro(reader, path) => {
                let decoded: Result<Option<InputEvent>, DecodeError> = match self.stream {
                    InputStream::Claims => reader
                        .deserialize_next::<ClaimSubmitted>()
                        .map(|o| o.map(InputEvent::Claim)),
                    InputStream::Encounters => reader
                        .deserialize_next::<Encounter>()
                        .map(|o| o.map(InputEvent::Encounter)),
                    InputStream::Acks => reader
                        .deserialize_next::<ClaimAck>()
                        .map(|o| o.map(InputEvent::Ack)),
                    InputStream::Remits => reader
                        .deserialize_next::<Remittance>()
                        .map(|o| o.map(InputEvent::Remit)),
                    InputStream::Enrollment => reader
                        .deserialize_next::<MemberEnrollment>()
                        .map(|o| o.map(InputEvent::Enrollment)),
                }
                .map_err(|e| DecodeError::Avro(e.to_string()));
                match decoded {
                    Ok(None) => None,
                    Ok(Some(event)) => {
                        let checked = validate(&event).map(|()| event).map_err(DecodeError::from);
                        Some(Ok(self.finish(checked, Vec::new())))
                    }
                    Err(e) => {
                        // A corrupt or truncated container block: the rest of the file cannot be
                        // framed. Report it once, with its position, and stop reading this file.
                        let read = self.offset;
                        tracing::warn!(
                            file = %path.display(),
                            records_read = read,
                            error = %e,
                            "Avro file unreadable from here on (truncated or corrupt); the rest of it is not read"
                        );
                        let e = DecodeError::Avro(format!(
                            "{}: unreadable after {read} records, the rest of the file is not read (truncated or corrupt): {e}",
                            path.display()
                        ));
                        self.source = Source::Done;
                        Some(Ok(self.finish(Err(e), Vec::new())))
                    }
                }
            }
        }
    }
}

/// Writes one input stream file.
pub fn write_stream<T: Serialize>(
    dir: &Path,
    stream: InputStream,
    format: Format,
    records: &[T],
) -> io::Result<()> {
    let path = stream_path(dir, stream, format);
    let file = BufWriter::with_capacity(1 << 20, File::create(&path)?);
    match format {
        Format::Json => {
            let mut file = file;
            let mut buf = Vec::with_capacity(1024);
            for r in records {
                buf.clear();
                json::encode_line(r, &mut buf);
                file.write_all(&buf)?;
            }
            file.flush()
        }
        Format::Avro => {
            let schema: serde_avro_fast::Schema = schema_kind(stream)
                .text()
                .parse()
                .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, format!("schema: {e}")))?;
            let mut config = serde_avro_fast::ser::SerializerConfig::new(&schema);
            let mut writer =
                serde_avro_fast::object_container_file_encoding::WriterBuilder::new(&mut config)
                    .compression(serde_avro_fast::object_container_file_encoding::Compression::Null)
                    .sync_marker(SYNC_MARKER)
                    .build(file)
                    .map_err(|e| io::Error::other(e.to_string()))?;
            writer
                .serialize_all(records.iter())
                .map_err(|e| io::Error::other(e.to_string()))?;
            writer
                .into_inner()
                .map_err(|e| io::Error::other(e.to_string()))?
                .flush()
        }
    }
}
