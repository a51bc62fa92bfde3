//! Tests of the bench crate's arithmetic, judging and rendering, on
//! synthetic results. Benchmarks are not tests: no timing is asserted, and
//! nothing here needs root.

mod report; // markdown tables, targets judged met / missed / not measured
mod stats; // medians, ratios of medians, per-round ratio ranges, units, round order
mod support; // synthetic case results
