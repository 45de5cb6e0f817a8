//! A partition whose state cannot be restored leaves the instance not ready (README, "Health and
//! metrics endpoints"): the restore is tried 4 times, then the partition waits for the next
//! rebalance, and readiness must say so instead of reporting the instance ready without it.

mod support;

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use claimwatch::runtime::Service;
use rdkafka::mocking::MockCluster;
use rdkafka::types::{RDKafkaApiKey, RDKafkaRespErr};
use support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_instance_whose_partition_cannot_be_restored_is_not_ready() {
    let mock = MockCluster::new(1).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let config = mock_config(&mock, "restore-failure", &dir.path().join("state"), 1);
    // Every attempt to read the group's committed offsets (the first step of a restore) is
    // refused (more errors than the attempts take, librdkafka retrying some of them).
    mock.request_errors(
        RDKafkaApiKey::OffsetFetch,
        &[RDKafkaRespErr::RD_KAFKA_RESP_ERR_GROUP_AUTHORIZATION_FAILED; 200],
    );
    let service = Service::start(config.clone()).await.unwrap();
    let status = std::sync::Arc::clone(&service.status);
    // Assignment, then the attempts (pauses of 1, 2 and 4 s between them): never ready.
    let deadline = Instant::now() + Duration::from_secs(40);
    while status.restore_failures.load(Ordering::SeqCst) == 0 {
        assert!(
            !status.ready.load(Ordering::SeqCst),
            "ready without the partition's state"
        );
        assert!(
            Instant::now() < deadline,
            "the restore attempts never ended"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Given up: still not ready, no task.
    for _ in 0..20 {
        assert!(
            !status.ready.load(Ordering::SeqCst),
            "ready without the partition's state"
        );
        assert_eq!(status.assigned.load(Ordering::SeqCst), 0);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    service.shutdown().await;
}
