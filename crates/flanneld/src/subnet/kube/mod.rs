//! The Kubernetes subnet manager (`pkg/subnet/kube`): our lease is our
//! Node's podCIDR(s), our backend attributes are its annotations, the peers
//! are the other Nodes.
//!
//! - `manager.rs`: the `SubnetManager` (start, lease, NetworkUnavailable);
//! - `watch.rs`: the peers (list, watch, relist after 410);
//! - `client.rs`, `kubeconfig.rs`: the API client and where the server is;
//! - `annotations.rs`, `condition.rs`, `env.rs`, `types.rs`: pure rules
//!   (Go's bytes and messages, pinned by unit tests).

pub mod annotations;
pub mod client;
pub mod condition;
pub mod env;
pub mod kubeconfig;
pub mod manager;
pub mod types;
pub mod watch;
