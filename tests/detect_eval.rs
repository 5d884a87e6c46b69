//! The committed detector evaluation is what this build produces
//! (regenerate with `faultline eval-detect --out benches/results`).

use std::path::Path;

use faultline::config::Config;
use faultline::detect::eval::evaluate;

#[test]
fn committed_report_matches_this_build() {
    let c = Config::defaults();
    let report = evaluate(
        &(1..=16).collect::<Vec<_>>(),
        &c.predictor.detector,
        &c.predictor.hysteresis,
    );
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("benches/results/detect-eval.md");
    let committed = std::fs::read_to_string(&path).unwrap();
    assert_eq!(
        committed,
        report.markdown(),
        "{} is stale: run `faultline eval-detect --out benches/results`",
        path.display()
    );
    assert!(report.max_false_alarms_per_10k_clean <= 1.0);
    assert!(report.pooled.f1 >= 0.9, "pooled F1 {}", report.pooled.f1);
}
