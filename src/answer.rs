//! The sync answer on the wire, `{"server_time", "changes", "conflicts"}`, written a chunk
//! at a time as the connection takes it. Its records go out in the order clients apply them
//! (see `store::feed`), each put in its outgoing shape only when its chunk is written; an
//! answer that carries records of the feed reads them from the database on a blocking
//! thread, so a full sync of a large account is never held whole in memory. An answer of a
//! few kilobytes or more is gzip-compressed when the client accepts it (the desktop client
//! does); a smaller one goes out as it is, with its length. The metrics count each record
//! as it is written and each chunk's bytes as the connection takes it.

use std::collections::VecDeque;
use std::io::Write;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use flate2::Compression;
use flate2::write::GzEncoder;
use hyper::body::{Body, Bytes, Frame, SizeHint};
use hyper::header::{ACCEPT_ENCODING, HeaderMap};
use tokio::sync::{Semaphore, mpsc};

use crate::metrics::Metrics;
use crate::protocol::{self, InboxRename};
use crate::store::{OutgoingRecord, Store, StoreError, SyncOutcome};
use crate::timestamp::format_server_time;

/// How much JSON is written per chunk.
const CHUNK_BYTES: usize = 64 * 1024;
/// The smallest answer worth compressing: below it, gzip saves a packet or none.
const GZIP_MIN_BYTES: usize = 4 * 1024;
/// Chunks written ahead of the connection, at most.
const CHUNKS_AHEAD: usize = 4;
/// Answers read from the database at once; more wait their turn. Each holds a read
/// connection until its last chunk is written.
static READING: Semaphore = Semaphore::const_new(4);

/// A piece of an answer, as it is written.
#[derive(Debug)]
enum Piece {
    /// The first chunk, once the answer is known to be large or complete.
    First {
        bytes: Bytes,
        gzip: bool,
        complete: bool,
    },
    More(Bytes),
    /// Reading the records failed after the first chunk: the body ends in an error.
    Failed(String),
}

/// Writes an answer's JSON and hands out its pieces to `emit`, which returns false once
/// nobody takes them any more.
struct Composer<'a, E: FnMut(Piece) -> bool> {
    rename: Option<InboxRename<'a>>,
    accepts_gzip: bool,
    metrics: &'a Metrics,
    emit: E,
    json: Vec<u8>,
    encoder: Option<GzEncoder<Vec<u8>>>,
    first_sent: bool,
    wrote_a_record: bool,
}

impl<'a, E: FnMut(Piece) -> bool> Composer<'a, E> {
    fn new(
        server_time: i64,
        rename: Option<InboxRename<'a>>,
        accepts_gzip: bool,
        metrics: &'a Metrics,
        emit: E,
    ) -> Self {
        let json = format!(
            r#"{{"server_time":"{}","changes":["#,
            format_server_time(server_time)
        )
        .into_bytes();
        Composer {
            rename,
            accepts_gzip,
            metrics,
            emit,
            json,
            encoder: None,
            first_sent: false,
            wrote_a_record: false,
        }
    }

    /// Writes one record; false once nobody takes the answer.
    fn record(&mut self, record: &OutgoingRecord) -> bool {
        let Some(value) = protocol::outgoing(
            record.kind,
            record.deleted,
            &record.body,
            self.rename.as_ref(),
        ) else {
            return true;
        };
        if self.wrote_a_record {
            self.json.push(b',');
        }
        self.wrote_a_record = true;
        // Serialising a value into a Vec cannot fail.
        let _ = serde_json::to_writer(&mut self.json, &value);
        self.metrics.record_sent();
        self.json.len() < CHUNK_BYTES || self.send_chunk()
    }

    /// Writes the end of the answer and sends what is left.
    fn finish(mut self, conflicts: &[String]) {
        self.json.extend_from_slice(b"],\"conflicts\":");
        let _ = serde_json::to_writer(&mut self.json, conflicts);
        self.json.push(b'}');
        let json = std::mem::take(&mut self.json);
        if !self.first_sent {
            let gzip = self.accepts_gzip && json.len() >= GZIP_MIN_BYTES;
            let bytes = if gzip { gzip_whole(&json) } else { json };
            (self.emit)(Piece::First {
                bytes: Bytes::from(bytes),
                gzip,
                complete: true,
            });
            return;
        }
        let mut rest = json;
        if let Some(mut encoder) = self.encoder.take() {
            // Compressing into a Vec cannot fail.
            let _ = encoder.write_all(&rest);
            rest = encoder.finish().unwrap_or_default();
        }
        (self.emit)(Piece::More(Bytes::from(rest)));
    }

    /// Sends the JSON written so far as a chunk; false once nobody takes it.
    fn send_chunk(&mut self) -> bool {
        let json = std::mem::take(&mut self.json);
        if !self.first_sent {
            self.first_sent = true;
            let gzip = self.accepts_gzip;
            if gzip {
                self.encoder = Some(GzEncoder::new(Vec::new(), Compression::fast()));
            }
            let bytes = Bytes::from(self.compress(json));
            return (self.emit)(Piece::First {
                bytes,
                gzip,
                complete: false,
            });
        }
        let bytes = self.compress(json);
        bytes.is_empty() || (self.emit)(Piece::More(Bytes::from(bytes)))
    }

    /// `json` as it goes on the wire: compressed as far as the encoder has got, if any.
    fn compress(&mut self, json: Vec<u8>) -> Vec<u8> {
        match self.encoder.as_mut() {
            Some(encoder) => {
                let _ = encoder.write_all(&json);
                std::mem::take(encoder.get_mut())
            }
            None => json,
        }
    }
}

fn gzip_whole(json: &[u8]) -> Vec<u8> {
    let mut encoder = GzEncoder::new(Vec::new(), Compression::fast());
    let _ = encoder.write_all(json);
    encoder.finish().unwrap_or_default()
}

/// Writes the answer to `outcome` through `emit`, reading its records with `store`.
fn compose(
    mut outcome: SyncOutcome,
    accepts_gzip: bool,
    store: &Store,
    metrics: &Metrics,
    mut emit: impl FnMut(Piece) -> bool,
) {
    let extras = std::mem::take(&mut outcome.extras);
    let mut composer = Composer::new(
        outcome.server_time,
        outcome.inbox_rename(),
        accepts_gzip,
        metrics,
        &mut emit,
    );
    let read = store.each_record(outcome.feed.as_ref(), extras, |record| {
        composer.record(&record)
    });
    match read {
        Ok(()) => composer.finish(&outcome.conflicts),
        Err(e) => {
            drop(composer);
            emit(Piece::Failed(e.to_string()));
        }
    }
}

/// A sync answer body; see the module documentation.
pub struct AnswerBody {
    compressed: bool,
    /// Pieces ready to send, the first among them until it is sent.
    ready: VecDeque<Bytes>,
    /// The exact length, when the whole answer is in `ready`.
    length: Option<u64>,
    /// The pieces still being written on a blocking thread.
    rest: Option<mpsc::Receiver<Piece>>,
    /// Where the bytes sent are counted.
    metrics: Arc<Metrics>,
}

impl AnswerBody {
    /// The answer to `outcome`, compressed if `request_headers` accept gzip and it is
    /// large enough to gain; counted in `metrics`. Fails if its records cannot be read
    /// before it starts.
    pub async fn new(
        outcome: SyncOutcome,
        request_headers: &HeaderMap,
        store: &Store,
        metrics: &Arc<Metrics>,
    ) -> Result<AnswerBody, StoreError> {
        let accepts_gzip = accepts_gzip(request_headers);
        if outcome.feed.is_none() {
            let mut pieces = Vec::new();
            compose(outcome, accepts_gzip, store, metrics, |piece| {
                pieces.push(piece);
                true
            });
            return AnswerBody::from_pieces(pieces, metrics.clone());
        }
        let (sender, mut receiver) = mpsc::channel(CHUNKS_AHEAD);
        let (store, composing_metrics) = (store.clone(), metrics.clone());
        let turn = READING
            .acquire()
            .await
            .map_err(|_| StoreError::WriterGone)?;
        tokio::task::spawn_blocking(move || {
            let _turn = turn;
            compose(outcome, accepts_gzip, &store, &composing_metrics, |piece| {
                sender.blocking_send(piece).is_ok()
            });
        });
        match receiver.recv().await {
            Some(Piece::First {
                bytes,
                gzip,
                complete,
            }) => Ok(AnswerBody {
                compressed: gzip,
                length: complete.then_some(bytes.len() as u64),
                ready: VecDeque::from([bytes]),
                rest: (!complete).then_some(receiver),
                metrics: metrics.clone(),
            }),
            Some(Piece::Failed(e)) => Err(StoreError::Database(e)),
            _ => Err(StoreError::Database(
                "the answer's records could not be read".into(),
            )),
        }
    }

    /// The body of an answer composed whole.
    fn from_pieces(pieces: Vec<Piece>, metrics: Arc<Metrics>) -> Result<AnswerBody, StoreError> {
        let (mut ready, mut compressed) = (VecDeque::new(), false);
        for piece in pieces {
            match piece {
                Piece::First { bytes, gzip, .. } => {
                    compressed = gzip;
                    ready.push_back(bytes);
                }
                Piece::More(bytes) => ready.push_back(bytes),
                Piece::Failed(e) => return Err(StoreError::Database(e)),
            }
        }
        let length = ready.iter().map(Bytes::len).sum::<usize>() as u64;
        Ok(AnswerBody {
            compressed,
            length: Some(length),
            ready,
            rest: None,
            metrics,
        })
    }

    /// Whether the body is gzip-compressed (`Content-Encoding: gzip`).
    pub fn is_gzip(&self) -> bool {
        self.compressed
    }

    /// The frame that sends `bytes`, counted.
    fn sent(&self, bytes: Bytes) -> Frame<Bytes> {
        self.metrics.response_bytes(bytes.len());
        Frame::data(bytes)
    }
}

impl Body for AnswerBody {
    type Data = Bytes;
    type Error = std::io::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, std::io::Error>>> {
        let body = self.get_mut();
        if let Some(bytes) = body.ready.pop_front() {
            return Poll::Ready(Some(Ok(body.sent(bytes))));
        }
        let Some(rest) = body.rest.as_mut() else {
            return Poll::Ready(None);
        };
        match rest.poll_recv(cx) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(Some(Piece::More(bytes))) => Poll::Ready(Some(Ok(body.sent(bytes)))),
            Poll::Ready(Some(Piece::Failed(e))) => {
                body.rest = None;
                eprintln!("error: a sync answer was cut off: {e}");
                Poll::Ready(Some(Err(std::io::Error::other(e))))
            }
            Poll::Ready(Some(Piece::First { .. }) | None) => {
                body.rest = None;
                Poll::Ready(None)
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.ready.is_empty() && self.rest.is_none()
    }

    fn size_hint(&self) -> SizeHint {
        match self.length {
            Some(length) if self.rest.is_none() => SizeHint::with_exact(length),
            _ => SizeHint::default(),
        }
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
    use crate::protocol::Kind;

    const ACCOUNT_INBOX: &str = "account-inbox";

    fn task(n: usize, list_id: &str) -> OutgoingRecord {
        let body = json!({
            "type": "task", "id": format!("00000000-0000-4000-8000-{n:012}"), "title": "t",
            "priority": "low", "completed": false, "list_id": list_id,
            "created_at": "2026-11-25T10:00:00Z", "updated_at": "2026-11-25T10:00:00Z"
        });
        OutgoingRecord {
            kind: Kind::Task,
            deleted: false,
            body: body.to_string(),
        }
    }

    /// The pieces an answer of `tasks` tasks is written in, with gzip accepted or not.
    fn pieces(tasks: usize, accepts_gzip: bool) -> Vec<Piece> {
        let rename = InboxRename {
            account_inbox: ACCOUNT_INBOX,
            device_inbox: "device-inbox",
            task_inbox: "device-inbox",
        };
        let mut pieces = Vec::new();
        let metrics = Metrics::default();
        let mut composer = Composer::new(
            1_795_600_000_123_456_789,
            Some(rename),
            accepts_gzip,
            &metrics,
            |piece| {
                pieces.push(piece);
                true
            },
        );
        for n in 0..tasks {
            assert!(composer.record(&task(n, ACCOUNT_INBOX)));
        }
        composer.finish(&["c0ffee00-0000-4000-8000-000000000000".into()]);
        pieces
    }

    /// The answer the pieces make, and whether it came compressed, in how many chunks.
    fn answer(pieces: Vec<Piece>) -> (Value, bool, usize) {
        let (mut wire, mut gzip, chunks) = (Vec::new(), false, pieces.len());
        for piece in pieces {
            match piece {
                Piece::First { bytes, gzip: g, .. } => {
                    gzip = g;
                    wire.extend_from_slice(&bytes);
                }
                Piece::More(bytes) => wire.extend_from_slice(&bytes),
                Piece::Failed(e) => panic!("{e}"),
            }
        }
        let json = if gzip {
            let mut plain = Vec::new();
            flate2::read::GzDecoder::new(&wire[..])
                .read_to_end(&mut plain)
                .unwrap();
            plain
        } else {
            wire
        };
        (serde_json::from_slice(&json).unwrap(), gzip, chunks)
    }

    #[test]
    fn a_small_answer_is_one_plain_piece_with_the_inbox_renamed() {
        let pieces = pieces(2, true);
        assert!(matches!(
            pieces[0],
            Piece::First {
                complete: true,
                gzip: false,
                ..
            }
        ));
        let (answer, _, chunks) = answer(pieces);
        assert_eq!(chunks, 1);
        assert_eq!(answer["server_time"], "2026-11-25T09:46:40.123Z");
        assert_eq!(answer["changes"][1]["list_id"], "device-inbox");
        assert_eq!(answer["changes"][1]["tag_ids"], json!([]));
        assert_eq!(
            answer["conflicts"],
            json!(["c0ffee00-0000-4000-8000-000000000000"])
        );
    }

    #[test]
    fn a_few_kilobytes_go_out_compressed_in_one_piece() {
        let pieces = pieces(40, true);
        assert!(matches!(
            pieces[0],
            Piece::First {
                complete: true,
                gzip: true,
                ..
            }
        ));
        let (answer, gzip, chunks) = answer(pieces);
        assert_eq!((gzip, chunks), (true, 1));
        assert_eq!(answer["changes"].as_array().map(Vec::len), Some(40));
    }

    #[test]
    fn a_large_answer_goes_out_in_chunks_compressed_when_accepted() {
        for accepts_gzip in [false, true] {
            let pieces = pieces(2_000, accepts_gzip);
            assert!(matches!(
                pieces[0],
                Piece::First {
                    complete: false,
                    ..
                }
            ));
            let (answer, gzip, chunks) = answer(pieces);
            assert_eq!(gzip, accepts_gzip);
            assert!(chunks >= if gzip { 2 } else { 5 }, "{chunks} chunks");
            let changes = answer["changes"].as_array().unwrap();
            assert_eq!(changes.len(), 2_000);
            assert_eq!(changes[1_999]["id"], "00000000-0000-4000-8000-000000001999");
        }
    }

    #[test]
    fn gzip_is_accepted_as_the_header_says() {
        for (value, accepted) in [
            (None, false),
            (Some("gzip"), true),
            (Some("deflate, GZIP;q=1.0"), true),
            (Some("*"), true),
            (Some("gzip;q=0"), false),
            (Some("br"), false),
        ] {
            let mut headers = HeaderMap::new();
            if let Some(value) = value {
                headers.insert(ACCEPT_ENCODING, HeaderValue::from_static(value));
            }
            assert_eq!(accepts_gzip(&headers), accepted, "{value:?}");
        }
    }
}
