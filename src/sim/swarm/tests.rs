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
