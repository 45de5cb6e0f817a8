//! librdkafka's mock cluster in a process of its own, for runs that need a broker which keeps up
//! and whose memory is not counted in the service's: `bash loadtest/soak.sh --mock`.
//!
//! `cargo run --release --example mock_broker` creates every topic of the deployment that the
//! `CLAIMWATCH_*` environment describes (the mock cluster does not implement topic creation
//! through the admin API, so `claimwatch topics create` cannot do it), prints
//! `bootstrap=HOST:PORT` on one line, then serves until it is killed (SIGTERM, SIGINT). The mock
//! keeps every record in memory (it has no retention), so its own RSS grows with what is produced
//! to it.

use claimwatch::runtime::config::RuntimeConfig;
use claimwatch::runtime::topics;
use rdkafka::mocking::MockCluster;
use std::io::Write;

fn main() {
    let config = match RuntimeConfig::load(RuntimeConfig::figment(None)) {
        Ok(c) => c,
        Err(e) => fail(&format!("configuration: {e}")),
    };
    let mock = MockCluster::new(1).unwrap_or_else(|e| fail(&format!("mock cluster: {e}")));
    for spec in topics::all(&config) {
        if let Err(e) = mock.create_topic(&spec.name, config.topics.partitions, 1) {
            fail(&format!("creating {}: {e}", spec.name));
        }
    }
    println!("bootstrap={}", mock.bootstrap_servers());
    let _ = std::io::stdout().flush();
    // The cluster lives on librdkafka's threads; this one only keeps it alive.
    loop {
        std::thread::park();
    }
}

fn fail(message: &str) -> ! {
    eprintln!("mock_broker: {message}");
    std::process::exit(1);
}
