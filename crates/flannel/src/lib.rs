//! weft's `flannel` CNI meta-plugin: a drop-in replacement for flannel-io/cni-plugin.
//!
//! ADD reads flanneld's `subnet.env`, builds the delegate's config (by default bridge +
//! host-local) byte for byte as Go does, saves it to `<dataDir>/<containerID>` and runs the
//! delegate from CNI_PATH. DEL replays the saved config, so it never needs flanneld. CHECK, GC
//! and STATUS are real (Go's are no-ops); see `cmd` for every difference from Go.

mod cmd;
pub mod config;
pub mod delegate;
pub mod scratch;
pub mod subnet_env;

use weft_cni_core::{plugin_main, CmdArgs, Plugin, Result};

pub struct Flannel;

impl Plugin for Flannel {
    fn add(&self, args: &CmdArgs) -> Result<serde_json::Value> {
        cmd::cmd_add(args)
    }
    fn del(&self, args: &CmdArgs) -> Result<()> {
        cmd::cmd_del(args)
    }
    fn check(&self, args: &CmdArgs) -> Result<()> {
        cmd::cmd_check(args)
    }
    fn gc(&self, args: &CmdArgs) -> Result<()> {
        cmd::cmd_gc(args)
    }
    fn status(&self, args: &CmdArgs) -> Result<()> {
        cmd::cmd_status(args)
    }
}

pub fn main() -> ! {
    plugin_main(Flannel, "flannel")
}
