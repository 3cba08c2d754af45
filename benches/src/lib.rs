//! criterion benches of towline, run with `cargo bench -p towline-benches`.
//!
//! Every bench compares towline against a baseline in the same run (a bare service, a plain
//! lookup, or tower's own layer), so its figures are read as ratios. See `benches/` for the
//! bench files and `BENCHMARKS.md` for the latest figures.
