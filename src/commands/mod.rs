//! The command line: the arguments of every subcommand (`args`) and the offline commands `mutate` and `explain`
//! (`offline`). `serve`, `verify` and `certs` live with their areas.

pub mod args;
pub mod offline;
