//! The Kubernetes subnet manager (`pkg/subnet/kube`), in progress: so far
//! the annotation rules (key names, the values and patch our node writes,
//! a peer Node read into a lease) and what kube mode reads from the
//! environment (in-cluster endpoint, node name, tuning variables), and the
//! typed API subset it decodes (Node, NodeList, watch events, Status). The API
//! client and the manager itself are not written yet (issue 10).

pub mod annotations;
pub mod env;
pub mod types;
