//! Every scenario in `simulations/` parses, validates and states the ground
//! truth of each of its faults; the README's table lists every file.

use std::path::Path;

use faultline::simulate::Scenario;

fn corpus() -> Vec<std::path::PathBuf> {
    let mut files: Vec<_> =
        std::fs::read_dir(Path::new(env!("CARGO_MANIFEST_DIR")).join("simulations"))
            .expect("simulations/ exists")
            .map(|e| e.expect("a directory entry").path())
            .filter(|p| p.extension().is_some_and(|x| x == "yaml"))
            .collect();
    files.sort();
    files
}

#[test]
fn every_scenario_is_valid_and_states_its_faults_ground_truth() {
    let files = corpus();
    assert!(!files.is_empty());
    for path in files {
        let s = Scenario::load(&path).unwrap_or_else(|e| panic!("{e}"));
        let stem = path.file_stem().unwrap().to_string_lossy().to_string();
        assert_eq!(s.name, stem, "{}: name matches the file", path.display());
        assert!(
            !s.faults.is_empty(),
            "{}: a scenario injects a fault",
            path.display()
        );
        for t in s.truths() {
            assert!(
                t.start_ms < t.end_ms && t.end_ms <= s.duration.ms(),
                "{t:?}"
            );
            let known = s.services.contains_key(&t.root_cause)
                || t.root_cause
                    .strip_prefix("region/")
                    .is_some_and(|r| s.regions.iter().any(|x| x == r));
            assert!(
                known,
                "{}: root cause {} is declared",
                path.display(),
                t.root_cause
            );
        }
    }
}

#[test]
fn the_flagship_is_a_shop_of_15_to_30_services_in_two_regions_with_three_faults_in_an_hour() {
    let s =
        Scenario::load(&Path::new(env!("CARGO_MANIFEST_DIR")).join("simulations/online-shop.yaml"))
            .unwrap();
    assert!(
        (15..=30).contains(&s.services.len()),
        "{} services",
        s.services.len()
    );
    assert_eq!(s.regions.len(), 2);
    assert_eq!(s.duration.ms(), 3_600_000);
    let kinds: Vec<_> = s.truths().iter().map(|t| t.kind).collect();
    assert_eq!(kinds, ["bad_deploy", "dependency_brownout", "retry_storm"]);
}

#[test]
fn the_readme_lists_every_scenario_file() {
    let readme = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("simulations/README.md"),
    )
    .unwrap();
    for path in corpus() {
        let name = path.file_name().unwrap().to_string_lossy().to_string();
        assert!(
            readme.contains(&format!("`{name}`")),
            "simulations/README.md lists {name}"
        );
    }
}

#[test]
fn a_file_that_cannot_be_read_says_so() {
    let e = Scenario::load(Path::new("simulations/no-such-file.yaml")).unwrap_err();
    assert!(e.to_string().contains("cannot read it"), "{e}");
}
