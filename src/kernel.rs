//! The numeric kernel: `iterations` additions of `addend` to every element of
//! a slice, bit-identical to the plain loop the contract describes
//! (`for _ in 0..iterations { for x in data { *x += addend } }`).
//!
//! The plain loop sweeps the whole slice once per iteration, so it runs at
//! the speed of the cache that holds the slice, not of the adders. This
//! kernel loads a block of elements into registers, applies all the
//! iterations there and stores the block once: every element still receives
//! the same additions in the same order (so the result is the same to the
//! bit), but memory is touched twice per element instead of twice per
//! addition.
//!
//! The block is sized to the widest vector unit the CPU has, chosen at run
//! time so one binary runs everywhere: eight independent vector additions
//! per iteration hide the adder's latency (about four cycles, two adders) on
//! current cores. AVX-512: 8 × 8 doubles; AVX: 8 × 4; otherwise 8 × 2 (SSE2,
//! the x86-64 baseline, or whatever the compiler makes of it elsewhere).

/// The instruction set the kernel picked on this machine.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Isa {
    /// 512-bit vectors (AVX-512F): 64-element blocks.
    Avx512,
    /// 256-bit vectors (AVX): 32-element blocks.
    Avx,
    /// The compilation target's baseline (SSE2 on x86-64): 16-element blocks.
    Baseline,
}

impl Isa {
    /// What this CPU supports, widest first.
    pub fn detect() -> Isa {
        #[cfg(target_arch = "x86_64")]
        {
            if std::arch::is_x86_feature_detected!("avx512f") {
                return Isa::Avx512;
            }
            if std::arch::is_x86_feature_detected!("avx") {
                return Isa::Avx;
            }
        }
        Isa::Baseline
    }

    /// Every instruction set this CPU can run, widest first (for tests and
    /// the benchmark, which compare them).
    pub fn available() -> Vec<Isa> {
        let widest = Isa::detect();
        [Isa::Avx512, Isa::Avx, Isa::Baseline]
            .into_iter()
            .filter(|isa| *isa <= widest)
            .collect()
    }

    /// A short name for tables and logs.
    pub fn name(self) -> &'static str {
        match self {
            Isa::Avx512 => "AVX-512",
            Isa::Avx => "AVX",
            Isa::Baseline => "baseline",
        }
    }

    /// Elements per register-resident block.
    pub fn block(self) -> usize {
        match self {
            Isa::Avx512 => 64,
            Isa::Avx => 32,
            Isa::Baseline => 16,
        }
    }
}

impl PartialOrd for Isa {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Isa {
    /// Wider is greater.
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.block().cmp(&other.block())
    }
}

/// Applies `iterations` additions of `addend` to every element of `data`
/// with the widest instructions this CPU has; bit-identical to
/// [`add_repeated_plain`].
pub fn add_repeated(data: &mut [f64], iterations: u32, addend: f64) {
    add_repeated_with(Isa::detect(), data, iterations, addend);
}

/// [`add_repeated`] with a given instruction set. An `isa` this CPU lacks
/// falls back to the widest it has, so the call is always safe.
pub fn add_repeated_with(isa: Isa, data: &mut [f64], iterations: u32, addend: f64) {
    let isa = isa.min(Isa::detect());
    match isa {
        #[cfg(target_arch = "x86_64")]
        // SAFETY: `isa` is at most what `Isa::detect` found on this CPU, so
        // the instructions these functions were compiled for exist.
        Isa::Avx512 => unsafe { x86::add_avx512(data, iterations, addend) },
        #[cfg(target_arch = "x86_64")]
        // SAFETY: as above.
        Isa::Avx => unsafe { x86::add_avx(data, iterations, addend) },
        _ => add_blocks::<16>(data, iterations, addend),
    }
}

/// The plain reference loop the contract describes: one sweep of the whole
/// slice per iteration. Kept for tests and the benchmark.
pub fn add_repeated_plain(data: &mut [f64], iterations: u32, addend: f64) {
    for _ in 0..iterations {
        for x in data.iter_mut() {
            *x += addend;
        }
    }
}

/// The kernel for one block width; inlined into each instruction set's
/// entry point so the compiler vectorises it for that set. What is left
/// after the full blocks goes through narrower blocks, then one by one.
#[inline(always)]
fn add_blocks<const B: usize>(data: &mut [f64], iterations: u32, addend: f64) {
    let mut blocks = data.chunks_exact_mut(B);
    for block in &mut blocks {
        let mut acc = [0.0f64; B];
        acc.copy_from_slice(block);
        for _ in 0..iterations {
            for a in &mut acc {
                *a += addend;
            }
        }
        block.copy_from_slice(&acc);
    }
    let rest = blocks.into_remainder();
    if B > 8 && rest.len() >= 8 {
        let (eights, tail) = rest.split_at_mut(rest.len() / 8 * 8);
        add_blocks::<8>(eights, iterations, addend);
        add_one_by_one(tail, iterations, addend);
    } else {
        add_one_by_one(rest, iterations, addend);
    }
}

#[inline(always)]
fn add_one_by_one(data: &mut [f64], iterations: u32, addend: f64) {
    for x in data {
        let mut v = *x;
        for _ in 0..iterations {
            v += addend;
        }
        *x = v;
    }
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use super::add_blocks;

    /// # Safety
    /// The CPU must support AVX-512F.
    #[target_feature(enable = "avx512f")]
    pub unsafe fn add_avx512(data: &mut [f64], iterations: u32, addend: f64) {
        add_blocks::<64>(data, iterations, addend);
    }

    /// # Safety
    /// The CPU must support AVX.
    #[target_feature(enable = "avx")]
    pub unsafe fn add_avx(data: &mut [f64], iterations: u32, addend: f64) {
        add_blocks::<32>(data, iterations, addend);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bits(v: &[f64]) -> Vec<u64> {
        v.iter().map(|x| x.to_bits()).collect()
    }

    #[test]
    fn every_instruction_set_is_bit_identical_to_the_plain_loop() {
        // Values that round differently at each step, and lengths that leave
        // every kind of remainder after the blocks of each width.
        let lengths = [
            0, 1, 7, 8, 9, 15, 16, 17, 31, 32, 33, 63, 64, 65, 100, 1000, 4099,
        ];
        for isa in Isa::available() {
            for len in lengths {
                let data: Vec<f64> = (0..len).map(|i| 0.1 * i as f64 + 1e-7).collect();
                let mut fast = data.clone();
                let mut plain = data;
                add_repeated_with(isa, &mut fast, 997, 1.111111);
                add_repeated_plain(&mut plain, 997, 1.111111);
                assert_eq!(bits(&fast), bits(&plain), "{} length {len}", isa.name());
            }
        }
    }

    #[test]
    fn special_values_follow_the_plain_loop() {
        let data = [
            f64::NAN,
            f64::INFINITY,
            f64::NEG_INFINITY,
            -0.0,
            f64::MIN_POSITIVE / 4.0,
            f64::MAX,
            -1e300,
            1e-300,
        ];
        for isa in Isa::available() {
            for addend in [1.111111, -0.0, f64::MIN_POSITIVE, 1e308] {
                let mut fast = data.repeat(9);
                let mut plain = fast.clone();
                add_repeated_with(isa, &mut fast, 13, addend);
                add_repeated_plain(&mut plain, 13, addend);
                assert_eq!(bits(&fast), bits(&plain), "{} addend {addend}", isa.name());
            }
        }
    }

    #[test]
    fn the_widest_set_is_picked_and_wider_ones_fall_back() {
        let widest = Isa::detect();
        assert_eq!(Isa::available()[0], widest);
        assert_eq!(*Isa::available().last().unwrap(), Isa::Baseline);
        // Asking for more than the CPU has still computes correctly.
        let mut a = vec![2.5; 100];
        add_repeated_with(Isa::Avx512, &mut a, 4, 0.5);
        assert!(a.iter().all(|&x| x == 4.5));
    }
}
