//! flanneld's modules as a library, so the parsers of outside input (the
//! network config, etcd lease values and subnet keys) can be fuzzed
//! (`fuzz/`). The `flanneld` binary (`main.rs`) is the only real user.

pub mod alloc;
pub mod backoff;
pub mod config;
pub mod daemon;
pub mod dataplane;
pub mod flags;
pub mod healthz;
pub mod iface;
pub mod lease;
pub mod logging;
pub mod registry;
pub mod subnet;
pub mod subnet_file;
pub mod task;
pub mod traffic;
