//! weft-firewall
