//! Care-gap programme metrics: gaps opened, closed, expired and open, by vaccine and age band.

use prometheus::{IntCounterVec, IntGaugeVec, Registry};

use super::labels::Bounded;
use super::{counter_vec, gauge_vec, MetricsError};
use crate::caregaps::AGE_BANDS;
use crate::model::{CareGapAction, CareGapEvent};

/// Vaccines come from the rule table (a data file an operator can override): bounded.
const VACCINE_CAP: usize = 16;
const VACCINE_MAX_LEN: usize = 24;

pub(crate) struct CareGapMetrics {
    events: IntCounterVec,
    open: IntGaugeVec,
    vaccines: Bounded,
}

impl CareGapMetrics {
    pub(crate) fn new(r: &Registry) -> Result<Self, MetricsError> {
        let events = counter_vec(
            r,
            "claimwatch_caregaps_events_total",
            "Immunization care-gap events (claimwatch.care-gaps), by action (OPENED, CLOSED, EXPIRED, NOT_APPLICABLE), vaccine and age band when the gap opened.",
            &["action", "vaccine", "age_band"],
        )?;
        let open = gauge_vec(
            r,
            "claimwatch_caregaps_open_gaps",
            "Care gaps currently open (OPENED and not yet closed, expired or not applicable), by vaccine and age band, as counted from the events this instance emitted.",
            &["vaccine", "age_band"],
        )?;
        for v in ["INFLUENZA", "PNEUMOCOCCAL"] {
            for b in AGE_BANDS {
                open.with_label_values(&[v, b]);
                for a in CareGapAction::ALL {
                    events.with_label_values(&[a.as_str(), v, b]);
                }
            }
        }
        Ok(Self {
            events,
            open,
            vaccines: Bounded::new(VACCINE_CAP, VACCINE_MAX_LEN),
        })
    }

    pub(crate) fn observe(&self, g: &CareGapEvent) {
        let vaccine = self.vaccines.get(&g.vaccine);
        let band = AGE_BANDS
            .iter()
            .find(|b| **b == g.age_band)
            .copied()
            .unwrap_or(super::labels::OTHER);
        self.events
            .with_label_values(&[g.action.as_str(), vaccine, band])
            .inc();
        let open = self.open.with_label_values(&[vaccine, band]);
        match (g.action, g.previous_action) {
            (CareGapAction::Opened, _) => open.inc(),
            (_, Some(CareGapAction::Opened)) => open.dec(),
            _ => {}
        }
    }
}
