//! The sync answer on the wire, `{"server_time", "changes", "conflicts"}`, written a chunk
//! at a time as the connection takes it. Records go out grouped lists, tags, tasks,
//! task-tag links, deletes, each put in its outgoing shape only when its chunk is written,
//! so a full sync of a large account is never held whole as JSON. An answer of a few
//! kilobytes or more is gzip-compressed when the client accepts it (the desktop client
//! does); a smaller one goes out as it is.

use std::convert::Infallible;
use std::io::Write;
use std::pin::Pin;
use std::task::{Context, Poll};

use flate2::Compression;
use flate2::write::GzEncoder;
use hyper::body::{Body, Bytes, Frame, SizeHint};
use hyper::header::{ACCEPT_ENCODING, HeaderMap};

use crate::protocol::{self, InboxRename, Kind};
use crate::store::{OutgoingRecord, SyncOutcome};
use crate::timestamp::format_server_time;

/// How much JSON is written per chunk.
const CHUNK_BYTES: usize = 64 * 1024;
/// The smallest answer worth compressing: below it, gzip saves a packet or none.
const GZIP_MIN_BYTES: usize = 4 * 1024;

/// A sync answer body; see the module documentation.
pub struct AnswerBody {
    records: std::vec::IntoIter<OutgoingRecord>,
    inbox: Option<(String, String)>,
    conflicts: Vec<String>,
    /// Set while compressed chunks are still to come.
    encoder: Option<GzEncoder<Vec<u8>>>,
    compressed: bool,
    /// The first chunk, written before the response went out, until it is sent.
    first: Option<Bytes>,
    /// Whether a record has been written (the next one needs a comma).
    wrote_a_record: bool,
    finished: bool,
}

impl AnswerBody {
    /// The answer to `outcome`, compressed if `request_headers` accept gzip and it is
    /// large enough to gain.
    pub fn new(outcome: SyncOutcome, request_headers: &HeaderMap) -> AnswerBody {
        let SyncOutcome {
            server_time,
            mut records,
            conflicts,
            inbox,
            ..
        } = outcome;
        records.sort_by_key(group);
        let mut body = AnswerBody {
            records: records.into_iter(),
            inbox: inbox.map(|ids| {
                let device_inbox = ids.device_inbox.unwrap_or(ids.account_inbox.clone());
                (ids.account_inbox, device_inbox)
            }),
            conflicts,
            encoder: None,
            compressed: false,
            first: None,
            wrote_a_record: false,
            finished: false,
        };
        let mut first = format!(
            r#"{{"server_time":"{}","changes":["#,
            format_server_time(server_time)
        )
        .into_bytes();
        body.write_json(&mut first);
        let large = !body.finished || first.len() >= GZIP_MIN_BYTES;
        if large && accepts_gzip(request_headers) {
            let mut encoder = GzEncoder::new(Vec::new(), Compression::fast());
            // Writing into a Vec cannot fail.
            let _ = encoder.write_all(&first);
            first = if body.finished {
                encoder.finish().unwrap_or_default()
            } else {
                let written = std::mem::take(encoder.get_mut());
                body.encoder = Some(encoder);
                written
            };
            body.compressed = true;
        }
        body.first = Some(Bytes::from(first));
        body
    }

    /// Whether the body is gzip-compressed (`Content-Encoding: gzip`).
    pub fn is_gzip(&self) -> bool {
        self.compressed
    }

    /// Appends up to a chunk of JSON to `out`; sets `finished` once the closing brace is in.
    fn write_json(&mut self, out: &mut Vec<u8>) {
        let inbox = self
            .inbox
            .as_ref()
            .map(|(account_inbox, device_inbox)| InboxRename {
                account_inbox,
                device_inbox,
            });
        while out.len() < CHUNK_BYTES {
            let Some(record) = self.records.next() else {
                out.extend_from_slice(b"],\"conflicts\":");
                // Serialising strings into a Vec cannot fail.
                let _ = serde_json::to_writer(&mut *out, &self.conflicts);
                out.push(b'}');
                self.finished = true;
                return;
            };
            let Some(value) =
                protocol::outgoing(record.kind, record.deleted, &record.body, inbox.as_ref())
            else {
                continue;
            };
            if self.wrote_a_record {
                out.push(b',');
            }
            self.wrote_a_record = true;
            let _ = serde_json::to_writer(&mut *out, &value);
        }
    }

    /// The next chunk to send, compressed if the body is; `None` once all is sent.
    fn next_chunk(&mut self) -> Option<Bytes> {
        if let Some(first) = self.first.take() {
            return Some(first);
        }
        loop {
            if self.finished {
                let encoder = self.encoder.take()?;
                return encoder.finish().ok().map(Bytes::from);
            }
            let mut json = Vec::with_capacity(CHUNK_BYTES + 1024);
            self.write_json(&mut json);
            let Some(encoder) = self.encoder.as_mut() else {
                return Some(Bytes::from(json));
            };
            let _ = encoder.write_all(&json);
            let compressed = std::mem::take(encoder.get_mut());
            if !compressed.is_empty() {
                return Some(Bytes::from(compressed));
            }
        }
    }
}

impl Body for AnswerBody {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        self: Pin<&mut Self>,
        _: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        Poll::Ready(
            self.get_mut()
                .next_chunk()
                .map(|chunk| Ok(Frame::data(chunk))),
        )
    }

    fn is_end_stream(&self) -> bool {
        self.first.is_none() && self.finished && self.encoder.is_none()
    }

    fn size_hint(&self) -> SizeHint {
        match &self.first {
            Some(first) if self.finished && self.encoder.is_none() => {
                SizeHint::with_exact(first.len() as u64)
            }
            _ => SizeHint::default(),
        }
    }
}

/// Where a record goes in the answer: lists, tags, tasks, task-tag links, then deletes
/// (the order the clients apply them in).
fn group(record: &OutgoingRecord) -> u8 {
    if record.deleted {
        return 4;
    }
    match record.kind {
        Kind::List => 0,
        Kind::Tag => 1,
        Kind::Task => 2,
        Kind::TaskTag => 3,
    }
}

/// Whether `Accept-Encoding` lists gzip (or `*`) without `q=0`.
fn accepts_gzip(headers: &HeaderMap) -> bool {
    headers
        .get_all(ACCEPT_ENCODING)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .any(|coding| {
            let mut parts = coding.split(';').map(str::trim);
            let name = parts.next().unwrap_or_default();
            let refused = parts.any(|parameter| {
                parameter
                    .strip_prefix("q=")
                    .and_then(|q| q.parse::<f32>().ok())
                    .is_some_and(|q| q == 0.0)
            });
            (name.eq_ignore_ascii_case("gzip") || name == "*") && !refused
        })
}

#[cfg(test)]
mod tests {
    use std::io::Read;

    use hyper::header::HeaderValue;
    use serde_json::{Value, json};

    use super::*;
    use crate::store::InboxIds;

    fn headers(accept_encoding: Option<&str>) -> HeaderMap {
        let mut headers = HeaderMap::new();
        if let Some(value) = accept_encoding {
            headers.insert(ACCEPT_ENCODING, HeaderValue::from_str(value).unwrap());
        }
        headers
    }

    fn task(id: usize, list_id: &str) -> OutgoingRecord {
        let body = json!({
            "type": "task", "id": format!("00000000-0000-4000-8000-{id:012}"), "title": "t",
            "priority": "low", "completed": false, "list_id": list_id,
            "created_at": "2026-11-25T10:00:00Z", "updated_at": "2026-11-25T10:00:00Z"
        });
        OutgoingRecord {
            kind: Kind::Task,
            deleted: false,
            body: body.to_string(),
        }
    }

    fn outcome(records: Vec<OutgoingRecord>) -> SyncOutcome {
        SyncOutcome {
            server_time: 1_795_600_000_123_456_789,
            records,
            conflicts: vec!["c0ffee00-0000-4000-8000-000000000000".into()],
            inbox: Some(InboxIds {
                account_inbox: "account-inbox".into(),
                device_inbox: Some("device-inbox".into()),
            }),
            clock_warning: None,
        }
    }

    /// Every chunk of the body, decompressed if it is gzip.
    fn read_all(mut body: AnswerBody) -> (Value, usize) {
        let gzip = body.is_gzip();
        let (mut wire, mut chunks) = (Vec::new(), 0);
        while let Some(chunk) = body.next_chunk() {
            wire.extend_from_slice(&chunk);
            chunks += 1;
        }
        assert!(body.is_end_stream());
        let json = if gzip {
            let mut plain = Vec::new();
            flate2::read::GzDecoder::new(&wire[..])
                .read_to_end(&mut plain)
                .unwrap();
            plain
        } else {
            wire
        };
        (serde_json::from_slice(&json).unwrap(), chunks)
    }

    #[test]
    fn a_small_answer_is_one_plain_chunk_of_known_length_grouped_with_the_inbox_renamed() {
        let tag_delete = OutgoingRecord {
            kind: Kind::Tag,
            deleted: true,
            body: json!({"type": "deleted", "id": "t", "record_type": "tag", "deleted_at": "2026-11-25T10:00:00Z"}).to_string(),
        };
        let list = OutgoingRecord {
            kind: Kind::List,
            deleted: false,
            body: json!({"type": "list", "id": "account-inbox", "name": "Inbox", "is_inbox": true,
                "created_at": "2026-11-25T10:00:00Z", "updated_at": "2026-11-25T10:00:00Z"})
            .to_string(),
        };
        let body = AnswerBody::new(
            outcome(vec![tag_delete, task(1, "account-inbox"), list]),
            &headers(Some("gzip")),
        );
        assert!(!body.is_gzip());
        let hint = body.size_hint().exact().unwrap();
        let (answer, chunks) = read_all(body);
        assert_eq!((chunks, hint), (1, answer.to_string().len() as u64));
        assert_eq!(answer["server_time"], "2026-11-25T09:46:40.123Z");
        let changes = answer["changes"].as_array().unwrap();
        let kinds: Vec<&Value> = changes.iter().map(|record| &record["type"]).collect();
        assert_eq!(kinds, ["list", "task", "deleted"]);
        assert_eq!(changes[0]["id"], "device-inbox");
        assert_eq!(changes[1]["list_id"], "device-inbox");
        assert_eq!(changes[1]["tag_ids"], json!([]));
        assert_eq!(
            answer["conflicts"],
            json!(["c0ffee00-0000-4000-8000-000000000000"])
        );
    }

    #[test]
    fn a_large_answer_streams_in_chunks_gzip_when_accepted() {
        for (accept, gzip) in [
            (None, false),
            (Some("gzip"), true),
            (Some("deflate, gzip;q=1.0"), true),
            (Some("gzip;q=0"), false),
            (Some("br"), false),
        ] {
            let records = (0..2_000).map(|id| task(id, "work")).collect();
            let body = AnswerBody::new(outcome(records), &headers(accept));
            assert_eq!(body.is_gzip(), gzip, "{accept:?}");
            assert_eq!(body.size_hint().exact(), None);
            let (answer, chunks) = read_all(body);
            let changes = answer["changes"].as_array().unwrap();
            assert_eq!(changes.len(), 2_000);
            assert_eq!(changes[1_999]["id"], "00000000-0000-4000-8000-000000001999");
            assert!(chunks >= if gzip { 2 } else { 5 }, "{chunks} chunks");
        }
    }

    #[test]
    fn a_few_kilobytes_go_out_compressed_in_one_chunk_of_known_length() {
        let records = (0..40).map(|id| task(id, "work")).collect();
        let body = AnswerBody::new(outcome(records), &headers(Some("gzip")));
        assert!(body.is_gzip());
        let hint = body.size_hint().exact().unwrap();
        let first = body.first.clone().unwrap();
        assert_eq!(hint, first.len() as u64);
        let (answer, chunks) = read_all(body);
        assert_eq!(
            (chunks, answer["changes"].as_array().unwrap().len()),
            (1, 40)
        );
    }
}
