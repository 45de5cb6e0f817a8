//! Failover on a real broker (Tansu), with the service as separate `claimwatch run` processes:
//! instances are killed with SIGKILL mid-stream, partitions move, state is restored from the
//! changelog, and the outputs still converge to replay's (duplicates counted, none lost).

mod support;

use std::collections::BTreeSet;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use claimwatch::codec::Format;
use claimwatch::model::OutputEvent;
use claimwatch::replay::{self, ReplayOptions};
use claimwatch::runtime::config::ProcessingGuarantee;
use claimwatch::runtime::{produce, topics, RuntimeConfig};
use support::*;

const PARTITIONS: u32 = 4;

fn write_config(config: &RuntimeConfig, path: &Path) {
    // Only what differs from the defaults; the rest comes from the binary's own defaults.
    let text = format!(
        "brokers = \"{}\"\ngroup_id = \"{}\"\nstate_dir = \"{}\"\ncheckpoint_interval_ms = 300\n\
         processing_guarantee = \"{}\"\n\
         [topics]\npartitions = {p}\n[core]\npartitions = {p}\nmember_lookback_days = {lookback}\n\
         [consumer]\n\"session.timeout.ms\" = \"6000\"\n\"heartbeat.interval.ms\" = \"500\"\n{}",
        config.brokers,
        config.group_id,
        config.state_dir.display(),
        match config.processing_guarantee {
            ProcessingGuarantee::AtLeastOnce => "at_least_once",
            ProcessingGuarantee::ExactlyOnce => "exactly_once",
        },
        // Exactly-once on Tansu: see `exactly_once_crashes_and_converges` for why the service
        // reads uncommitted there.
        match config.processing_guarantee {
            ProcessingGuarantee::AtLeastOnce => "",
            ProcessingGuarantee::ExactlyOnce => "\"isolation.level\" = \"read_uncommitted\"\n",
        },
        p = PARTITIONS,
        lookback = config.core.member_lookback_days,
    );
    std::fs::write(path, text).unwrap();
}

/// A `claimwatch run` process, killed when dropped (a failing test leaves no instance behind).
struct Instance(Child);

impl Drop for Instance {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl std::ops::Deref for Instance {
    type Target = Child;
    fn deref(&self) -> &Child {
        &self.0
    }
}

impl std::ops::DerefMut for Instance {
    fn deref_mut(&mut self) -> &mut Child {
        &mut self.0
    }
}

fn spawn(config_file: &Path, log: &Path) -> Instance {
    Instance(
        Command::new(env!("CARGO_BIN_EXE_claimwatch"))
            .args(["run", "--config"])
            .arg(config_file)
            .env(
                "RUST_LOG",
                std::env::var("FAILOVER_LOG").unwrap_or_else(|_| "info".into()),
            )
            .env("CLAIMWATCH_HTTP_LISTEN", "")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(log).unwrap())
            .spawn()
            .unwrap(),
    )
}

/// Fails with `what` and the first lines (cut to 300 characters) holding `needle`, if any.
fn assert_log_lacks(log: &str, needle: &str, what: &str) {
    let hits: Vec<String> = log
        .lines()
        .filter(|l| l.contains(needle))
        .take(3)
        .map(|l| l.chars().take(300).collect())
        .collect();
    assert!(hits.is_empty(), "{what}:\n{}", hits.join("\n"));
}

fn kill9(child: &mut Child) {
    let _ = Command::new("kill")
        .args(["-9", &child.id().to_string()])
        .status();
    let _ = child.wait();
}

fn stop(child: &mut Child) -> std::process::ExitStatus {
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    child.wait().unwrap()
}

struct Expected {
    lifecycle: std::collections::BTreeMap<String, String>,
    readmissions: std::collections::BTreeMap<(String, String), String>,
}

fn replay_expected(input: &Path, out: &Path, config: &RuntimeConfig) -> Expected {
    replay::run(&ReplayOptions {
        input: input.to_owned(),
        out: out.to_owned(),
        state: None,
        config: config.core.clone(),
        stop_after: None,
        close_open_windows: true,
    })
    .unwrap();
    let lifecycle = replay_outputs(out, "claimwatch.claim-lifecycle");
    Expected {
        lifecycle: final_lifecycle(&lifecycle),
        readmissions: final_readmissions(&replay_outputs(out, "claimwatch.readmissions")),
    }
}

/// Distinct lifecycle output ids (a re-emission after a crash repeats an id).
fn ids(events: &[OutputEvent]) -> BTreeSet<String> {
    events
        .iter()
        .filter_map(|e| match e {
            OutputEvent::ClaimLifecycle(u) => Some(u.output_id.clone()),
            _ => None,
        })
        .collect()
}

/// Waits until the lifecycle topic holds every update replay emitted; returns (records read,
/// distinct updates).
/// Waits until every claim's final lifecycle and every final readmission record equal replay's;
/// returns (lifecycle records read, distinct output ids).
fn converge(broker: &Broker, want: &Expected, logs: &Path) -> (usize, usize) {
    converge_at(broker, want, logs, "read_committed")
}

/// [`converge`], reading at an `isolation.level`.
fn converge_at(broker: &Broker, want: &Expected, logs: &Path, isolation: &str) -> (usize, usize) {
    let deadline = std::time::Instant::now() + Duration::from_secs(120);
    loop {
        let got = read_outputs_at(
            &broker.bootstrap,
            "claimwatch.claim-lifecycle",
            Duration::from_millis(1500),
            isolation,
        );
        let finals = final_lifecycle(&got);
        if finals == want.lifecycle {
            let readmissions = final_readmissions(&read_outputs_at(
                &broker.bootstrap,
                "claimwatch.readmissions",
                Duration::from_secs(2),
                isolation,
            ));
            // A readmission's last update can trail the claims: it waits for the paid amounts
            // that come through the internal encounter-cost topic.
            if readmissions == want.readmissions {
                return (got.len(), ids(&got).len());
            }
            if std::time::Instant::now() > deadline {
                assert_eq!(readmissions, want.readmissions, "final readmission records");
            }
            std::thread::sleep(Duration::from_millis(500));
            continue;
        }
        if std::time::Instant::now() > deadline {
            let missing = want
                .lifecycle
                .keys()
                .filter(|k| !finals.contains_key(*k))
                .count();
            let differ = want
                .lifecycle
                .iter()
                .filter(|(k, v)| finals.get(*k).is_some_and(|g| g != *v))
                .count();
            for entry in std::fs::read_dir(logs).unwrap() {
                let p = entry.unwrap().path();
                if p.extension().is_some_and(|e| e == "log") {
                    let text = std::fs::read_to_string(&p).unwrap_or_default();
                    for l in text
                        .lines()
                        .filter(|l| l.contains("WARN") || l.contains("ERROR"))
                        .take(20)
                    {
                        eprintln!("{}: {l}", p.display());
                    }
                    let tail: Vec<&str> = text.lines().rev().take(15).collect();
                    eprintln!(
                        "--- {}\n{}",
                        p.display(),
                        tail.into_iter().rev().collect::<Vec<_>>().join("\n")
                    );
                }
            }
            let mut by_partition = std::collections::BTreeMap::<i32, usize>::new();
            for k in want.lifecycle.keys().filter(|k| !finals.contains_key(*k)) {
                *by_partition
                    .entry(claimwatch::core::partition_for(k, PARTITIONS))
                    .or_default() += 1;
            }
            eprintln!("missing claims by partition: {by_partition:?}");
            let uncommitted = final_lifecycle(&read_outputs_at(
                &broker.bootstrap,
                "claimwatch.claim-lifecycle",
                Duration::from_millis(1500),
                "read_uncommitted",
            ));
            eprintln!(
                "read uncommitted instead: {} of {} claims missing, equal to replay: {}",
                want.lifecycle
                    .keys()
                    .filter(|k| !uncommitted.contains_key(*k))
                    .count(),
                want.lifecycle.len(),
                uncommitted == want.lifecycle
            );
            if let Ok(keep) = std::env::var("FAILOVER_KEEP") {
                for entry in std::fs::read_dir(logs).unwrap() {
                    let p = entry.unwrap().path();
                    if p.extension().is_some_and(|e| e == "log") {
                        let _ = std::fs::create_dir_all(&keep);
                        let _ = std::fs::copy(&p, Path::new(&keep).join(p.file_name().unwrap()));
                    }
                }
            }
            if let Some((k, v)) = want
                .lifecycle
                .iter()
                .find(|(k, v)| finals.get(*k).is_some_and(|g| g != *v))
            {
                eprintln!("replay:  {v}\nservice: {}", finals[k]);
            }
            panic!(
                "did not converge: {missing} of {} claims missing, {differ} with a different final state",
                want.lifecycle.len()
            );
        }
        std::thread::sleep(Duration::from_millis(500));
    }
}

fn setup(members: usize, seed: u64) -> (Broker, tempfile::TempDir, RuntimeConfig, Expected, u64) {
    let broker = Broker::start();
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("input");
    claimwatch::generate::write::generate_to_dir(members, seed, &input, Format::Json).unwrap();
    let mut config = config(&broker, "failover", &dir.path().join("unused"), PARTITIONS);
    // The instances (the binary) load their configuration, which names the internal and
    // changelog topics after the group: the topics created here must be theirs.
    config.topics.scope_to_group(&config.group_id);
    // A look-back longer than the input, as in `kafka_e2e`: the inputs are in the topics before
    // the instances start, and a partition that reads them faster than paid amounts come back
    // through Tansu would otherwise see index stays leave the look-back first (README, *What is
    // equal to replay*).
    config.core.member_lookback_days = 3650;
    // Claim retentions stay at their defaults: a restarted or moved partition waits for an input
    // still catching up (`max_task_idle_catch_up_ms`), so event time does not run ahead of a
    // slower input and retire claims before its records are read (`kafka_catch_up`).
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(topics::create(&config)).unwrap();
    let want = replay_expected(&input, &dir.path().join("replay"), &config);
    let records = {
        let mut n = 0;
        for entry in std::fs::read_dir(&input).unwrap() {
            let p = entry.unwrap().path();
            if p.extension().is_some_and(|e| e == "jsonl") && !p.to_string_lossy().contains("truth")
            {
                n += std::fs::read_to_string(&p).unwrap().lines().count() as u64;
            }
        }
        n
    };
    (broker, dir, config, want, records)
}

fn produce_paced(config: &RuntimeConfig, input: &Path, rate: f64) -> std::thread::JoinHandle<u64> {
    let config = config.clone();
    let input = input.to_owned();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Runtime::new().unwrap();
        rt.block_on(produce::produce_dir(
            &config,
            &input,
            Format::Avro,
            produce::Pace::Rate(rate),
        ))
        .unwrap()
        .total()
    })
}

#[test]
fn two_instances_one_killed_mid_stream_then_restarted() {
    let (broker, dir, config, want, records) = setup(300, 11);
    let (a_cfg, b_cfg) = (dir.path().join("a.toml"), dir.path().join("b.toml"));
    let mut ca = config.clone();
    ca.state_dir = dir.path().join("state-a");
    write_config(&ca, &a_cfg);
    let mut cb = config.clone();
    cb.state_dir = dir.path().join("state-b");
    write_config(&cb, &b_cfg);
    let mut a = spawn(&a_cfg, &dir.path().join("a.log"));
    let mut b = spawn(&b_cfg, &dir.path().join("b.log"));
    std::thread::sleep(Duration::from_secs(8)); // both join and split the partitions
                                                // About 8 s of input.
    let producer = produce_paced(&config, &dir.path().join("input"), records as f64 / 8.0);
    std::thread::sleep(Duration::from_secs(4));
    kill9(&mut a);
    let produced = producer.join().unwrap();
    assert_eq!(produced, records);
    let (read, distinct) = converge(&broker, &want, dir.path());
    println!(
        "after kill -9 of one of two instances: {read} lifecycle records, {distinct} distinct, {} duplicates",
        read - distinct
    );
    // The killed instance comes back: partitions rebalance to it (restored from its stale local
    // store or the changelog) and nothing is lost or changed.
    let mut a = spawn(&a_cfg, &dir.path().join("a2.log"));
    std::thread::sleep(Duration::from_secs(10));
    let b_log = std::fs::read_to_string(dir.path().join("b.log")).unwrap();
    assert!(
        b_log.contains("restored from changelog"),
        "the survivor restored the dead instance's partitions from the changelog"
    );
    // Reaching the end of a changelog partition is how a restore knows it is done, not an
    // error for the operator (librdkafka's default context logs each one at ERROR).
    assert_log_lacks(
        &b_log,
        "PartitionEOF",
        "the restore logged the ends of its changelog partitions",
    );
    // librdkafka's statistics go to the metrics (the service's and the raw X12 consumer's); a
    // client with statistics on and the default context (the raw X12 consumer did) logs a
    // ~10 KB "Client stats" line at INFO every 15 s.
    assert_log_lacks(&b_log, "Client stats", "a client logged its statistics");
    let (read2, distinct2) = converge(&broker, &want, dir.path());
    println!("after the restart: {read2} records, {distinct2} distinct");
    assert!(stop(&mut a).success(), "SIGTERM exits 0");
    assert!(stop(&mut b).success(), "SIGTERM exits 0");
    let logs = std::fs::read_to_string(dir.path().join("a2.log")).unwrap();
    assert!(
        logs.contains("partitions assigned"),
        "the restarted instance took partitions back"
    );
}

#[test]
fn single_instance_crashes_at_several_points_and_converges() {
    let (broker, dir, config, want, records) = setup(250, 23);
    let cfg_file = dir.path().join("one.toml");
    let mut c = config.clone();
    c.state_dir = dir.path().join("state");
    write_config(&c, &cfg_file);
    let producer = produce_paced(&config, &dir.path().join("input"), records as f64 / 10.0);
    // Crash after different amounts of progress; each restart resumes from its checkpoint.
    for (i, wait_ms) in [2500u64, 1700, 3100].into_iter().enumerate() {
        let mut p = spawn(&cfg_file, &dir.path().join(format!("run{i}.log")));
        std::thread::sleep(Duration::from_millis(wait_ms + 3000));
        kill9(&mut p);
    }
    producer.join().unwrap();
    let mut p = spawn(&cfg_file, &dir.path().join("final.log"));
    let (read, distinct) = converge(&broker, &want, dir.path());
    println!(
        "after three crashes: {read} lifecycle records, {distinct} distinct, {} duplicates",
        read - distinct
    );
    assert!(stop(&mut p).success());
}

#[test]
fn broker_outage_of_20_seconds_mid_stream_is_survived() {
    let (broker, dir, config, want, records) = setup(200, 31);
    let cfg_file = dir.path().join("one.toml");
    let mut c = config.clone();
    c.state_dir = dir.path().join("state");
    write_config(&c, &cfg_file);
    let mut p = spawn(&cfg_file, &dir.path().join("run.log"));
    std::thread::sleep(Duration::from_secs(5));
    let producer = produce_paced(&config, &dir.path().join("input"), records as f64 / 6.0);
    std::thread::sleep(Duration::from_secs(3));
    broker.pause();
    std::thread::sleep(Duration::from_secs(20));
    assert!(
        p.try_wait().unwrap().is_none(),
        "the service is still running during the outage"
    );
    broker.resume();
    producer.join().unwrap();
    let (read, distinct) = converge(&broker, &want, dir.path());
    println!(
        "after a 20 s broker outage: {read} lifecycle records, {distinct} distinct, {} duplicates",
        read - distinct
    );
    assert!(stop(&mut p).success(), "SIGTERM exits 0");
}

/// Exactly-once (Kafka transactions per partition): crashes mid-stream, each restart resumes from
/// the last committed transaction (its state from the local store or, when the store is behind
/// the committed offsets, from the changelog), and the outputs converge to replay's.
///
/// Read uncommitted, by the service and by this test, because of two things Tansu does: it shows
/// aborted records to `read_committed` readers too (so the duplicates printed include aborted
/// transactions' records), and after a producer is killed with a transaction open, the partitions
/// that transaction touched sometimes keep their last stable offset at its first record even
/// after the successor registered the same transactional id and committed its own transactions
/// (on Kafka the successor's registration aborts the open transaction): a `read_committed`
/// reader then stops there for good. Seen in 5 of 14 runs; in the last one the same topic read
/// uncommitted held every record and equalled replay, read committed missed 117 claims of the
/// two partitions whose transactions were open at the kill.
#[test]
fn exactly_once_crashes_and_converges() {
    let (broker, dir, config, want, records) = setup(200, 41);
    let cfg_file = dir.path().join("eos.toml");
    let mut c = config.clone();
    c.state_dir = dir.path().join("state");
    c.processing_guarantee = ProcessingGuarantee::ExactlyOnce;
    write_config(&c, &cfg_file);
    let producer = produce_paced(&config, &dir.path().join("input"), records as f64 / 8.0);
    for (i, wait_ms) in [2800u64, 2200].into_iter().enumerate() {
        let mut p = spawn(&cfg_file, &dir.path().join(format!("eos{i}.log")));
        std::thread::sleep(Duration::from_millis(wait_ms + 3000));
        kill9(&mut p);
    }
    producer.join().unwrap();
    let mut p = spawn(&cfg_file, &dir.path().join("eos-final.log"));
    let (read, distinct) = converge_at(&broker, &want, dir.path(), "read_uncommitted");
    println!(
        "exactly-once after two crashes: {read} lifecycle records, {distinct} distinct, {} duplicates (aborted transactions included: Tansu shows them)",
        read - distinct
    );
    assert!(stop(&mut p).success(), "SIGTERM exits 0");
    let log = std::fs::read_to_string(dir.path().join("eos-final.log")).unwrap();
    assert!(
        log.contains("transactional producer ready"),
        "the service ran with transactions"
    );
}
