//! The name rules of the CNI runtime contract (Go's `pkg/utils`): container
//! IDs, network names and interface names. Used by the skeleton on the
//! environment and by the config parser on `name`, so they live apart from
//! both.

use crate::error::{codes, CniError, Result};

const MAX_IFNAME_LEN: usize = 15;

/// CNI's name rule for container IDs and network names:
/// `^[a-zA-Z0-9][a-zA-Z0-9_.\-]*$`.
fn valid_cni_name(s: &str) -> bool {
    let mut bytes = s.bytes();
    match bytes.next() {
        Some(b) if b.is_ascii_alphanumeric() => {}
        _ => return false,
    }
    bytes.all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'.' || b == b'-')
}

/// Go's `utils.ValidateContainerID`.
pub fn validate_container_id(id: &str) -> Result<()> {
    if id.is_empty() {
        return Err(CniError::UnknownContainer(
            "missing containerID".to_string(),
        ));
    }
    if !valid_cni_name(id) {
        return Err(CniError::with_details(
            codes::INVALID_ENV,
            "invalid characters in containerID",
            id,
        ));
    }
    Ok(())
}

/// Go's `utils.ValidateNetworkName`.
pub fn validate_network_name(name: &str) -> Result<()> {
    if name.is_empty() {
        return Err(CniError::InvalidConfig("missing network name:".to_string()));
    }
    if !valid_cni_name(name) {
        return Err(CniError::with_details(
            codes::INVALID_CONFIG,
            "invalid characters found in network name",
            name,
        ));
    }
    Ok(())
}

/// Go's `unicode.IsSpace`.
fn is_go_space(c: char) -> bool {
    matches!(
        c,
        '\t' | '\n' | '\u{b}' | '\u{c}' | '\r' | ' ' | '\u{85}' | '\u{a0}'
    ) || (c as u32 > 0xff && c.is_whitespace())
}

/// Go's `utils.ValidateInterfaceName` (the kernel's `dev_valid_name`).
pub fn validate_interface_name(ifname: &str) -> Result<()> {
    if ifname.is_empty() {
        return Err(CniError::InvalidEnv("interface name is empty".to_string()));
    }
    if ifname.len() > MAX_IFNAME_LEN {
        return Err(CniError::with_details(
            codes::INVALID_ENV,
            "interface name is too long",
            format!(
                "interface name should be less than {} characters",
                MAX_IFNAME_LEN + 1
            ),
        ));
    }
    if ifname == "." || ifname == ".." {
        return Err(CniError::InvalidEnv(
            "interface name is . or ..".to_string(),
        ));
    }
    if ifname
        .chars()
        .any(|c| c == '/' || c == ':' || is_go_space(c))
    {
        return Err(CniError::InvalidEnv(
            "interface name contains / or : or whitespace characters".to_string(),
        ));
    }
    Ok(())
}
