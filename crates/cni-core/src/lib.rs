//! weft's CNI spec core: result types for every spec version and the
//! conversions between them, the plugin skeleton (env, stdin, version gating,
//! dispatch, error output), CNI_ARGS parsing and delegate execution.
//!
//! Everything printed is byte-compatible with the Go reference libraries
//! (containernetworking/cni `pkg/skel`, `pkg/types`, `pkg/invoke`).
//!
//! A plugin implements [`Plugin`] and hands itself to [`plugin_main`]:
//!
//! ```no_run
//! use serde_json::Value;
//! use weft_cni_core::{exec_plugin, parse_netconf, plugin_main, CmdArgs, CniError, CniResult,
//!                     Command, Plugin, Result};
//!
//! struct Example;
//!
//! impl Plugin for Example {
//!     fn add(&self, args: &CmdArgs) -> Result<Value> {
//!         let conf = parse_netconf(&args.stdin)?;
//!         let ipam = conf.ipam_type().ok_or_else(|| CniError::InvalidConfig("no ipam".into()))?;
//!         let raw = exec_plugin(ipam, Command::Add, &args.stdin, args)?
//!             .ok_or_else(|| CniError::Internal("IPAM returned nothing".into()))?;
//!         let result = CniResult::parse(&raw)?;
//!         // ... configure the interface ...
//!         result.to_value(conf.version()) // printed Go-style by the skeleton
//!     }
//!     fn del(&self, _args: &CmdArgs) -> Result<()> { Ok(()) }
//!     fn check(&self, _args: &CmdArgs) -> Result<()> { Ok(()) }
//! }
//!
//! fn main() {
//!     plugin_main(Example, "example") // about text "CNI example plugin v0.1.0 (weft, ...)"
//! }
//! ```
//!
//! [`run`] is the same dispatch without touching the process (env, stdin and
//! output are parameters), for tests.

pub mod args;
pub mod config;
pub mod error;
pub mod gojson;
pub mod invoke;
pub mod skel;
pub mod trace;
pub mod types;
pub mod validate;
pub mod version;

pub use args::{parse_bool, parse_cni_args, IGNORE_UNKNOWN};
pub use config::{
    gc_attachments, parse_netconf, NetConf, LEGACY_ATTACHMENTS, MAX_CONFIG_BYTES, VALID_ATTACHMENTS,
};
pub use error::{codes, CniError, ErrorList, Result};
pub use invoke::{exec_plugin, find_plugin, set_in_process, RoleLookup};
pub use skel::{
    about_line, format_panic, install_panic_hook, is_own_netns, plugin_main, run, split_path,
    version_requested, CmdArgs, Command, Outcome, Plugin,
};
pub use trace::Trace;
pub use types::{
    cidr_string, parse_cidr, parse_ip, CniResult, Dns, Interface, IpConfig, Map, Route,
};
pub use validate::{validate_container_id, validate_interface_name, validate_network_name};
pub use version::{version_cmp, CURRENT_VERSION, DEFAULT_VERSION, SUPPORTED_VERSIONS};
