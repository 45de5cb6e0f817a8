//! Payer denial monitors, keyed by payer id.
//!
//! **Job.** Aggregate the [`PayerFact`]s that reconciliation re-keys to the payer flow into
//! tumbling **hourly** and **daily** windows on event time, emit each window's [`PayerKpi`] on
//! `claimwatch.payer-kpis`, and raise [`PayerMonitorAlert`]s on `claimwatch.alerts.payer-monitor`
//! when a daily window crosses a threshold.
//!
//! **State** (table `payer_windows`, one [`WindowState`] per key `<payer_id>|<H|D>|<start>`): the
//! window's sums ([`Aggregate`]: counts, cents, counts and cents by CARC category, a bounded
//! days-to-payment histogram), the last emitted version, the late facts and the rules alerted.
//!
//! **Time.** A fact never moves the partition's watermark (like the member flow's costs); the
//! payer flow has its own, the largest event time of the facts applied in the partition (kept in
//! the checkpoint), because facts arrive through a topic behind the partition's own inputs. Per
//! window:
//! - until the watermark passes `end + grace` a fact just updates the window;
//! - at `end + grace` a timer emits version 1 (a window without facts does not exist and emits
//!   nothing);
//! - a fact that arrives after that but before `end + retention` updates the window and emits a
//!   **correction** (version + 1) at once;
//! - at the end of a replay's input the windows still open are emitted as they stand
//!   ([`crate::core::Partition::close_payer_windows`]): the last hours and day of the data are
//!   reported, and a fact that reaches one of them later is a correction;
//! - at `end + retention` the window leaves state; a fact for such a window is dropped and
//!   counted ([`crate::core::PartitionStats::monitor_facts_dropped`]).
//!
//! **Drift** (daily windows): the baseline is the payer's daily windows among the previous
//! `baseline_days` days (all closed, since the retention exceeds the baseline and days close in
//! order); see [`drift`] for the z-score and the CARC-mix chi-squared.
//!
//! **Alerts** (daily windows) are evaluated at every emission and raised at most once per payer,
//! window and rule: output id `<payer>:DAILY:<start>:<rule>`.
//!
//! Output ids are `<payer>:<granularity>:<start>:<version>`: a function of the facts applied, so a
//! re-emission after a crash is identical.

pub mod drift;
pub mod window;

#[cfg(test)]
mod tests;

use crate::config::MonitorConfig;
use crate::model::{
    EpochMillis, Granularity, MonitorRule, OutputEvent, PayerFact, PayerKpi, PayerMonitorAlert,
    DAY_MS,
};
use crate::state::Table;
pub use drift::{Baseline, Drift};
pub use window::{window_key, window_start, Aggregate, WindowState};

/// Top categories reported on a KPI.
const TOP_CATEGORIES: usize = 5;

/// What applying a fact to one window did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Applied {
    /// The window is still open (before `end + grace`).
    Open,
    /// The window had been emitted (or was already due): it was emitted again.
    Emitted,
    /// Older than the retention: dropped.
    Dropped,
}

/// Which timer of a window is due.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WindowTimer {
    /// Emit version 1.
    Close,
    /// Leave state.
    Expire,
}

/// The monitor logic. Stateless itself: state lives in [`WindowState`]s.
#[derive(Clone, Debug)]
pub struct Monitor {
    config: MonitorConfig,
    retention_ms: i64,
}

impl Monitor {
    pub fn new(config: &MonitorConfig) -> Self {
        Self {
            retention_ms: i64::from(config.retention_days) * DAY_MS,
            config: config.clone(),
        }
    }

    pub fn enabled(&self) -> bool {
        self.config.enabled
    }

    fn grace_ms(&self, g: Granularity) -> i64 {
        match g {
            Granularity::Hourly => i64::from(self.config.hourly_grace_minutes) * 60_000,
            Granularity::Daily => i64::from(self.config.daily_grace_hours) * 3_600_000,
        }
    }

    /// When the window's next timer is due, and which.
    pub fn next_timer(&self, w: &WindowState) -> (EpochMillis, WindowTimer) {
        if w.version == 0 {
            (w.end() + self.grace_ms(w.granularity), WindowTimer::Close)
        } else {
            (w.end() + self.retention_ms, WindowTimer::Expire)
        }
    }

    /// Applies `fact` to the window `key` of granularity `g` starting at `start`, given the payer
    /// flow's `watermark`.
    #[allow(clippy::too_many_arguments)]
    pub fn apply(
        &self,
        windows: &mut Table<WindowState>,
        key: &str,
        fact: &PayerFact,
        g: Granularity,
        start: EpochMillis,
        watermark: EpochMillis,
        out: &mut Vec<OutputEvent>,
    ) -> Applied {
        let end = start + g.millis();
        if watermark >= end.saturating_add(self.retention_ms) {
            return Applied::Dropped;
        }
        let mut emitted = false;
        windows.update(key, |w| {
            emitted = w.version > 0;
            if w.payer_id.is_empty() {
                w.payer_id.push_str(&fact.payer_id);
                w.granularity = g;
                w.start = start;
            }
            // The category of the latest fact: a payer's line of business does not change in
            // practice, and this keeps the window's label deterministic for a given fact order.
            w.payer_category = fact.payer_category;
            if w.version > 0 {
                w.late_facts += 1;
            }
            w.agg.add(fact);
        });
        // An emitted window is corrected at once. Before its grace has passed that happens
        // only to a window closed at the end of a replay's input ([`Monitor::close`]).
        if emitted || watermark >= end + self.grace_ms(g) {
            self.emit(windows, key, out);
            Applied::Emitted
        } else {
            Applied::Open
        }
    }

    /// Fires the window's due timer. Returns false when the window should leave state.
    pub fn fire(
        &self,
        windows: &mut Table<WindowState>,
        key: &str,
        timer: WindowTimer,
        out: &mut Vec<OutputEvent>,
    ) -> bool {
        match timer {
            WindowTimer::Close => {
                self.emit(windows, key, out);
                true
            }
            WindowTimer::Expire => false,
        }
    }

    /// Emits version 1 of window `key` if it has not been emitted: the end of a replay's input,
    /// where the windows whose grace has not passed would otherwise never be reported. Returns
    /// whether it emitted. A fact that reaches such a window later (a replay resumed on more
    /// input) emits a correction at once, as for any emitted window.
    pub fn close(
        &self,
        windows: &mut Table<WindowState>,
        key: &str,
        out: &mut Vec<OutputEvent>,
    ) -> bool {
        if windows.get(key).is_none_or(|w| w.version > 0) {
            return false;
        }
        self.emit(windows, key, out);
        true
    }

    /// The payer's daily windows among the `baseline_days` days before `start`.
    fn baseline(
        &self,
        windows: &impl WindowSource,
        payer_id: &str,
        start: EpochMillis,
    ) -> Baseline {
        let mut base = Baseline::default();
        let mut key = String::with_capacity(payer_id.len() + 24);
        for d in 1..=i64::from(self.config.baseline_days) {
            window_key(&mut key, payer_id, Granularity::Daily, start - d * DAY_MS);
            windows.with_window(&key, |w| base.add(&w.agg));
        }
        base
    }

    /// The baseline and drift of a window with aggregate `agg` (none for hourly windows): what
    /// an emission of it carries.
    fn baseline_and_drift(
        &self,
        windows: &impl WindowSource,
        payer_id: &str,
        g: Granularity,
        start: EpochMillis,
        agg: &Aggregate,
    ) -> (Baseline, Drift) {
        if g == Granularity::Daily {
            let base = self.baseline(windows, payer_id, start);
            let drift = self.drift(agg, &base);
            (base, drift)
        } else {
            (Baseline::default(), Drift::default())
        }
    }

    /// The KPI record of window `key` as of now, built as an emission builds it (baseline and
    /// drift from the daily windows present now), at the window's last emitted `version`: 0 for
    /// an open window, whose `output_id` then names no record on the topic yet. For an emitted
    /// window it equals the last emission unless a baseline window was corrected since. `None`
    /// when the window is not in state.
    ///
    /// Reads one window at a time and holds no entry while reading another, so it is safe on a
    /// read view that the partition's task writes concurrently.
    pub fn current_kpi(&self, windows: &impl WindowSource, key: &str) -> Option<PayerKpi> {
        let w = windows.with_window(key, WindowState::clone)?;
        let (base, drift) =
            self.baseline_and_drift(windows, &w.payer_id, w.granularity, w.start, &w.agg);
        Some(kpi(&w, &base, &drift))
    }

    /// Emits the window's next version (and any alert it raises for the first time).
    fn emit(&self, windows: &mut Table<WindowState>, key: &str, out: &mut Vec<OutputEvent>) {
        let Some((payer_id, g, start)) = windows
            .get(key)
            .map(|w| (w.payer_id.clone(), w.granularity, w.start))
        else {
            return;
        };
        let (base, drift) = if g == Granularity::Daily {
            let agg = windows.get(key).map(|w| w.agg.clone()).unwrap_or_default();
            self.baseline_and_drift(windows, &payer_id, g, start, &agg)
        } else {
            (Baseline::default(), Drift::default())
        };
        let cfg = &self.config;
        windows.update(key, |w| {
            w.version += 1;
            let kpi = kpi(w, &base, &drift);
            if g == Granularity::Daily {
                let a = &cfg.alerts;
                let fpy = w.agg.first_pass_yield();
                let checks = [
                    (
                        MonitorRule::FirstPassYieldLow,
                        w.agg.first_adjudicated >= i64::from(a.min_first_pass_volume)
                            && fpy < a.min_first_pass_yield,
                        fpy,
                        a.min_first_pass_yield,
                        w.agg.first_adjudicated,
                    ),
                    (
                        MonitorRule::DenialRateSpike,
                        drift.denial_rate_z.is_some_and(|z| z >= a.denial_rate_z),
                        drift.denial_rate_z.unwrap_or(0.0),
                        a.denial_rate_z,
                        w.agg.adjudicated,
                    ),
                    (
                        MonitorRule::CarcMixShift,
                        drift.p_value.is_some_and(|p| p < a.carc_mix_p_value),
                        drift.p_value.unwrap_or(1.0),
                        a.carc_mix_p_value,
                        w.agg.category_count.iter().sum(),
                    ),
                ];
                out.push(OutputEvent::PayerKpi(kpi));
                for (rule, fired, value, threshold, volume) in checks {
                    let bit = 1u8 << (rule as u8);
                    if !fired || w.alerted & bit != 0 {
                        continue;
                    }
                    w.alerted |= bit;
                    out.push(OutputEvent::PayerMonitorAlert(PayerMonitorAlert {
                        output_id: format!(
                            "{}:{}:{}:{}",
                            w.payer_id,
                            g.as_str(),
                            w.start,
                            rule.as_str()
                        ),
                        payer_id: w.payer_id.clone(),
                        payer_category: w.payer_category,
                        granularity: g,
                        window_start: w.start,
                        window_end: w.end(),
                        rule,
                        value,
                        threshold,
                        volume,
                        kpi_version: w.version,
                    }));
                }
            } else {
                out.push(OutputEvent::PayerKpi(kpi));
            }
        });
    }

    fn drift(&self, agg: &Aggregate, base: &Baseline) -> Drift {
        let cfg = &self.config;
        let (baseline_denial_rate, denial_rate_z) =
            drift::denial_rate_z(agg, base, i64::from(cfg.min_baseline_adjudicated));
        let (chi2, dof, p_value) = drift::carc_mix(
            agg,
            base,
            i64::from(cfg.min_mix_denials),
            i64::from(cfg.min_baseline_denials),
        );
        Drift {
            baseline_denial_rate,
            denial_rate_z,
            chi2,
            dof,
            p_value,
        }
    }
}

/// Read access to windows by key: the partition's [`Table`] or a read view of it (the API's).
pub trait WindowSource {
    /// Runs `f` on the window `key`, if present, without holding it afterwards.
    fn with_window<R>(&self, key: &str, f: impl FnOnce(&WindowState) -> R) -> Option<R>;
}

impl WindowSource for Table<WindowState> {
    fn with_window<R>(&self, key: &str, f: impl FnOnce(&WindowState) -> R) -> Option<R> {
        self.get(key).map(|w| f(&w))
    }
}

impl<S: std::hash::BuildHasher + Clone> WindowSource for dashmap::DashMap<String, WindowState, S> {
    fn with_window<R>(&self, key: &str, f: impl FnOnce(&WindowState) -> R) -> Option<R> {
        self.get(key).map(|w| f(&w))
    }
}

/// The KPI record of a window at its current version.
fn kpi(w: &WindowState, base: &Baseline, drift: &Drift) -> PayerKpi {
    let a = &w.agg;
    PayerKpi {
        output_id: format!(
            "{}:{}:{}:{}",
            w.payer_id,
            w.granularity.as_str(),
            w.start,
            w.version
        ),
        payer_id: w.payer_id.clone(),
        payer_category: w.payer_category,
        window_start: w.start,
        window_end: w.end(),
        version: w.version,
        submitted: a.submitted,
        accepted: a.accepted,
        rejected: a.rejected,
        paid: a.paid,
        denied: a.denied,
        paid_cents: a.paid_cents,
        denied_cents: a.denied_cents,
        denial_rate: a.denial_rate(),
        first_pass_yield: a.first_pass_yield(),
        top_denial_categories: a.top_denied_cents(TOP_CATEGORIES),
        median_days_to_payment: a.median_days_to_payment(),
        granularity: w.granularity,
        adjudicated: a.adjudicated,
        partially_paid: a.partially_paid,
        reversed: a.reversed,
        first_adjudicated: a.first_adjudicated,
        first_pass_paid: a.first_pass_paid,
        top_denial_category_counts: a.top_denial_counts(TOP_CATEGORIES),
        late_facts: w.late_facts,
        baseline_windows: base.windows,
        baseline_denial_rate: drift.baseline_denial_rate,
        denial_rate_z: drift.denial_rate_z,
        carc_mix_chi2: drift.chi2,
        carc_mix_dof: drift.dof,
        carc_mix_p_value: drift.p_value,
    }
}
