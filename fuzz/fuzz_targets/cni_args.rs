//! CNI_ARGS (`parse_cni_args`, Go's `types.LoadArgs` rules) and the booleans in it.

#![no_main]

use libfuzzer_sys::fuzz_target;
use weft_cni_core::{parse_bool, parse_cni_args, IGNORE_UNKNOWN};

/// The keys the plugins look for (host-local, bridge, and what kubelet passes).
const KNOWN: &[&str] = &[
    "IP",
    "MAC",
    "K8S_POD_NAME",
    "K8S_POD_NAMESPACE",
    "K8S_POD_INFRA_CONTAINER_ID",
    "K8S_POD_UID",
];

fuzz_target!(|data: &[u8]| {
    let args = String::from_utf8_lossy(data);
    for known in [KNOWN, &["IP"][..], &[][..]] {
        let Ok(pairs) = parse_cni_args(&args, known) else {
            continue;
        };
        for (k, v) in &pairs {
            assert!(
                known.contains(&k.as_str()) || k == IGNORE_UNKNOWN,
                "unknown key {k:?} returned"
            );
            assert!(
                !k.contains([';', '=']) && !v.contains([';', '=']),
                "{k:?}={v:?}"
            );
            let _ = parse_bool(v);
        }
    }
});
