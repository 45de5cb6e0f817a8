//! The client and the registry codec against an in-process fake Schema Registry.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::*;
use crate::model::{fixtures, ClaimAck, ClaimSubmitted};

/// One request as the fake saw it.
#[derive(Clone, Debug)]
struct Seen {
    method: String,
    url: String,
    authorization: Option<String>,
    content_type: Option<String>,
}

#[derive(Default)]
struct State {
    /// (id, subject, schema text)
    schemas: Vec<(u32, String, String)>,
    next_id: u32,
    seen: Vec<Seen>,
    /// Answer every request with this status and body instead.
    forced: Option<(u16, String)>,
    /// Wait this long before answering.
    delay: Option<Duration>,
}

/// A tiny Confluent-compatible registry: register, lookup, schema by id; Avro only, schemas
/// compared as exact text.
struct Fake {
    url: String,
    state: Arc<Mutex<State>>,
    server: Arc<tiny_http::Server>,
}

impl Drop for Fake {
    fn drop(&mut self) {
        self.server.unblock();
    }
}

fn answer(state: &Mutex<State>, method: &str, url: &str, body: &str) -> (u16, String) {
    let mut st = state.lock().unwrap();
    if let Some(forced) = st.forced.clone() {
        return forced;
    }
    let schema = || {
        serde_json::from_str::<serde_json::Value>(body)
            .ok()
            .and_then(|v| v["schema"].as_str().map(str::to_owned))
    };
    let parts: Vec<&str> = url.trim_start_matches('/').split('/').collect();
    match (method, parts.as_slice()) {
        ("POST", ["subjects", subject, "versions"]) => {
            let Some(text) = schema() else {
                return (
                    422,
                    r#"{"error_code":42201,"message":"Invalid schema"}"#.into(),
                );
            };
            let existing = st
                .schemas
                .iter()
                .find(|(_, s, t)| s == subject && *t == text)
                .map(|(id, _, _)| *id);
            let id = existing.unwrap_or_else(|| {
                st.next_id += 1;
                let id = st.next_id;
                st.schemas.push((id, (*subject).to_owned(), text));
                id
            });
            (200, format!(r#"{{"id":{id}}}"#))
        }
        ("POST", ["subjects", subject]) => {
            let text = schema().unwrap_or_default();
            let found = st
                .schemas
                .iter()
                .find(|(_, s, t)| s == subject && *t == text);
            match found {
                Some((id, s, t)) => (
                    200,
                    serde_json::json!({"subject": s, "id": id, "version": 1, "schema": t})
                        .to_string(),
                ),
                None if st.schemas.iter().any(|(_, s, _)| s == subject) => (
                    404,
                    r#"{"error_code":40403,"message":"Schema not found"}"#.into(),
                ),
                None => (
                    404,
                    r#"{"error_code":40401,"message":"Subject not found"}"#.into(),
                ),
            }
        }
        ("GET", ["schemas", "ids", id]) => {
            let id: u32 = id.parse().unwrap_or(0);
            match st.schemas.iter().find(|(i, _, _)| *i == id) {
                Some((_, _, t)) => (200, serde_json::json!({ "schema": t }).to_string()),
                None => (
                    404,
                    r#"{"error_code":40403,"message":"Schema not found"}"#.into(),
                ),
            }
        }
        _ => (
            404,
            r#"{"error_code":404,"message":"HTTP 404 Not Found"}"#.into(),
        ),
    }
}

impl Fake {
    fn start() -> Self {
        let server = Arc::new(tiny_http::Server::http("127.0.0.1:0").unwrap());
        let port = server.server_addr().to_ip().unwrap().port();
        let state = Arc::new(Mutex::new(State {
            next_id: 200,
            ..State::default()
        }));
        let (srv, st) = (Arc::clone(&server), Arc::clone(&state));
        std::thread::spawn(move || {
            for mut req in srv.incoming_requests() {
                let st = Arc::clone(&st);
                std::thread::spawn(move || {
                    let header = |name: &'static str| {
                        req.headers()
                            .iter()
                            .find(|h| h.field.equiv(name))
                            .map(|h| h.value.as_str().to_owned())
                    };
                    let seen = Seen {
                        method: req.method().as_str().to_owned(),
                        url: req.url().to_owned(),
                        authorization: header("Authorization"),
                        content_type: header("Content-Type"),
                    };
                    let mut body = String::new();
                    let _ = req.as_reader().read_to_string(&mut body);
                    let delay = {
                        let mut s = st.lock().unwrap();
                        s.seen.push(seen.clone());
                        s.delay
                    };
                    if let Some(d) = delay {
                        std::thread::sleep(d);
                    }
                    let (status, text) = answer(&st, &seen.method, &seen.url, &body);
                    let _ = req.respond(
                        tiny_http::Response::from_string(text)
                            .with_status_code(status)
                            .with_header(
                                tiny_http::Header::from_bytes(
                                    "Content-Type",
                                    "application/vnd.schemaregistry.v1+json",
                                )
                                .unwrap(),
                            ),
                    );
                });
            }
        });
        Self {
            url: format!("http://127.0.0.1:{port}"),
            state,
            server,
        }
    }

    fn client(&self) -> RegistryClient {
        RegistryClient::new(&self.url, None, Duration::from_secs(5)).unwrap()
    }

    fn insert(&self, id: u32, subject: &str, schema: &str) {
        self.state
            .lock()
            .unwrap()
            .schemas
            .push((id, subject.into(), schema.into()));
    }

    fn seen(&self) -> Vec<Seen> {
        self.state.lock().unwrap().seen.clone()
    }

    fn requests(&self) -> usize {
        self.state.lock().unwrap().seen.len()
    }

    fn force(&self, status: u16, body: &str) {
        self.state.lock().unwrap().forced = Some((status, body.into()));
    }
}

fn subjects(kind: SchemaKind) -> String {
    topic_subject(&format!("t.{}", kind.name()))
}

#[test]
fn register_lookup_and_by_id_with_caching() {
    let fake = Fake::start();
    let client = fake.client();
    let text = SchemaKind::ClaimAck.text();
    let id = client.register("acks-value", text).unwrap();
    assert_eq!(id, 201);
    let seen = fake.seen();
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].method, "POST");
    assert_eq!(seen[0].url, "/subjects/acks-value/versions");
    assert_eq!(seen[0].content_type.as_deref(), Some(CONTENT_TYPE));
    assert_eq!(seen[0].authorization, None);
    // Cached: neither a second register nor a lookup nor by-id asks again.
    assert_eq!(client.register("acks-value", text).unwrap(), id);
    assert_eq!(client.lookup("acks-value", text).unwrap(), Some(id));
    assert_eq!(&*client.schema_by_id(id).unwrap(), text);
    assert_eq!(fake.requests(), 1);

    // A fresh client asks, then remembers.
    let other = fake.client();
    assert_eq!(other.lookup("acks-value", text).unwrap(), Some(id));
    assert_eq!(other.lookup("acks-value", text).unwrap(), Some(id));
    assert_eq!(fake.requests(), 2);
    assert_eq!(fake.seen()[1].url, "/subjects/acks-value");
    assert_eq!(&*other.schema_by_id(id).unwrap(), text); // remembered by the lookup
    let third = fake.client();
    assert_eq!(&*third.schema_by_id(id).unwrap(), text);
    assert_eq!(&*third.schema_by_id(id).unwrap(), text);
    assert_eq!(fake.requests(), 3);
    assert_eq!(fake.seen()[2].method, "GET");
    assert_eq!(fake.seen()[2].url, format!("/schemas/ids/{id}"));

    // Misses are answered, not cached, and not errors.
    assert_eq!(other.lookup("nope-value", text).unwrap(), None);
    assert_eq!(
        other
            .lookup("acks-value", SchemaKind::Remittance.text())
            .unwrap(),
        None
    );
    assert_eq!(other.lookup("nope-value", text).unwrap(), None);
    assert_eq!(fake.requests(), 6);
    // Subjects are percent-encoded.
    other.register("odd name/x-value", text).unwrap();
    assert_eq!(
        fake.seen().last().unwrap().url,
        "/subjects/odd%20name%2Fx-value/versions"
    );
}

#[test]
fn basic_auth_is_sent_and_not_shown() {
    let fake = Fake::start();
    let client =
        RegistryClient::new(&fake.url, Some(("svc", "s3cret")), Duration::from_secs(5)).unwrap();
    client.lookup("x-value", "\"string\"").unwrap();
    client.schema_by_id(7).unwrap_err();
    for seen in fake.seen() {
        // base64("svc:s3cret")
        assert_eq!(
            seen.authorization.as_deref(),
            Some("Basic c3ZjOnMzY3JldA==")
        );
    }
    assert_eq!(fake.requests(), 2);
    assert!(!format!("{client:?}").contains("c3ZjOnMzY3JldA"));
}

#[test]
fn failures_are_typed() {
    let fake = Fake::start();
    let client = fake.client();
    assert_eq!(
        client.schema_by_id(999).unwrap_err(),
        RegistryError::IdNotFound(999)
    );
    fake.force(
        500,
        r#"{"error_code":50001,"message":"Error in the backend data store"}"#,
    );
    let e = client.register("a-value", "\"string\"").unwrap_err();
    assert_eq!(
        e,
        RegistryError::Http {
            status: 500,
            code: Some(50001)
        }
    );
    assert!(e.is_transient());
    assert_eq!(
        client.lookup("a-value", "\"string\"").unwrap_err(),
        RegistryError::Http {
            status: 500,
            code: Some(50001)
        }
    );
    fake.force(401, r#"{"error_code":401,"message":"Unauthorized"}"#);
    let e = client.schema_by_id(1).unwrap_err();
    assert_eq!(e, RegistryError::Unauthorized { status: 401 });
    assert!(!e.is_transient());
    fake.force(409, r#"{"error_code":409,"message":"incompatible"}"#);
    assert_eq!(
        client.register("a-value", "\"string\"").unwrap_err(),
        RegistryError::Incompatible {
            subject: "a-value".into()
        }
    );
    fake.force(422, r#"{"error_code":42201,"message":"Invalid schema"}"#);
    assert_eq!(
        client.register("a-value", "\"string\"").unwrap_err(),
        RegistryError::InvalidSchema {
            subject: "a-value".into(),
            code: Some(42201)
        }
    );
    fake.force(200, "<html>not json</html>");
    assert!(matches!(
        client.schema_by_id(1).unwrap_err(),
        RegistryError::BadResponse(_)
    ));
    fake.force(
        200,
        r#"{"schema":"syntax = \"proto3\";","schemaType":"PROTOBUF"}"#,
    );
    assert_eq!(
        client.schema_by_id(2).unwrap_err(),
        RegistryError::NotAvro(2)
    );

    // Time-outs.
    fake.state.lock().unwrap().forced = None;
    fake.state.lock().unwrap().delay = Some(Duration::from_millis(1500));
    let slow = RegistryClient::new(&fake.url, None, Duration::from_millis(200)).unwrap();
    let started = std::time::Instant::now();
    let e = slow.schema_by_id(1).unwrap_err();
    assert_eq!(e, RegistryError::Timeout(Duration::from_millis(200)));
    assert!(e.is_transient());
    assert!(started.elapsed() < Duration::from_millis(1400));

    // Nobody listening.
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let gone = RegistryClient::new(
        &format!("http://127.0.0.1:{port}"),
        None,
        Duration::from_secs(2),
    )
    .unwrap();
    let e = gone.schema_by_id(1).unwrap_err();
    assert!(matches!(e, RegistryError::Transport(_)), "{e:?}");
    assert!(e.is_transient());

    for bad in ["", "registry:8081", "ftp://x", "http://", "http:///x"] {
        assert_eq!(
            RegistryClient::new(bad, None, DEFAULT_TIMEOUT).unwrap_err(),
            RegistryError::InvalidUrl,
            "{bad}"
        );
    }
    // A trailing slash is fine.
    RegistryClient::new(&format!("{}/", fake.url), None, DEFAULT_TIMEOUT).unwrap();
}

#[test]
fn ids_for_our_schemas() {
    let fake = Fake::start();
    let client = fake.client();
    // Without auto_register, an unregistered output schema is a clear error.
    assert_eq!(
        SchemaIds::resolve(&client, subjects, false).unwrap_err(),
        RegistryError::NotRegistered {
            subject: subjects(SchemaKind::ClaimLifecycleUpdate)
        }
    );
    // A producer registered one input schema; we register our outputs only.
    fake.insert(
        7,
        &subjects(SchemaKind::ClaimAck),
        SchemaKind::ClaimAck.text(),
    );
    let ids = SchemaIds::resolve(&client, subjects, true).unwrap();
    assert_eq!(ids.get(SchemaKind::ClaimAck), Some(7));
    assert_eq!(
        ids.missing(),
        vec![
            SchemaKind::ClaimSubmitted,
            SchemaKind::Encounter,
            SchemaKind::Remittance,
            SchemaKind::MemberEnrollment
        ]
    );
    let registered: Vec<String> = fake
        .state
        .lock()
        .unwrap()
        .schemas
        .iter()
        .map(|(_, s, _)| s.clone())
        .collect();
    assert_eq!(registered.len(), 1 + WRITTEN.len());
    for kind in WRITTEN {
        assert!(registered.contains(&subjects(kind)));
    }
    // Registered once: the ids now resolve without auto_register, and frames carry them.
    let codec = codec_from_registry(&fake.client(), subjects, false).unwrap();
    for kind in WRITTEN {
        assert_eq!(Some(codec.schema_id(kind)), ids.get(kind));
        assert!(codec.schema_id(kind) > 200);
    }
    assert_eq!(codec.schema_id(SchemaKind::Remittance), UNREGISTERED);
    let mut bytes = Vec::new();
    let dl = crate::model::DeadLetter {
        source: "s".into(),
        partition: 0,
        offset: 1,
        error_kind: "decode".into(),
        message: "m".into(),
        payload: vec![1],
        event_time: 1,
    };
    codec
        .encode_framed(SchemaKind::DeadLetter, &dl, &mut bytes)
        .unwrap();
    assert_eq!(
        super::super::avro::unframe(&bytes).unwrap().0,
        ids.get(SchemaKind::DeadLetter).unwrap()
    );
}

/// `schemas/history/v1/<name>.avsc` as JSON.
fn released(name: &str) -> serde_json::Value {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("schemas/history/v1")
        .join(format!("{name}.avsc"));
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// Writes `claim` with `writer` (apache-avro, by field name) framed with `id`.
fn write_with(writer: &apache_avro::Schema, id: u32, claim: &ClaimSubmitted) -> Vec<u8> {
    let codec = AvroCodec::new();
    let mut ours = Vec::new();
    codec
        .encode_datum(SchemaKind::ClaimSubmitted, claim, &mut ours)
        .unwrap();
    let current = apache_avro::Schema::parse_str(SchemaKind::ClaimSubmitted.text()).unwrap();
    let apache_avro::types::Value::Record(fields) =
        apache_avro::from_avro_datum(&current, &mut &ours[..], None).unwrap()
    else {
        panic!("not a record")
    };
    let apache_avro::Schema::Record(record) = writer else {
        panic!("writer is not a record")
    };
    let by_name: std::collections::HashMap<String, apache_avro::types::Value> =
        fields.into_iter().collect();
    let values: Vec<(String, apache_avro::types::Value)> = record
        .fields
        .iter()
        .map(|f| {
            let v = by_name.get(&f.name).cloned().unwrap_or_else(|| {
                // A field only the writer has (a newer version).
                apache_avro::types::Value::String(format!("extra-{}", f.name))
            });
            (f.name.clone(), v)
        })
        .collect();
    let datum =
        apache_avro::to_avro_datum(writer, apache_avro::types::Value::Record(values)).unwrap();
    let mut out = Vec::new();
    super::super::avro::frame_header(id, &mut out);
    out.extend_from_slice(&datum);
    out
}

fn registry_codec(fake: &Fake) -> RegistryCodec {
    RegistryCodec::connect(Arc::new(fake.client()), subjects, true).unwrap()
}

#[test]
fn older_and_newer_writer_versions_decode_into_current_types() {
    let fake = Fake::start();
    let codec = registry_codec(&fake);
    let subject = subjects(SchemaKind::ClaimSubmitted);

    // An older version: v1 as released, without the optional fields added since (they take
    // their defaults), and with its fields in another order (so only resolution reads it right).
    let mut old = released("ClaimSubmitted");
    let fields = old["fields"].as_array_mut().unwrap();
    fields.retain(|f| {
        !matches!(
            f["name"].as_str(),
            Some("prior_auth_ref" | "original_payer_claim_id" | "drg")
        )
    });
    fields.reverse();
    let old_text = old.to_string();
    fake.insert(101, &subject, &old_text);
    let writer = apache_avro::Schema::parse_str(&old_text).unwrap();

    let mut claim = fixtures::claim("C1", "2024-03-01");
    claim.prior_auth_ref = Some("PA1".into());
    claim.drg = Some("291".into());
    let bytes = write_with(&writer, 101, &claim);
    let before = fake.requests();
    let back: ClaimSubmitted = codec
        .decode_framed(SchemaKind::ClaimSubmitted, &bytes)
        .unwrap();
    let mut expected = claim.clone();
    expected.prior_auth_ref = None;
    expected.original_payer_claim_id = None;
    expected.drg = None;
    assert_eq!(back, expected);
    // The writer schema is fetched once.
    for _ in 0..3 {
        let again: ClaimSubmitted = codec
            .decode_framed(SchemaKind::ClaimSubmitted, &bytes)
            .unwrap();
        assert_eq!(again, expected);
    }
    assert_eq!(fake.requests(), before + 1);
    assert_eq!(fake.seen().last().unwrap().url, "/schemas/ids/101");

    // A newer version with a field we do not know yet: it is skipped.
    let mut new = released("ClaimSubmitted");
    new["fields"].as_array_mut().unwrap().insert(
        2,
        serde_json::json!({"name": "source_system", "type": "string", "doc": "new"}),
    );
    let new_text = new.to_string();
    fake.insert(102, &subject, &new_text);
    let writer = apache_avro::Schema::parse_str(&new_text).unwrap();
    let bytes = write_with(&writer, 102, &claim);
    let back: ClaimSubmitted = codec
        .decode_framed(SchemaKind::ClaimSubmitted, &bytes)
        .unwrap();
    assert_eq!(back, claim);

    // Our own id takes the fast path: no request.
    let ours = codec.avro().schema_id(SchemaKind::ClaimAck);
    assert_eq!(ours, UNREGISTERED, "inputs are not registered by us");
    let before = fake.requests();
    let mut bytes = Vec::new();
    codec
        .avro()
        .encode_framed(
            SchemaKind::DeadLetter,
            &crate::model::DeadLetter {
                source: "s".into(),
                partition: 0,
                offset: 1,
                error_kind: "decode".into(),
                message: "m".into(),
                payload: vec![1],
                event_time: 1,
            },
            &mut bytes,
        )
        .unwrap();
    let _: crate::model::DeadLetter = codec.decode_framed(SchemaKind::DeadLetter, &bytes).unwrap();
    assert_eq!(fake.requests(), before);
}

#[test]
fn unusable_writers_are_typed_errors() {
    let fake = Fake::start();
    let codec = registry_codec(&fake);
    let subject = subjects(SchemaKind::ClaimSubmitted);

    // A required field changes type: not readable as ours.
    let mut bad = released("ClaimSubmitted");
    for f in bad["fields"].as_array_mut().unwrap() {
        if f["name"] == "billed_cents" {
            f["type"] = serde_json::json!("string");
        }
    }
    let bad_text = bad.to_string();
    fake.insert(103, &subject, &bad_text);
    let mut bytes = Vec::new();
    super::super::avro::frame_header(103, &mut bytes);
    bytes.extend_from_slice(&[2, b'x', 0, 0, 0]);
    let before = fake.requests();
    for _ in 0..2 {
        let e = codec
            .decode_framed::<ClaimSubmitted>(SchemaKind::ClaimSubmitted, &bytes)
            .unwrap_err();
        assert!(
            matches!(
                e,
                DecodeError::IncompatibleWriter {
                    id: 103,
                    expected: "ClaimSubmitted",
                    ..
                }
            ),
            "{e:?}"
        );
        assert_eq!(e.code(), "schema");
    }
    assert_eq!(fake.requests(), before + 1, "the verdict is cached");

    // A writer that is not a schema at all, and another kind's record.
    fake.insert(104, &subject, "{not avro");
    fake.insert(105, &subject, SchemaKind::ClaimAck.text());
    for id in [104, 105] {
        let mut bytes = Vec::new();
        super::super::avro::frame_header(id, &mut bytes);
        bytes.extend_from_slice(&[2, b'x']);
        let e = codec
            .decode_framed::<ClaimSubmitted>(SchemaKind::ClaimSubmitted, &bytes)
            .unwrap_err();
        assert!(
            matches!(e, DecodeError::IncompatibleWriter { id: i, .. } if i == id),
            "{id}: {e:?}"
        );
    }

    // An id the registry does not know.
    let mut bytes = Vec::new();
    super::super::avro::frame_header(555, &mut bytes);
    bytes.push(2);
    assert_eq!(
        codec
            .decode_framed::<ClaimSubmitted>(SchemaKind::ClaimSubmitted, &bytes)
            .unwrap_err(),
        DecodeError::UnknownSchemaId(555)
    );
    // One of our ids, for another kind.
    let mut bytes = Vec::new();
    let dl_id = codec.avro().schema_id(SchemaKind::DeadLetter);
    super::super::avro::frame_header(dl_id, &mut bytes);
    bytes.push(2);
    assert!(matches!(
        codec
            .decode_framed::<ClaimAck>(SchemaKind::ClaimAck, &bytes)
            .unwrap_err(),
        DecodeError::WrongSchema { .. }
    ));
    // Frames without an id.
    assert_eq!(
        codec
            .decode_framed::<ClaimAck>(SchemaKind::ClaimAck, &[0, 0, 0, 0, 0, 2])
            .unwrap_err(),
        DecodeError::UnknownSchemaId(0)
    );
    assert_eq!(
        codec
            .decode_framed::<ClaimAck>(SchemaKind::ClaimAck, &[])
            .unwrap_err(),
        DecodeError::Empty
    );

    // The registry is down: a registry error, not a verdict on the message (and not cached).
    fake.force(503, r#"{"error_code":50003,"message":"unavailable"}"#);
    let mut bytes = Vec::new();
    super::super::avro::frame_header(106, &mut bytes);
    bytes.push(2);
    let e = codec
        .decode_framed::<ClaimSubmitted>(SchemaKind::ClaimSubmitted, &bytes)
        .unwrap_err();
    assert!(matches!(e, DecodeError::Registry(_)), "{e:?}");
    assert_eq!(e.code(), "registry");
}

#[test]
fn damaged_datums_on_the_resolution_path_never_panic() {
    let fake = Fake::start();
    let codec = registry_codec(&fake);
    let subject = subjects(SchemaKind::ClaimSubmitted);
    let mut old = released("ClaimSubmitted");
    old["fields"].as_array_mut().unwrap().reverse();
    let old_text = old.to_string();
    fake.insert(101, &subject, &old_text);
    let writer = apache_avro::Schema::parse_str(&old_text).unwrap();
    let mut claim = fixtures::claim("C1", "2024-03-01");
    claim.prior_auth_ref = Some("PA-SECRET-77".into());
    let bytes = write_with(&writer, 101, &claim);
    let ok: ClaimSubmitted = codec
        .decode_framed(SchemaKind::ClaimSubmitted, &bytes)
        .unwrap();
    assert_eq!(ok, claim);
    let mut errors = 0;
    for cut in 5..bytes.len() {
        let r = codec.decode_framed::<ClaimSubmitted>(SchemaKind::ClaimSubmitted, &bytes[..cut]);
        let e = r.unwrap_err();
        assert!(!e.to_string().contains("PA-SECRET"), "{e}");
        errors += 1;
    }
    let mut rng = 0x9e37_79b9_7f4a_7c15_u64;
    for _ in 0..2000 {
        let mut b = bytes.clone();
        for _ in 0..3 {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            let i = 5 + (rng as usize) % (b.len() - 5);
            b[i] = (rng >> 32) as u8;
        }
        if let Err(e) = codec.decode_framed::<ClaimSubmitted>(SchemaKind::ClaimSubmitted, &b) {
            assert!(!e.to_string().contains("PA-SECRET"), "{e}");
            errors += 1;
        }
    }
    assert!(errors > 0);
}
