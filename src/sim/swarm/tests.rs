//! The swarm's own tests: a seed draws one scenario, and the seeds that
//! `cargo test` runs all pass.

use super::*;

#[test]
fn a_seed_draws_the_same_scenario_every_time() {
    for seed in 0..50 {
        let (a, b) = (scenario(seed, 48), scenario(seed, 48));
        assert_eq!(a.files, b.files);
        assert_eq!(a.actions, b.actions);
        assert_eq!(a.rates, b.rates);
    }
}

#[test]
fn every_seed_draws_a_valid_config() {
    // scenario() panics on a config the validation refuses.
    for seed in 0..20_000 {
        let s = scenario(seed, 48);
        assert!(s.bound_s.is_finite() && s.bound_s > 0.0, "seed {seed}");
    }
}

/// Runs seeds `from .. from + 2500` and fails naming every bad seed with
/// the command that replays it.
fn swarm_of_2500(from: u64) {
    let summary = run(from, 2500, 48, 1, &|_| {});
    assert_eq!(summary.runs, 2500);
    assert!(summary.passed(), "{}", summary.text());
    // Most seeds verify; the rest end in a failure their scenario allows
    // (a master killed, a slave gone before it answered).
    assert!(summary.verified >= 2250, "{}", summary.text());
}

// Issue 20: 10,000 seeds of the swarm in `cargo test` (about a second each
// 2,500 in a test build), in four tests so that the test runner spreads
// them over the cores.
#[test]
fn swarm_seeds_0_to_2499() {
    swarm_of_2500(0);
}

#[test]
fn swarm_seeds_2500_to_4999() {
    swarm_of_2500(2500);
}

#[test]
fn swarm_seeds_5000_to_7499() {
    swarm_of_2500(5000);
}

#[test]
fn swarm_seeds_7500_to_9999() {
    swarm_of_2500(7500);
}

#[test]
fn a_seed_replays_to_the_same_digest_and_another_differs() {
    let (a, b) = (run_seed(3, 48, None), run_seed(3, 48, None));
    assert_eq!(a.digest, b.digest);
    assert_eq!(a.outcome, Outcome::Verified);
    assert_ne!(run_seed(4, 48, None).digest, a.digest);
}

#[test]
fn a_bad_seed_names_the_command_that_replays_it() {
    let mut summary = Summary::default();
    summary.add(SeedResult {
        seed: 17,
        outcome: Outcome::Hang("not ended".to_owned()),
        virtual_s: 1.0,
        digest: String::new(),
    });
    assert!(!summary.passed());
    assert!(
        summary.text().contains(
            "seed 17 failed: Hang(\"not ended\")\n  replay: loadbal swarm --from 17 --seeds 1 -v"
        ),
        "{}",
        summary.text()
    );
}
