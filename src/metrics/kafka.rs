//! Metrics from librdkafka's statistics (the `statistics.interval.ms` callback,
//! `ClientContext::stats`): consumer lag per partition and the client's queue depth.

use rdkafka::Statistics;

use super::Metrics;

impl Metrics {
    /// Updates the lag and queue gauges from one statistics report. Call from the consumer's
    /// (and, if it has a custom context, the producer's) `ClientContext::stats`.
    ///
    /// Lag is librdkafka's `consumer_lag` (high watermark minus the committed or consumed
    /// offset, whichever is larger) for every partition the consumer wants (`desired`); a partition
    /// that is no longer reported, or whose lag is unknown (-1), loses its series, so a revoked
    /// partition does not keep its last lag forever.
    pub fn observe_librdkafka_stats(&self, stats: &Statistics) {
        let client = match stats.client_type.as_str() {
            "consumer" => "consumer",
            "producer" => "producer",
            _ => super::labels::OTHER,
        };
        self.client_queue_messages
            .with_label_values(&[client])
            .set(stats.msg_cnt as i64);
        self.client_queue_bytes
            .with_label_values(&[client])
            .set(stats.msg_size as i64);
        if client != "consumer" {
            return;
        }
        self.set_lag(stats, &self.lag_series);
    }

    /// The raw X12 consumer's statistics (its own group on `x12.raw`): its partitions' lag only,
    /// tracked apart from the service consumer's series, so neither report removes the other's.
    pub fn observe_raw_x12_stats(&self, stats: &Statistics) {
        self.set_lag(stats, &self.raw_lag_series);
    }

    /// Sets the lag of every partition in `stats` and removes the series that `series` (this
    /// client's last report) had and this report does not.
    fn set_lag(&self, stats: &Statistics, series: &std::sync::Mutex<Vec<(String, i32)>>) {
        let mut now: Vec<(String, i32)> = Vec::new();
        let mut b = itoa::Buffer::new();
        for (name, topic) in &stats.topics {
            for (id, p) in &topic.partitions {
                // -1 is librdkafka's internal "unassigned" partition.
                if *id < 0 || !p.desired || p.consumer_lag < 0 {
                    continue;
                }
                let t = self.topics.get(name);
                self.consumer_lag
                    .with_label_values(&[t, b.format(*id)])
                    .set(p.consumer_lag);
                now.push((t.to_owned(), *id));
            }
        }
        now.sort_unstable();
        now.dedup();
        let mut series = series.lock().unwrap_or_else(|e| e.into_inner());
        for (t, id) in series.iter() {
            if now
                .binary_search_by(|(t2, id2)| (t2.as_str(), *id2).cmp(&(t.as_str(), *id)))
                .is_err()
            {
                let _ = self
                    .consumer_lag
                    .remove_label_values(&[t.as_str(), b.format(*id)]);
            }
        }
        *series = now;
    }
}
