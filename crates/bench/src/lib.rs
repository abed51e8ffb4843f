//! Pieces of the benchmark client that other programs share: the hostile-client
//! generators of `nodedev-bench soak`.

pub mod hostile;
