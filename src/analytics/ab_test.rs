//! Which variant of an A/B test wins. For a metric (readers who opened, readers who clicked, each
//! over the messages sent), the two campaigns with the highest rates are compared with a pooled
//! two-proportion z-test, two-sided, at 95% confidence. The leader wins when the test says so;
//! otherwise the answer is "not yet", with why: too few messages for the test to hold (each side
//! needs at least 10 successes and 10 failures), or a difference that chance explains.

use crate::domain::CampaignId;
use serde::Serialize;

/// The confidence a difference must reach to name a winner.
pub const CONFIDENCE: f64 = 0.95;
/// Successes and failures each side needs before the normal approximation is trusted.
pub const MIN_EACH: i64 = 10;

/// One variant's count on a metric.
#[derive(Debug, Clone, Copy)]
pub struct Variant {
    pub campaign: CampaignId,
    pub successes: i64,
    pub trials: i64,
}

impl Variant {
    fn rate(&self) -> f64 {
        match self.trials {
            0 => 0.0,
            n => self.successes as f64 / n as f64,
        }
    }
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Verdict {
    pub metric: &'static str,
    /// `winner`, or `not_yet`.
    pub outcome: &'static str,
    /// The campaign with the highest rate, and the next one.
    pub leader: CampaignId,
    pub runner_up: CampaignId,
    pub leader_rate: f64,
    pub runner_up_rate: f64,
    /// The test's statistic and two-sided p-value; `None` when there is too little to test.
    pub z: Option<f64>,
    pub p_value: Option<f64>,
    /// In words: who wins and how sure that is, or why not yet.
    pub summary: String,
}

/// The verdict on one metric over two or more variants (`None` with fewer than two).
pub fn verdict(metric: &'static str, variants: &[Variant]) -> Option<Verdict> {
    let mut ranked = variants.to_vec();
    ranked.sort_by(|a, b| b.rate().total_cmp(&a.rate()));
    let (a, b) = (*ranked.first()?, *ranked.get(1)?);
    let mut v = Verdict {
        metric,
        outcome: "not_yet",
        leader: a.campaign,
        runner_up: b.campaign,
        leader_rate: a.rate(),
        runner_up_rate: b.rate(),
        z: None,
        p_value: None,
        summary: String::new(),
    };
    let enough = |x: &Variant| x.successes >= MIN_EACH && x.trials - x.successes >= MIN_EACH;
    if !enough(&a) || !enough(&b) {
        v.summary = format!(
            "not yet: too few messages to tell (each campaign needs at least {MIN_EACH} who did \
             and {MIN_EACH} who did not)"
        );
        return Some(v);
    }
    let pooled = (a.successes + b.successes) as f64 / (a.trials + b.trials) as f64;
    let se = (pooled * (1.0 - pooled) * (1.0 / a.trials as f64 + 1.0 / b.trials as f64)).sqrt();
    let z = (a.rate() - b.rate()) / se;
    let p = 2.0 * (1.0 - normal_cdf(z.abs()));
    v.z = Some(z);
    v.p_value = Some(p);
    if p < 1.0 - CONFIDENCE {
        v.outcome = "winner";
        v.summary = format!(
            "campaign {} wins: {:.1}% against {:.1}% (p = {p:.4}, two-proportion z-test)",
            a.campaign,
            100.0 * a.rate(),
            100.0 * b.rate()
        );
    } else {
        v.summary = format!(
            "not yet: {:.1}% against {:.1}% may be chance (p = {p:.2}; a winner needs p < {:.2})",
            100.0 * a.rate(),
            100.0 * b.rate(),
            1.0 - CONFIDENCE
        );
    }
    Some(v)
}

/// The verdicts of a comparison: on readers who opened, on readers who clicked, and (when any of
/// the campaigns has conversions) on messages converted.
pub fn winners(reports: &[&super::CampaignReport]) -> Vec<Verdict> {
    let variants = |count: fn(&super::CampaignStats) -> i64| -> Vec<Variant> {
        (reports.iter())
            .map(|r| Variant {
                campaign: r.stats.campaign_id,
                successes: count(&r.stats),
                trials: r.stats.sent,
            })
            .collect()
    };
    let any_conversions = reports.iter().any(|r| r.stats.conversions.total > 0);
    [
        ("readers_opened", variants(|s| s.opened_by_readers)),
        (
            "readers_clicked",
            variants(|s| s.clicks.unique_excluding_machine),
        ),
        ("converted", variants(|s| s.conversions.unique)),
    ]
    .into_iter()
    .filter(|(metric, _)| *metric != "converted" || any_conversions)
    .filter_map(|(metric, variants)| verdict(metric, &variants))
    .collect()
}

/// The standard normal distribution function, from erf (Abramowitz and Stegun 7.1.26, absolute
/// error below 1.5e-7: far below what a 95% decision needs).
fn normal_cdf(x: f64) -> f64 {
    0.5 * (1.0 + erf(x / std::f64::consts::SQRT_2))
}

fn erf(x: f64) -> f64 {
    let t = 1.0 / (1.0 + 0.3275911 * x.abs());
    let poly = t
        * (0.254829592
            + t * (-0.284496736 + t * (1.421413741 + t * (-1.453152027 + t * 1.061405429))));
    let y = 1.0 - poly * (-x * x).exp();
    if x < 0.0 { -y } else { y }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn variant(id: i64, successes: i64, trials: i64) -> Variant {
        Variant {
            campaign: CampaignId(id),
            successes,
            trials,
        }
    }

    #[test]
    fn the_normal_distribution_is_right_where_decisions_are_made() {
        assert!((normal_cdf(1.959964) - 0.975).abs() < 1e-6);
        assert!((normal_cdf(0.0) - 0.5).abs() < 1e-9);
        assert!((normal_cdf(-1.0) - 0.158655).abs() < 1e-6);
    }

    #[test]
    fn a_clear_difference_wins_and_a_small_one_is_not_yet() {
        // 250 of 1,000 against 200 of 1,000: z = 2.68, p = 0.0074.
        let v = verdict(
            "readers_opened",
            &[variant(1, 200, 1000), variant(2, 250, 1000)],
        )
        .unwrap();
        assert_eq!(
            (v.outcome, v.leader, v.runner_up),
            ("winner", CampaignId(2), CampaignId(1))
        );
        assert!((v.z.unwrap() - 2.68).abs() < 0.01, "{v:?}");
        assert!((v.p_value.unwrap() - 0.0074).abs() < 0.0005, "{v:?}");
        // 21% against 20% of 1,000 each: p = 0.58.
        let v = verdict(
            "readers_opened",
            &[variant(1, 200, 1000), variant(2, 210, 1000)],
        )
        .unwrap();
        assert_eq!(v.outcome, "not_yet");
        assert!(v.summary.contains("may be chance"), "{}", v.summary);
    }

    #[test]
    fn too_few_messages_is_not_yet_and_one_campaign_is_no_test() {
        let v = verdict("readers_clicked", &[variant(1, 9, 20), variant(2, 1, 20)]).unwrap();
        assert_eq!((v.outcome, v.p_value), ("not_yet", None));
        assert!(v.summary.contains("too few"), "{}", v.summary);
        assert_eq!(verdict("readers_clicked", &[variant(1, 9, 20)]), None);
    }
}
