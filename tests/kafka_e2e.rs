//! End to end on a real Kafka-protocol broker (Tansu): generate -> produce -> run -> read every
//! output topic, compared with `claimwatch replay` on the same files; plus bad input.

mod support;

use std::sync::atomic::Ordering;
use std::time::Duration;

use claimwatch::codec::{AvroCodec, Format, SchemaKind};
use claimwatch::model::{DeadLetter, OutputEvent};
use claimwatch::replay::{self, ReplayOptions};
use claimwatch::runtime::{produce, topics, Service};
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use rdkafka::ClientConfig;
use support::*;

const PARTITIONS: u32 = 4;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn service_on_tansu_equals_replay() {
    let broker = Broker::start();
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("input");
    claimwatch::generate::write::generate_to_dir(400, 7, &input, Format::Json).unwrap();
    let mut config = config(&broker, "e2e", &dir.path().join("state"), PARTITIONS);
    // The inputs are in the topics before the service starts, so it reads the population's
    // year at full speed: a partition can reach the end of it before the paid amounts re-keyed by
    // the other partitions come back through Tansu, by when stays of the member have left a 365-day
    // look-back and a readmission whose index stay left can no longer take its paid amount (README,
    // *What is equal to replay*). A look-back longer than the input keeps every stay, so the
    // comparison with replay below is exact whatever the round trip.
    config.core.member_lookback_days = 3650;
    let http = free_http_addr();
    config.http_listen = Some(http.clone());
    let created = topics::create(&config).await.unwrap();
    assert_eq!(created.len(), topics::all(&config).len(), "{created:?}");
    let cfg = config.clone();
    tokio::task::spawn_blocking(move || topics::check(&cfg))
        .await
        .unwrap()
        .unwrap();

    let produced = produce::produce_dir(&config, &input, Format::Avro, produce::Pace::Unlimited)
        .await
        .unwrap();
    let service = Service::start(config.clone()).await.unwrap();
    run_until_quiet(&service, produced.total()).await;
    assert_eq!(service.status.dead_letters.load(Ordering::Relaxed), 0);
    // The service's own HTTP endpoints while it runs.
    let addr = http.clone();
    let (ready, metrics) = tokio::task::spawn_blocking(move || {
        (
            http_get(&addr, "/health/ready"),
            http_get(&addr, "/metrics"),
        )
    })
    .await
    .unwrap();
    assert_eq!(ready.0, 200, "ready once partitions are restored");
    assert_eq!(metrics.0, 200);
    let scrape = claimwatch::metrics::exposition::parse(&metrics.1).unwrap();
    for name in [
        "claimwatch_pipeline_consumed_records_total",
        "claimwatch_claims_by_status",
        "claimwatch_checkpoint_duration_seconds",
    ] {
        assert!(
            scrape.names().iter().any(|n| n.starts_with(name)),
            "{name} missing from the scrape"
        );
    }
    // The generated input re-sends ~0.5 % of its records: they are counted as duplicates.
    let repeats = scrape
        .sum("claimwatch_pipeline_duplicates_total", &[])
        .unwrap_or(0.0);
    assert!(repeats > 0.0, "duplicates not counted: {repeats}");
    // Every processing stage is timed (the Grafana panel "p99 per stage" reads these).
    for stage in [
        "decode",
        "core",
        "encode",
        "produce",
        "deliver",
        "snapshot",
        "changelog",
        "write",
        "commit",
    ] {
        let count = stage_count(&scrape, stage);
        assert!(
            count.is_some_and(|c| c > 0.0),
            "stage {stage} not observed: {count:?}"
        );
    }
    // No identifier from the input in the metrics.
    let claims = std::fs::read_to_string(input.join("ehr.claims.jsonl")).unwrap();
    for line in claims.lines().take(200) {
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        for field in ["claim_id", "member_id"] {
            let id = v[field].as_str().unwrap();
            assert!(
                !metrics.1.contains(id),
                "an identifier leaked into /metrics"
            );
        }
    }
    service.shutdown().await;

    let replay_out = dir.path().join("replay");
    replay::run(&ReplayOptions {
        input: input.clone(),
        out: replay_out.clone(),
        state: None,
        config: config.core.clone(),
        stop_after: None,
        close_open_windows: false,
    })
    .unwrap();

    let b = broker.bootstrap.clone();
    let (lifecycle, readmissions) = tokio::task::spawn_blocking(move || {
        (
            read_outputs(&b, "claimwatch.claim-lifecycle", Duration::from_secs(3)),
            read_outputs(&b, "claimwatch.readmissions", Duration::from_secs(2)),
        )
    })
    .await
    .unwrap();
    let expected = replay_outputs(&replay_out, "claimwatch.claim-lifecycle");
    assert!(
        expected.len() > 1000,
        "a real population: {}",
        expected.len()
    );
    let (got, dups) = by_key(&lifecycle);
    let (want, _) = by_key(&expected);
    assert_eq!(dups, 0, "one uninterrupted run emits no duplicates");
    assert_eq!(got.len(), want.len(), "claims with lifecycle updates");
    for (k, w) in &want {
        assert_eq!(
            got.get(k),
            Some(w),
            "lifecycle of one claim differs from replay"
        );
    }
    let got = final_readmissions(&readmissions);
    let want = final_readmissions(&replay_outputs(&replay_out, "claimwatch.readmissions"));
    assert!(!want.is_empty());
    assert_eq!(got, want, "final readmission records differ from replay");

    // Payer KPI windows: the final version of every window equals replay's.
    let b = broker.bootstrap.clone();
    let kpis = tokio::task::spawn_blocking(move || {
        read_outputs(&b, "claimwatch.payer-kpis", Duration::from_secs(2))
    })
    .await
    .unwrap();
    let want = final_payer_kpis(&replay_outputs(&replay_out, "claimwatch.payer-kpis"));
    assert!(want.len() > 50, "payer windows: {}", want.len());
    let got = final_payer_kpis(&kpis);
    let missing: Vec<_> = want
        .keys()
        .filter(|k| !got.contains_key(*k))
        .take(5)
        .collect();
    let extra: Vec<_> = got
        .keys()
        .filter(|k| !want.contains_key(*k))
        .take(5)
        .collect();
    assert_eq!(
        got.len(),
        want.len(),
        "payer KPI windows; missing {missing:?}, extra {extra:?}"
    );
    for (k, w) in &want {
        assert_eq!(
            got.get(k),
            Some(w),
            "final payer KPI window {k:?} differs from replay"
        );
    }

    // Population analytics: the final record of every summary group and intervention equals
    // replay's (versions, output ids and event times are left out: they count emissions, which
    // depend on how the facts of the member partitions interleave).
    let b = broker.bootstrap.clone();
    let (summaries, rois) = tokio::task::spawn_blocking(move || {
        (
            read_outputs(&b, "claimwatch.readmission-summary", Duration::from_secs(2)),
            read_outputs(&b, "claimwatch.intervention-roi", Duration::from_secs(2)),
        )
    })
    .await
    .unwrap();
    let want = final_population(&replay_outputs(
        &replay_out,
        "claimwatch.readmission-summary",
    ));
    assert!(
        want.contains_key("all"),
        "replay emitted a population summary"
    );
    assert_eq!(
        final_population(&summaries),
        want,
        "final readmission summaries differ from replay"
    );
    let want = final_population(&replay_outputs(&replay_out, "claimwatch.intervention-roi"));
    assert!(!want.is_empty());
    assert_eq!(
        final_population(&rois),
        want,
        "final intervention ROI differs from replay"
    );
    // fastavro reads the summaries too (nested records, nullable KPIs).
    let b = broker.bootstrap.clone();
    let raw = tokio::task::spawn_blocking(move || {
        read_topic(&b, "claimwatch.readmission-summary", Duration::from_secs(2))
    })
    .await
    .unwrap();
    let py_dir = dir.path().join("py-summary");
    std::fs::create_dir_all(&py_dir).unwrap();
    let decoded = decode_in_python(&py_dir, &raw);
    assert_eq!(decoded.len(), summaries.len());
    for (py, ours) in decoded.iter().zip(&summaries) {
        let OutputEvent::ReadmissionSummary(s) = ours else {
            unreachable!()
        };
        assert_eq!(py["output_id"], s.output_id.as_str());
        assert_eq!(py["index_stays"], s.index_stays);
        assert_eq!(py["kpis"].is_null(), s.kpis.is_none());
    }
    // Care gaps: every gap's final state equals replay's. A gap closed in one run may never have
    // opened in the other (its dose arrived before the due date was reached there): closed and
    // never-opened both mean covered.
    let b = broker.bootstrap.clone();
    let gaps = tokio::task::spawn_blocking(move || {
        read_outputs(&b, "claimwatch.care-gaps", Duration::from_secs(2))
    })
    .await
    .unwrap();
    let uncovered = |events: &[OutputEvent]| {
        let mut m = std::collections::BTreeMap::new();
        for e in events {
            if let OutputEvent::CareGap(g) = e {
                m.insert(g.gap_id.clone(), g.action);
            }
        }
        m.retain(|_, a| *a != claimwatch::model::CareGapAction::Closed);
        m
    };
    let want = uncovered(&replay_outputs(&replay_out, "claimwatch.care-gaps"));
    assert!(want.len() > 10, "care gaps: {}", want.len());
    assert_eq!(uncovered(&gaps), want, "final care gaps differ from replay");

    // Provider KPIs: the service emits the keys replay emits, and no other.
    // Their records are not compared one by one: these flows emit snapshots as their day moves,
    // and on Kafka a fact that travels through two partitions (a paid amount: claim partition,
    // then member partition, then provider partition) or waits for a timer (an index stay's
    // maturity) can reach its flow after its day was emitted; it is counted in the next
    // emission, so the snapshot of a given day can differ from replay's (see README, *Provider
    // and department KPIs*). The cash forecast is not compared: before every claim partition
    // has sent a cash fact its weeks are kept without a flow day, and the weeks the service
    // then emits differ from replay's (README, cash forecast caveats).
    for topic in ["claimwatch.provider-kpis"] {
        let b = broker.bootstrap.clone();
        let got =
            tokio::task::spawn_blocking(move || read_outputs(&b, topic, Duration::from_secs(2)))
                .await
                .unwrap();
        let keys = |events: &[OutputEvent]| {
            events
                .iter()
                .filter_map(|e| match e {
                    OutputEvent::ProviderKpi(p) => Some(p.key.clone()),
                    _ => None,
                })
                .collect::<std::collections::BTreeSet<_>>()
        };
        let want = keys(&replay_outputs(&replay_out, topic));
        let got = keys(&got);
        assert!(want.len() > 20, "{topic}: {} keys in replay", want.len());
        assert!(
            got.is_subset(&want),
            "{topic}: keys replay never emitted: {:?}",
            got.difference(&want).take(3).collect::<Vec<_>>()
        );
        assert!(
            got.len() * 10 >= want.len() * 8,
            "{topic}: the service emitted {} of replay's {} keys",
            got.len(),
            want.len()
        );
    }

    // A Python subscriber decodes the same messages with its standard Avro library (fastavro).
    let b = broker.bootstrap.clone();
    let raw = tokio::task::spawn_blocking(move || {
        read_topic(&b, "claimwatch.readmissions", Duration::from_secs(2))
    })
    .await
    .unwrap();
    let decoded = decode_in_python(dir.path(), &raw);
    assert_eq!(decoded.len(), readmissions.len());
    for (py, ours) in decoded.iter().zip(&readmissions) {
        let OutputEvent::Readmission(r) = ours else {
            unreachable!()
        };
        assert_eq!(py["output_id"], r.output_id.as_str());
        assert_eq!(py["version"], r.version);
        assert_eq!(py["index_encounter_id"], r.index_encounter_id.as_str());
        assert_eq!(py["days_between"], r.days_between);
        assert_eq!(
            py["readmission_paid_cents"].as_i64(),
            r.readmission_paid_cents
        );
    }
}

/// The last record per key of the population topics, without version, output id and event time.
fn final_population(events: &[OutputEvent]) -> std::collections::BTreeMap<String, String> {
    let mut m = std::collections::BTreeMap::new();
    for e in events {
        match e {
            OutputEvent::ReadmissionSummary(s) => {
                let mut s = s.clone();
                (s.version, s.event_time, s.output_id) = (0, 0, String::new());
                m.insert(s.group.clone(), serde_json::to_string(&s).unwrap());
            }
            OutputEvent::InterventionRoi(r) => {
                let mut r = r.clone();
                (r.version, r.event_time, r.output_id) = (0, 0, String::new());
                m.insert(
                    r.intervention_id.clone(),
                    serde_json::to_string(&r).unwrap(),
                );
            }
            _ => {}
        }
    }
    m
}

/// Decodes Confluent-framed messages with fastavro in a Python virtualenv (installed by
/// tests/support/python-env.sh).
fn decode_in_python(
    dir: &std::path::Path,
    raw: &[(i32, i64, Vec<u8>, Vec<u8>)],
) -> Vec<serde_json::Value> {
    use std::process::Command;
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let py = Command::new("bash")
        .arg(root.join("tests/support/python-env.sh"))
        .output()
        .expect("python-env.sh");
    assert!(
        py.status.success(),
        "creating the Python environment failed"
    );
    let python = String::from_utf8_lossy(&py.stdout).trim().to_owned();
    let ids: serde_json::Map<String, serde_json::Value> = SchemaKind::ALL
        .iter()
        .map(|k| {
            (
                k.default_id().to_string(),
                serde_json::Value::String(
                    root.join(format!("schemas/{}.avsc", k.name()))
                        .display()
                        .to_string(),
                ),
            )
        })
        .collect();
    let ids_file = dir.join("schema-ids.json");
    std::fs::write(&ids_file, serde_json::to_vec(&ids).unwrap()).unwrap();
    let mut frames = Vec::new();
    for (_, _, _, v) in raw {
        frames.extend_from_slice(&(v.len() as u32).to_be_bytes());
        frames.extend_from_slice(v);
    }
    let frames_file = dir.join("messages.bin");
    std::fs::write(&frames_file, frames).unwrap();
    let out = Command::new(python)
        .arg(root.join("tests/support/decode_with_fastavro.py"))
        .arg(&ids_file)
        .arg(&frames_file)
        .output()
        .expect("running the Python decoder");
    assert!(
        out.status.success(),
        "fastavro failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn bad_input_goes_to_the_dead_letter_topic_and_good_input_flows() {
    let broker = Broker::start();
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("input");
    claimwatch::generate::write::generate_to_dir(60, 3, &input, Format::Json).unwrap();
    let config = config(&broker, "bad-input", &dir.path().join("state"), PARTITIONS);
    topics::create(&config).await.unwrap();
    let produced = produce::produce_dir(&config, &input, Format::Avro, produce::Pace::Unlimited)
        .await
        .unwrap();

    // Bad records of every kind, spread over partitions.
    let codec = AvroCodec::new();
    let mut wrong_schema = Vec::new();
    codec
        .encode_framed(
            SchemaKind::DeadLetter,
            &DeadLetter {
                source: "x".into(),
                partition: 0,
                offset: 0,
                error_kind: "x".into(),
                message: "x".into(),
                payload: vec![],
                event_time: 0,
            },
            &mut wrong_schema,
        )
        .unwrap();
    let mut truncated = Vec::new();
    let claim = claimwatch::model::fixtures::claim("BAD-1", "2024-03-01");
    codec
        .encode_framed(SchemaKind::ClaimSubmitted, &claim, &mut truncated)
        .unwrap();
    truncated.truncate(truncated.len() / 2);
    let mut negative = claim.clone();
    negative.claim_id = "BAD-2".into();
    negative.billed_cents = -5;
    let negative = serde_json::to_vec(&negative).unwrap();
    let bad: Vec<(&str, Vec<u8>, &str)> = vec![
        ("ehr.claims", b"\xde\xad\xbe\xef garbage".to_vec(), "decode"),
        ("ehr.claims", truncated, "decode"),
        ("x12.835", vec![0, 0, 0, 0x30, 0x39, 1, 2], "schema"),
        ("x12.277ca", wrong_schema, "schema"),
        ("ehr.claims", negative, "validation"),
        (
            "ehr.encounters",
            b"{\"not\": \"an encounter\"}".to_vec(),
            "decode",
        ),
        ("x12.835", Vec::new(), "decode"),
    ];
    let producer: BaseProducer = ClientConfig::new()
        .set("bootstrap.servers", &broker.bootstrap)
        .create()
        .unwrap();
    for (i, (topic, payload, _)) in bad.iter().enumerate() {
        producer
            .send(
                BaseRecord::to(topic)
                    .key("k")
                    .payload(payload)
                    .partition(i as i32 % PARTITIONS as i32),
            )
            .unwrap();
    }
    producer.flush(Duration::from_secs(10)).unwrap();

    let service = Service::start(config.clone()).await.unwrap();
    run_until_quiet(&service, produced.total() + bad.len() as u64).await;
    assert_eq!(
        service.status.dead_letters.load(Ordering::Relaxed),
        bad.len() as u64
    );
    service.shutdown().await;

    let b = broker.bootstrap.clone();
    let (dead, lifecycle) = tokio::task::spawn_blocking(move || {
        (
            read_topic(&b, "claimwatch.dead-letter", Duration::from_secs(2)),
            read_outputs(&b, "claimwatch.claim-lifecycle", Duration::from_secs(2)),
        )
    })
    .await
    .unwrap();
    assert_eq!(
        dead.len(),
        bad.len(),
        "every bad record is dead-lettered once"
    );
    let mut kinds: Vec<(String, String)> = dead
        .iter()
        .map(|(_, _, _, v)| {
            match claimwatch::runtime::wire::decode_output(&codec, "claimwatch.dead-letter", v)
                .unwrap()
            {
                OutputEvent::DeadLetter(d) => {
                    // The original bytes travel with the reason.
                    assert!(bad
                        .iter()
                        .any(|(t, p, _)| *t == d.source && *p == d.payload));
                    assert!(!d.message.is_empty());
                    (d.source, d.error_kind)
                }
                _ => unreachable!(),
            }
        })
        .collect();
    kinds.sort();
    let mut want: Vec<(String, String)> = bad
        .iter()
        .map(|(t, _, k)| ((*t).to_owned(), (*k).to_owned()))
        .collect();
    want.sort();
    assert_eq!(kinds, want);
    // Every good claim still produced its lifecycle.
    let replay_out = dir.path().join("replay");
    replay::run(&ReplayOptions {
        input,
        out: replay_out.clone(),
        state: None,
        config: config.core.clone(),
        stop_after: None,
        close_open_windows: true,
    })
    .unwrap();
    let (got, _) = by_key(&lifecycle);
    let (want, _) = by_key(&replay_outputs(&replay_out, "claimwatch.claim-lifecycle"));
    assert_eq!(got.len(), want.len());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn raw_x12_messages_are_parsed_in_stream() {
    let broker = Broker::start();
    let dir = tempfile::tempdir().unwrap();
    let x12_dir = dir.path().join("x12");
    claimwatch::generate::write::generate_x12_to_dir(40, 5, &x12_dir).unwrap();
    let files: Vec<std::path::PathBuf> = claimwatch::generate::write::X12_FILES
        .iter()
        .map(|f| x12_dir.join(f))
        .collect();
    // What the same files give through `x12 parse` + `replay`.
    let parsed_dir = dir.path().join("parsed");
    claimwatch::x12::files::parse_files(&files, &parsed_dir).unwrap();
    let mut config = config(&broker, "raw-x12", &dir.path().join("state"), PARTITIONS);
    let http = free_http_addr();
    config.http_listen = Some(http.clone());
    // Statistics often enough to see the raw X12 consumer's lag within the test.
    config
        .consumer
        .insert("statistics.interval.ms".into(), "500".into());
    let replay_out = dir.path().join("replay");
    replay::run(&ReplayOptions {
        input: parsed_dir,
        out: replay_out.clone(),
        state: None,
        config: config.core.clone(),
        stop_after: None,
        close_open_windows: true,
    })
    .unwrap();
    let want = final_lifecycle(&replay_outputs(&replay_out, "claimwatch.claim-lifecycle"));
    assert!(want.len() > 50);

    topics::create(&config).await.unwrap();
    let producer: BaseProducer = ClientConfig::new()
        .set("bootstrap.servers", &broker.bootstrap)
        .set("message.max.bytes", "10000000")
        .create()
        .unwrap();
    let mut expected_events = 0u64;
    for f in &files {
        let bytes = std::fs::read(f).unwrap();
        expected_events += claimwatch::x12::parse(&bytes, "t").events.len() as u64;
        producer
            .send(BaseRecord::to("x12.raw").key("f").payload(&bytes))
            .unwrap();
    }
    let garbage = b"ISA*00*not really an interchange~".to_vec();
    producer
        .send(BaseRecord::to("x12.raw").key("g").payload(&garbage))
        .unwrap();
    producer.flush(Duration::from_secs(10)).unwrap();

    let service = Service::start(config.clone()).await.unwrap();
    run_until_quiet(&service, expected_events).await;
    // The raw X12 consumer's partitions have a lag series (its own client, its own group).
    let mut raw_lag_series = 0;
    for _ in 0..40 {
        let addr = http.clone();
        let (_, body) = tokio::task::spawn_blocking(move || http_get(&addr, "/metrics"))
            .await
            .unwrap();
        let scrape = claimwatch::metrics::exposition::parse(&body).unwrap();
        raw_lag_series = scrape
            .samples
            .iter()
            .filter(|s| {
                s.name == "claimwatch_kafka_consumer_lag_records"
                    && s.labels.iter().any(|(k, v)| k == "topic" && v == "x12.raw")
            })
            .count();
        if raw_lag_series > 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    assert!(
        raw_lag_series > 0,
        "no lag series for x12.raw in the scrape"
    );
    service.shutdown().await;
    let b = broker.bootstrap.clone();
    let (lifecycle, dead) = tokio::task::spawn_blocking(move || {
        (
            read_outputs(&b, "claimwatch.claim-lifecycle", Duration::from_secs(2)),
            read_outputs(&b, "claimwatch.dead-letter", Duration::from_secs(2)),
        )
    })
    .await
    .unwrap();
    assert_eq!(final_lifecycle(&lifecycle), want);
    let dl: Vec<&DeadLetter> = dead
        .iter()
        .filter_map(|e| match e {
            OutputEvent::DeadLetter(d) => Some(d),
            _ => None,
        })
        .collect();
    assert!(
        dl.iter()
            .any(|d| d.source == "x12.raw" && d.error_kind.starts_with("x12_")),
        "the malformed interchange is dead-lettered: {dl:?}"
    );
}
