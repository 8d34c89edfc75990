//! weft-cni-core
