//! Kafka load test: on the same generated input and in the same run, measures
//! 1. raw pass-through: consume the input topics and re-produce the same bytes with the service's
//!    client settings, no processing;
//! 2. the full pipeline (`claimwatch run`'s code) on the same records;
//! 3. end-to-end latency (input produced -> output received by a subscriber) at a fixed offered
//!    rate of half the pipeline's maximum (or `--offered-rate N`), with the consumer lag sampled
//!    every second;
//! 4. restore of 1,000,000 state entries from a changelog topic;
//!
//! It also reports the process's peak RSS.
//!
//! ```sh
//! cargo bench --bench pipeline                       # librdkafka's mock cluster
//! cargo bench --bench pipeline -- --tansu            # a real Kafka-protocol broker (Tansu)
//! cargo bench --bench pipeline -- --members 5000 --restore-entries 200000   # smaller
//! ```

#[path = "../tests/support/mod.rs"]
mod support;

/// The allocator of the `claimwatch` binary, so the service in this process runs as deployed
/// (with its heap on small pages, as `main` sets: `claimwatch::memory`).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use claimwatch::codec::Format;
use claimwatch::core::{Engine, Partition};
use claimwatch::refdata::RefData;
use claimwatch::runtime::{changelog, produce, topics, RuntimeConfig, Service};
use claimwatch::state::StateDb;
use futures::StreamExt;
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::message::{Headers, Message};
use rdkafka::mocking::MockCluster;
use rdkafka::producer::{FutureProducer, FutureRecord, Producer};
use rdkafka::{Offset, TopicPartitionList};

/// Load driver options (`cargo bench --bench pipeline -- [OPTIONS]`).
#[derive(clap::Parser)]
struct Args {
    /// Run against Tansu (installed by tests/support/install-tansu.sh) instead of the mock cluster.
    #[arg(long)]
    tansu: bool,
    /// Generated members in the throughput input (the latency input has half as many).
    #[arg(long, default_value_t = 20_000)]
    members: usize,
    #[arg(long, default_value_t = 4)]
    partitions: u32,
    /// Claim states written to and restored from a changelog partition.
    #[arg(long, default_value_t = 1_000_000)]
    restore_entries: usize,
    /// The service's `max_task_idle_ms` (how long a partition task waits for an empty input).
    #[arg(long)]
    max_task_idle_ms: Option<u64>,
    /// The service's `checkpoint_interval_ms`.
    #[arg(long)]
    checkpoint_interval_ms: Option<u64>,
    /// Run the service with `processing_guarantee = exactly_once` (Kafka transactions).
    #[arg(long)]
    exactly_once: bool,
    /// Turn off the population analytics (readmission summary and ROI, care gaps, high-cost
    /// members, cash forecast, provider KPIs, utilization forecast), as `core/hot_only_without_analytics`
    /// does: the pipeline of claim lifecycle, readmissions, risk scores and payer monitors.
    #[arg(long)]
    without_analytics: bool,
    /// Extra librdkafka consumer property of the service, KEY=VALUE (repeatable).
    #[arg(long = "consumer", value_name = "KEY=VALUE")]
    consumer: Vec<String>,
    /// Extra librdkafka producer property of the service, KEY=VALUE (repeatable).
    #[arg(long = "producer", value_name = "KEY=VALUE")]
    producer: Vec<String>,
    /// Offer the latency run this many records/s instead of half the measured maximum: compares
    /// two builds' latency at the same load (each build's own half-maximum differs run to run).
    #[arg(long)]
    offered_rate: Option<f64>,
    /// Passed by `cargo bench`; ignored.
    #[arg(long, hide = true)]
    bench: bool,
}

fn args() -> Args {
    <Args as clap::Parser>::parse()
}

fn key_values(kv: &[String]) -> impl Iterator<Item = (String, String)> + '_ {
    kv.iter().map(|kv| {
        let (k, v) = kv.split_once('=').expect("KEY=VALUE");
        (k.to_owned(), v.to_owned())
    })
}

fn rss_kib(field: &str) -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with(field))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse().ok())
        })
        .unwrap_or(0)
}

/// CPU time (user + system) this process has used so far, in seconds, from `/proc/self/stat`.
fn cpu_secs() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // Fields after the command name (which is in parentheses and may hold spaces).
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    // utime and stime are fields 14 and 15 of the line, 12 and 13 after the name; 100 ticks/s.
    (ticks(11) + ticks(12)) / 100.0
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((sorted.len() - 1) as f64 * p).round() as usize;
    sorted[i]
}

/// Consumes `total` records from the input topics and re-produces the bytes unchanged.
async fn pass_through(config: &RuntimeConfig, total: u64) -> f64 {
    let mut props = config.consumer_properties();
    props.insert("group.id".into(), "loadtest-pass-through".into());
    props.insert("enable.partition.eof".into(), "false".into());
    let inputs = config.topics.consumed();
    // The service reads each partition through a queue of its own, where librdkafka applies
    // `queued.max.messages.kbytes` per partition; this consumer reads them all through one queue,
    // where it applies to the whole consumer. The same total pre-fetch is the bound times the
    // partitions (librdkafka's maximum is 2,097,151 KiB); with the per-partition 4 MiB as the
    // whole consumer's bound, the pass-through ran at 65-67k instead of 430-483k records/s.
    if let Some(kb) = props
        .get("queued.max.messages.kbytes")
        .and_then(|v| v.parse::<u64>().ok())
    {
        let total = kb * inputs.len() as u64 * config.topics.partitions.max(1) as u64;
        props.insert(
            "queued.max.messages.kbytes".into(),
            total.min(2_097_151).to_string(),
        );
    }
    let consumer: StreamConsumer = claimwatch::runtime::config::client_config(&props)
        .create()
        .unwrap();
    let producer: FutureProducer =
        claimwatch::runtime::config::client_config(&config.producer_properties())
            .create()
            .unwrap();
    let names: Vec<&str> = inputs.iter().map(String::as_str).collect();
    consumer.subscribe(&names).unwrap();
    let mut stream = consumer.stream();
    let mut pending = Vec::with_capacity(16_384);
    let mut n = 0u64;
    let mut first: Option<Instant> = None;
    while n < total {
        let m = stream.next().await.unwrap().unwrap();
        first.get_or_insert_with(Instant::now);
        let mut rec = FutureRecord::<[u8], [u8]>::to("loadtest.passthrough")
            .payload(m.payload().unwrap_or_default())
            .partition(m.partition());
        if let Some(k) = m.key() {
            rec = rec.key(k);
        }
        loop {
            match producer.send_result(rec) {
                Ok(f) => {
                    pending.push(f);
                    break;
                }
                Err((_, r)) => {
                    rec = r;
                    tokio::time::sleep(Duration::from_micros(200)).await;
                }
            }
        }
        n += 1;
        if pending.len() >= 16_384 {
            for f in pending.drain(..) {
                f.await.unwrap().unwrap();
            }
        }
    }
    for f in pending.drain(..) {
        f.await.unwrap().unwrap();
    }
    let secs = first.unwrap().elapsed().as_secs_f64();
    total as f64 / secs
}

/// Runs the service until it has consumed `inputs` records and gone quiet; returns its rate on
/// the inputs (first to last record consumed).
/// The pipeline's maximum rate over `inputs` records: (records/s until the last input record was
/// handled, cores this process kept busy meanwhile, records/s until the service was quiet: the
/// internal records the inputs caused handled and their outputs queued). Returns once nothing
/// moved for a second, so what runs next starts on an idle service.
async fn pipeline_rate(service: &Service, before: u64, inputs: u64) -> (f64, f64, f64) {
    let status = Arc::clone(&service.status);
    let counters = || {
        (
            status.consumed.load(Ordering::Relaxed),
            status.rekeyed.load(Ordering::Relaxed),
            status.produced.load(Ordering::Relaxed),
        )
    };
    let mut first = None;
    let mut last = (before, Instant::now(), cpu_secs());
    let mut moved = (counters(), Instant::now());
    loop {
        tokio::time::sleep(Duration::from_millis(10)).await;
        let now = counters();
        let c = now.0;
        if c > before && first.is_none() {
            first = Some((Instant::now(), cpu_secs()));
        }
        if c != last.0 {
            last = (c, Instant::now(), cpu_secs());
        }
        if now != moved.0 {
            moved = (now, Instant::now());
        }
        if c - before >= inputs && moved.1.elapsed() > Duration::from_secs(1) {
            break;
        }
    }
    let (t0, cpu0) = first.unwrap();
    let secs = (last.1 - t0).as_secs_f64();
    let quiet_secs = (moved.1 - t0).as_secs_f64();
    (
        inputs as f64 / secs,
        (last.2 - cpu0) / secs,
        inputs as f64 / quiet_secs,
    )
}

/// The service's per-stage histograms (`claimwatch_pipeline_processing_duration_seconds`):
/// (stage, seconds, observations).
type StageSums = Vec<(String, f64, u64)>;

fn stage_sums(service: &Service) -> StageSums {
    let families = service.metrics.registry().gather();
    let Some(f) = families
        .iter()
        .find(|f| f.name() == "claimwatch_pipeline_processing_duration_seconds")
    else {
        return Vec::new();
    };
    f.get_metric()
        .iter()
        .map(|m| {
            let stage = m
                .get_label()
                .iter()
                .find(|l| l.name() == "stage")
                .map(|l| l.value().to_owned())
                .unwrap_or_default();
            let h = m.get_histogram();
            (stage, h.get_sample_sum(), h.get_sample_count())
        })
        .collect()
}

/// Where the pipeline's time went since `since`: seconds in all and µs per observation.
fn stage_split(service: &Service, since: &StageSums) -> String {
    let parts: Vec<String> = stage_sums(service)
        .into_iter()
        .map(|(stage, sum, count)| {
            let (s0, c0) = since
                .iter()
                .find(|b| b.0 == stage)
                .map_or((0.0, 0), |b| (b.1, b.2));
            let (sum, count) = (sum - s0, count - c0);
            format!(
                "{stage} {sum:.2} s ({count} observations, {:.1} us each)",
                sum * 1e6 / count.max(1) as f64
            )
        })
        .collect();
    parts.join("; ")
}

/// Where the pipeline's time went, and the records consumed per topic.
fn print_stages(service: &Service, inputs: u64) {
    println!(
        "stage time over {inputs} input records (summed over partition tasks; internal-topic records and checkpoints included): {}",
        stage_split(service, &Vec::new())
    );
    let families = service.metrics.registry().gather();
    // Records consumed per topic: the inputs and the internal repartition topics.
    if let Some(f) = families
        .iter()
        .find(|f| f.name() == "claimwatch_pipeline_consumed_records_total")
    {
        let mut per: Vec<(String, f64)> = f
            .get_metric()
            .iter()
            .map(|m| {
                let topic = m
                    .get_label()
                    .iter()
                    .find(|l| l.name() == "topic")
                    .map(|l| l.value().to_owned())
                    .unwrap_or_default();
                (topic, m.get_counter().get_value())
            })
            .filter(|(_, v)| *v > 0.0)
            .collect();
        per.sort_by(|a, b| b.1.total_cmp(&a.1));
        let shown: Vec<String> = per.iter().map(|(t, v)| format!("{t} {v:.0}")).collect();
        println!("records consumed per topic: {}", shown.join(", "));
    }
}

#[tokio::main(flavor = "multi_thread", worker_threads = 4)]
async fn main() {
    let pages = claimwatch::memory::prefer_small_pages();
    let a = args();
    // The service's logs on stderr, filtered by `RUST_LOG` as in the binary (default: warnings).
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .try_init();
    let dir = tempfile::tempdir().unwrap();
    let mut _mock = None;
    let mut _tansu = None;
    let brokers = if a.tansu {
        let b = support::Broker::start();
        let s = b.bootstrap.clone();
        _tansu = Some(b);
        s
    } else {
        let m = MockCluster::new(1).unwrap();
        let s = m.bootstrap_servers();
        _mock = Some(m);
        s
    };
    let mut config = RuntimeConfig {
        brokers,
        group_id: "loadtest-pipeline".into(),
        state_dir: dir.path().join("state"),
        http_listen: None,
        ..RuntimeConfig::default()
    };
    config.topics.partitions = a.partitions as i32;
    config.core.partitions = a.partitions;
    if let Some(ms) = a.checkpoint_interval_ms {
        config.checkpoint_interval_ms = ms;
    }
    if let Some(ms) = a.max_task_idle_ms {
        config.max_task_idle_ms = ms;
    }
    if a.exactly_once {
        config.processing_guarantee = claimwatch::runtime::config::ProcessingGuarantee::ExactlyOnce;
    }
    if a.without_analytics {
        config.core.disable_analytics();
    }
    config.consumer.extend(key_values(&a.consumer));
    config.producer.extend(key_values(&a.producer));
    let mut all_topics: Vec<String> = topics::all(&config).into_iter().map(|t| t.name).collect();
    all_topics.push("loadtest.passthrough".into());
    let mut lt = config.clone();
    lt.topics.changelog_prefix = "loadtest.changelog.".into();
    all_topics.extend(
        topics::all(&lt)
            .into_iter()
            .filter(|t| t.compacted)
            .map(|t| t.name),
    );
    // Compacted topics that are not changelogs (the compacted outputs) are in both lists.
    all_topics.sort();
    all_topics.dedup();
    match &_mock {
        Some(m) => {
            for t in &all_topics {
                m.create_topic(t, a.partitions as i32, 1).unwrap();
            }
        }
        None => {
            topics::create(&config).await.unwrap();
            topics::create(&lt).await.unwrap();
            let mut extra = config.clone();
            extra.topics.dead_letter = "loadtest.passthrough".into();
            topics::create(&extra).await.unwrap();
        }
    }
    let broker_name = if a.tansu { "Tansu" } else { "mock cluster" };
    println!(
        "broker: {broker_name}, {} partitions; transparent huge pages: {pages:?}",
        a.partitions
    );

    // The same input for both runs.
    let input = dir.path().join("input");
    claimwatch::generate::write::generate_to_dir(a.members, 7, &input, Format::Json).unwrap();
    let t = Instant::now();
    let produced = produce::produce_dir(&config, &input, Format::Avro, produce::Pace::Unlimited)
        .await
        .unwrap();
    let total = produced.total();
    println!(
        "input: {} members, {total} records, produced in {:.1} s",
        a.members,
        t.elapsed().as_secs_f64()
    );

    let pass = pass_through(&config, total).await;
    println!("pass-through (consume + re-produce, no processing): {pass:>9.0} records/s");

    let service = Service::start(config.clone()).await.unwrap();
    let (pipe, pipe_cores, pipe_quiet) = pipeline_rate(&service, 0, total).await;
    println!("pipeline (decode, core, outputs, checkpoints):     {pipe:>9.0} records/s");
    println!(
        "pipeline until quiet (the internal records the inputs caused handled too): {pipe_quiet:.0} records/s"
    );
    println!("ratio pipeline / pass-through: {:.2}", pipe / pass);
    println!("CPU during the pipeline run: {pipe_cores:.2} cores busy (service and broker)");
    print_stages(&service, total);

    // Latency at half the pipeline's maximum (or the rate asked for), on a second population.
    let rate = a.offered_rate.unwrap_or(pipe / 2.0);
    let input2 = dir.path().join("input2");
    claimwatch::generate::write::generate_to_dir(a.members / 2, 8, &input2, Format::Avro).unwrap();
    let mut props = config.consumer_properties();
    props.insert("group.id".into(), "loadtest-latency".into());
    props.insert("enable.partition.eof".into(), "false".into());
    props.insert("fetch.wait.max.ms".into(), "5".into());
    let reader: StreamConsumer = claimwatch::runtime::config::client_config(&props)
        .create()
        .unwrap();
    let mut tpl = TopicPartitionList::new();
    for topic in [&config.topics.claim_lifecycle, &config.topics.readmissions] {
        for p in 0..a.partitions as i32 {
            tpl.add_partition_offset(topic, p, Offset::End).unwrap();
        }
    }
    reader.assign(&tpl).unwrap();
    // Per output: (received at, input timestamp, output's own Kafka timestamp), in ms.
    let latencies = Arc::new(std::sync::Mutex::new(Vec::<(i64, i64, i64)>::new()));
    let lat = Arc::clone(&latencies);
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let stop_reader = Arc::clone(&stop);
    // The subscriber runs on its own thread and runtime, as another process would: on the
    // service's runtime it would wait behind the partition tasks and count that wait as latency.
    let reader_task = std::thread::spawn(move || {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
            .block_on(read_latencies(reader, lat, stop_reader))
    });
    async fn read_latencies(
        reader: StreamConsumer,
        lat: Arc<std::sync::Mutex<Vec<(i64, i64, i64)>>>,
        stop_reader: Arc<std::sync::atomic::AtomicBool>,
    ) {
        let mut stream = reader.stream();
        while !stop_reader.load(Ordering::Relaxed) {
            let Ok(Some(Ok(m))) =
                tokio::time::timeout(Duration::from_millis(200), stream.next()).await
            else {
                continue;
            };
            let now = chrono::Utc::now().timestamp_millis();
            let ts = m.headers().and_then(|h| {
                h.iter()
                    .find(|h| h.key == claimwatch::runtime::INPUT_TIMESTAMP_HEADER)
                    .and_then(|h| h.value)
                    .and_then(|v| std::str::from_utf8(v).ok())
                    .and_then(|v| v.parse::<i64>().ok())
            });
            if let Some(ts) = ts {
                let produced = m.timestamp().to_millis().unwrap_or(now);
                lat.lock().unwrap().push((now, ts, produced));
            }
        }
    }
    let status = Arc::clone(&service.status);
    let before = status.consumed.load(Ordering::Relaxed);
    let stages_before = stage_sums(&service);
    let offered_total = Arc::new(std::sync::atomic::AtomicU64::new(u64::MAX));
    // The offered run's producer, connected before the clock starts: its first connection, the
    // idempotent producer's id and the input topics' metadata are not pipeline latency (on Tansu
    // they held the first second's records back: ~10,000 records offered and not on the broker).
    let offered_producer = warm_producer(&config, a.partitions).await;
    // Consumer lag over time: records offered so far minus records the service consumed; and
    // how many of the offered records the broker holds (the input partitions' high watermarks),
    // which tells a service that falls behind from a load producer that has not delivered yet.
    let lag = Arc::new(std::sync::Mutex::new(Vec::<(f64, u64, u64)>::new()));
    let watermarks = InputWatermarks::new(&config, a.partitions);
    let on_broker_before = watermarks.sum();
    let sampler = {
        let (status, lag) = (Arc::clone(&status), Arc::clone(&lag));
        let offered_total = Arc::clone(&offered_total);
        let stop = Arc::clone(&stop);
        std::thread::spawn(move || {
            let started = Instant::now();
            let mut next = Duration::from_millis(500);
            while !stop.load(Ordering::Relaxed) {
                std::thread::sleep(next.saturating_sub(started.elapsed()));
                next += Duration::from_millis(500);
                let consumed = status.consumed.load(Ordering::Relaxed) - before;
                let offered = ((started.elapsed().as_secs_f64() * rate) as u64)
                    .min(offered_total.load(Ordering::Relaxed));
                let on_broker = watermarks.sum().saturating_sub(on_broker_before);
                lag.lock().unwrap().push((
                    started.elapsed().as_secs_f64(),
                    offered.saturating_sub(consumed),
                    offered.saturating_sub(on_broker),
                ));
            }
        })
    };
    let t = Instant::now();
    // Outputs caused by inputs produced before this run (none after the quiet wait above, but
    // a broker can hold records back) are left out of the latency.
    let offered_from_ms = chrono::Utc::now().timestamp_millis();
    let cpu_before = cpu_secs();
    let p2 = produce::produce_dir_with(
        &offered_producer,
        &config,
        &input2,
        Format::Avro,
        produce::Pace::Rate(rate),
    )
    .await
    .unwrap();
    let offered_secs = t.elapsed().as_secs_f64();
    offered_total.store(p2.total(), Ordering::Relaxed);
    let cores_busy = (cpu_secs() - cpu_before) / offered_secs;
    tokio::time::sleep(Duration::from_secs(3)).await;
    stop.store(true, Ordering::Relaxed);
    reader_task.join().unwrap();
    let _ = sampler.join();
    let series = lag.lock().unwrap().clone();
    let max_lag = series.iter().map(|s| s.1).max().unwrap_or(0);
    // About twelve samples of one column of the series, as `0.5s:N 1.0s:N ...`.
    let sampled = |column: fn(&(f64, u64, u64)) -> u64| -> String {
        series
            .iter()
            .step_by((series.len() / 12).max(1))
            .map(|s| format!("{:.1}s:{}", s.0, column(s)))
            .collect::<Vec<_>>()
            .join(" ")
    };
    println!(
        "consumer lag during the offered run (records offered - consumed): max {max_lag}; {}",
        sampled(|s| s.1)
    );
    println!(
        "of which not yet on the broker (records offered - input high watermarks): {}",
        sampled(|s| s.2)
    );
    let all_samples = latencies.lock().unwrap().clone();
    let samples: Vec<(i64, i64, i64)> = all_samples
        .iter()
        .copied()
        .filter(|(_, ts, _)| *ts >= offered_from_ms)
        .collect();
    if samples.len() < all_samples.len() {
        println!(
            "{} outputs of inputs produced before the offered run left out of the latency",
            all_samples.len() - samples.len()
        );
    }
    let sorted = |f: &dyn Fn(&(i64, i64, i64)) -> i64| {
        let mut v: Vec<f64> = samples.iter().map(|s| f(s) as f64).collect();
        v.sort_by(f64::total_cmp);
        v
    };
    let l = sorted(&|(now, ts, _)| now - ts);
    println!(
        "latency at {rate:.0} records/s offered ({} records over {offered_secs:.0} s), input produced -> output received, {} outputs: p50 {:.0} ms, p99 {:.0} ms, p99.9 {:.0} ms, max {:.0} ms",
        p2.total(),
        l.len(),
        percentile(&l, 0.5),
        percentile(&l, 0.99),
        percentile(&l, 0.999),
        l.last().copied().unwrap_or(f64::NAN)
    );
    // Where the latency is: input timestamp -> the output's produce call (the service's consumer
    // fetch, its queue and the processing), then the output's produce call -> received (producer
    // linger, broker, the subscriber's fetch).
    let (service_side, delivery_side) = (
        sorted(&|(_, ts, produced)| produced - ts),
        sorted(&|(now, _, produced)| now - produced),
    );
    println!(
        "CPU during the offered run: {cores_busy:.2} cores busy (this process: service, broker when mock, load driver and subscriber) of {}",
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
    println!(
        "latency split: input -> output produced p50 {:.0} / p99 {:.0} ms; output produced -> received p50 {:.0} / p99 {:.0} ms",
        percentile(&service_side, 0.5),
        percentile(&service_side, 0.99),
        percentile(&delivery_side, 0.5),
        percentile(&delivery_side, 0.99),
    );
    if let Some(first) = samples.iter().map(|s| s.0).min() {
        let mut by_second: std::collections::BTreeMap<i64, Vec<f64>> = Default::default();
        for (now, ts, _) in &samples {
            by_second
                .entry((now - first) / 500)
                .or_default()
                .push((now - ts) as f64);
        }
        let series: Vec<String> = by_second
            .into_iter()
            .map(|(half, mut v)| {
                v.sort_by(f64::total_cmp);
                format!(
                    "{:.1}s:{}/{:.0}",
                    half as f64 / 2.0,
                    v.len(),
                    percentile(&v, 0.99)
                )
            })
            .collect();
        println!(
            "latency p99 per half second (received at: outputs/p99 ms): {}",
            series.join(" ")
        );
    }
    println!(
        "stage time during the offered run: {}",
        stage_split(&service, &stages_before)
    );
    service.shutdown().await;
    println!(
        "peak RSS of this process (broker included when mock): {} MiB",
        rss_kib("VmHWM:") / 1024
    );

    // Restore: one changelog partition with `restore_entries` claim states.
    let sample = support::read_topic(
        &config.brokers,
        &config.topics.changelog("claims"),
        Duration::from_millis(500),
    )
    .into_iter()
    .find(|(_, _, k, v)| !v.is_empty() && !k.starts_with(b"\0"))
    .map(|(_, _, _, v)| v)
    .expect("a claim state in the changelog");
    let producer: FutureProducer =
        claimwatch::runtime::config::client_config(&config.producer_properties())
            .create()
            .unwrap();
    let topic = lt.topics.changelog("claims");
    let mut pending = Vec::with_capacity(50_000);
    for i in 0..a.restore_entries {
        let key = format!("RESTORE-{i:09}");
        let mut rec = FutureRecord::<str, [u8]>::to(&topic)
            .key(&key)
            .payload(&sample)
            .partition(0);
        loop {
            match producer.send_result(rec) {
                Ok(f) => {
                    pending.push(f);
                    break;
                }
                Err((_, r)) => {
                    rec = r;
                    tokio::time::sleep(Duration::from_micros(200)).await;
                }
            }
        }
        if pending.len() >= 50_000 {
            for f in pending.drain(..) {
                f.await.unwrap().unwrap();
            }
        }
    }
    for f in pending.drain(..) {
        f.await.unwrap().unwrap();
    }
    producer.flush(Duration::from_secs(30)).unwrap();
    let lt2 = lt.clone();
    let (read, load, n, bytes, durable) = tokio::task::spawn_blocking(move || {
        let t = Instant::now();
        let r = changelog::restore(&lt2, 0, Duration::from_secs(300)).unwrap();
        let read = t.elapsed();
        let bytes: usize = r.entries.iter().map(|e| e.2.len()).sum();
        let db = StateDb::open(&dir.path().join("restore")).unwrap();
        let store = db.partition(0).unwrap();
        let engine = Engine::new(lt2.core.clone(), RefData::shared());
        let t = Instant::now();
        let expected = r.entries.len();
        let mut p = Partition::open_restored(
            0,
            store,
            &engine,
            r.entries,
            &r.checkpoint.unwrap_or_default(),
        )
        .unwrap();
        let ready = t.elapsed();
        let n = p.claims().len();
        assert_eq!(n, expected);
        p.wait_for_restore_write().unwrap();
        (read, ready, n, bytes, t.elapsed())
    })
    .await
    .unwrap();
    let total_restore = read + load;
    println!(
        "restore of {n} entries ({} MiB) from the changelog: ready after {:.1} s ({:.0} entries/s): read from the broker {:.1} s, decode into the hot view + timers {:.1} s; on local disk {:.1} s after the read",
        bytes >> 20,
        total_restore.as_secs_f64(),
        n as f64 / total_restore.as_secs_f64(),
        read.as_secs_f64(),
        load.as_secs_f64(),
        durable.as_secs_f64()
    );
}

/// The summed high watermarks of the input topics' partitions, read with a client of its own.
/// Tansu's can be one record batch short of the real end (tests/support): good enough to tell
/// thousands of records apart.
struct InputWatermarks {
    client: rdkafka::consumer::BaseConsumer,
    partitions: Vec<(String, i32)>,
}

impl InputWatermarks {
    fn new(config: &RuntimeConfig, partitions: u32) -> Self {
        let mut props = config.consumer_properties();
        props.insert("group.id".into(), "loadtest-watermarks".into());
        let client = claimwatch::runtime::config::client_config(&props)
            .create()
            .unwrap();
        let partitions = claimwatch::model::InputStream::ALL
            .iter()
            .flat_map(|s| {
                let t = config.topics.input(*s).to_owned();
                (0..partitions as i32).map(move |p| (t.clone(), p))
            })
            .collect();
        Self { client, partitions }
    }

    fn sum(&self) -> u64 {
        self.partitions
            .iter()
            .filter_map(|(t, p)| {
                self.client
                    .fetch_watermarks(t, *p, Duration::from_secs(2))
                    .ok()
            })
            .map(|(_, high)| high.max(0) as u64)
            .sum()
    }
}

/// A producer with the service's settings that has delivered to every partition of the
/// pass-through topic (done with by now) and fetched the input topics' metadata.
async fn warm_producer(config: &RuntimeConfig, partitions: u32) -> FutureProducer {
    let producer: FutureProducer =
        claimwatch::runtime::config::client_config(&config.producer_properties())
            .create()
            .unwrap();
    for p in 0..partitions as i32 {
        producer
            .send(
                FutureRecord::<[u8], [u8]>::to("loadtest.passthrough")
                    .partition(p)
                    .payload(b"warm-up"),
                Duration::from_secs(30),
            )
            .await
            .unwrap();
    }
    let inputs: Vec<String> = claimwatch::model::InputStream::ALL
        .iter()
        .map(|s| config.topics.input(*s).to_owned())
        .collect();
    let p = producer.clone();
    tokio::task::spawn_blocking(move || {
        for t in &inputs {
            p.client()
                .fetch_metadata(Some(t), Duration::from_secs(10))
                .unwrap();
        }
    })
    .await
    .unwrap();
    producer
}
