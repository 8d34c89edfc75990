//! A small etcd v3 client for flanneld, built without protoc.
//!
//! `src/pb/` holds prost/tonic code generated once from `proto/`, a cut of
//! etcd's `api/etcdserverpb/rpc.proto` and `api/mvccpb/kv.proto` down to
//! the calls flanneld makes (KV Range/Put/DeleteRange/Txn, Watch, Lease
//! Grant/Revoke/TimeToLive, Auth Authenticate), with etcd's gRPC-gateway
//! and version options removed so that no well-known types are needed.
//! Field numbers and names are etcd's, so this speaks etcd's wire format.
//! Only client stubs are generated, and tonic is built without its server
//! side.
//!
//! # Regenerating `src/pb/`
//!
//! Needed only to add calls or fields; building the crate never runs protoc.
//!
//! 1. Optionally re-cut the protos from a newer etcd `rpc.proto` (the
//!    etcd-client crate ships one under `proto/etcd/api/`): add the
//!    messages and RPCs to `proto/trim.py`, then
//!    `python3 proto/trim.py path/to/rpc.proto > proto/rpc.proto`
//!    (tidy the blank lines by hand; `kv.proto` is etcd's without comments
//!    and `option go_package`).
//! 2. In a throwaway cargo project outside the repo, depending on
//!    `tonic-prost-build` of the same minor version as this crate's tonic,
//!    run:
//!    ```text
//!    tonic_prost_build::configure()
//!        .build_server(false)
//!        .build_transport(false)
//!        .out_dir("<repo>/crates/etcd-rpc/src/pb")
//!        .compile_protos(&["proto/kv.proto", "proto/rpc.proto"], &["proto"])
//!    ```
//!    with protoc installed (Debian `protobuf-compiler`; no
//!    `libprotobuf-dev` needed).
//! 3. `cargo fmt --all`, `cargo test -p weft-etcd-rpc`.

mod client;
mod error;

pub use client::{is_tls_endpoint, prefix_end, Client, Config, Credentials, Tls, WatchStream};
pub use error::{describe, Error};

/// Generated code (see the crate docs); not edited by hand.
#[allow(
    clippy::all,
    clippy::pedantic,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    missing_docs
)]
pub mod pb {
    pub mod etcdserverpb {
        include!("pb/etcdserverpb.rs");
    }
    pub mod mvccpb {
        include!("pb/mvccpb.rs");
    }
}
