//! weft's `bridge` CNI plugin: a drop-in replacement for the Go reference bridge (v1.9).
//!
//! ADD creates the bridge if needed, a veth pair whose pod end is created directly inside the
//! pod netns, runs IPAM, configures addresses and routes, the gateway, ipMasq and macspoofchk.
//! Anything ADD did is undone if a later step fails. DEL is idempotent and best effort.

mod add;
mod check;
pub mod config;
mod del;
mod netutil;

use weft_cni_core::{plugin_main, CmdArgs, Plugin, Result};

pub struct Bridge;

impl Plugin for Bridge {
    fn add(&self, args: &CmdArgs) -> Result<serde_json::Value> {
        add::cmd_add(args)
    }
    fn del(&self, args: &CmdArgs) -> Result<()> {
        del::cmd_del(args)
    }
    fn check(&self, args: &CmdArgs) -> Result<()> {
        check::cmd_check(args)
    }
    fn gc(&self, args: &CmdArgs) -> Result<()> {
        del::cmd_gc(args)
    }
    fn status(&self, args: &CmdArgs) -> Result<()> {
        del::cmd_status(args)
    }
}

pub fn main() -> ! {
    plugin_main(Bridge, "bridge")
}
