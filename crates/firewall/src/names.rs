//! Names and comments that must be byte-identical to the Go plugins
//! (`pkg/utils/utils.go`), so that a Go DEL finds what a weft ADD made and
//! the other way round.

use sha2::{Digest, Sha512};

/// Every chain the Go plugins create starts with this.
pub const CHAIN_PREFIX: &str = "CNI-";

/// iptables chain names are at most 28 characters (29 with the NUL).
pub const MAX_CHAIN_LEN: usize = 28;

/// Length of a full sha512 in hex.
pub const MAX_HASH_LEN: usize = 128;

/// `prefix` followed by hex(sha512(`to_hash`)), cut to `length` characters.
///
/// Go's `MustFormatHashWithPrefix` panics when the prefix does not leave
/// room for at least one hash character or `length` exceeds 128; here the
/// result is simply clamped, since every caller passes constants.
pub fn hash_with_prefix(length: usize, prefix: &str, to_hash: &str) -> String {
    let digest = Sha512::digest(to_hash.as_bytes());
    let mut out = String::with_capacity(prefix.len() + MAX_HASH_LEN);
    out.push_str(prefix);
    for byte in digest.iter() {
        out.push_str(&format!("{byte:02x}"));
    }
    let length = length.min(out.len());
    // The prefix is ASCII in every caller, but never cut inside a character.
    let mut cut = length;
    while !out.is_char_boundary(cut) {
        cut -= 1;
    }
    out.truncate(cut);
    out
}

/// Go `MustFormatChainNameWithPrefix(name, id, prefix)`:
/// `"CNI-" + prefix + hex(sha512(name + id))`, 28 characters in total.
///
/// `chain_name("", "test", "1234") == "CNI-2bbe0c48b91a7d1b8a6753a8"`.
pub fn chain_name(prefix: &str, name: &str, id: &str) -> String {
    let full_prefix = format!("{CHAIN_PREFIX}{prefix}");
    hash_with_prefix(MAX_CHAIN_LEN, &full_prefix, &format!("{name}{id}"))
}

/// Go `FormatComment(name, id)`: `name: "<name>" id: "<id>"`, both quoted
/// with Go's `%q`.
pub fn format_comment(name: &str, id: &str) -> String {
    format!("name: {} id: {}", go_quote(name), go_quote(id))
}

/// Go's `strconv.Quote` (what `%q` prints for a string): cni-core's, the one `%q` of
/// the workspace.
pub use weft_cni_core::gojson::quote as go_quote;

#[cfg(test)]
mod tests {
    use super::*;

    // Golden vectors from pkg/utils/utils_test.go.
    #[test]
    fn chain_name_matches_go() {
        assert_eq!(
            chain_name("", "test", "1234"),
            "CNI-2bbe0c48b91a7d1b8a6753a8"
        );
        assert_eq!(
            chain_name("", "testalongnamethatdoesnotmakesense", "1234"),
            "CNI-374f33fe84ab0ed84dcdebe3"
        );
        assert_ne!(
            chain_name("", "testalongnamethatdoesnotmakesense", "1235"),
            "CNI-374f33fe84ab0ed84dcdebe3"
        );
        assert_eq!(chain_name("", "test", "1234").len(), MAX_CHAIN_LEN);
    }

    #[test]
    fn chain_name_with_prefix_matches_go() {
        assert_eq!(
            chain_name("PREFIX-", "test", "1234"),
            "CNI-PREFIX-2bbe0c48b91a7d1b8"
        );
        assert_eq!(
            chain_name("PREFIX-", "testalongnamethatdoesnotmakesense", "1234"),
            "CNI-PREFIX-374f33fe84ab0ed84"
        );
        // portmap's per-container DNAT chain.
        assert_eq!(chain_name("DN-", "test", "1234").len(), MAX_CHAIN_LEN);
        assert!(chain_name("DN-", "test", "1234").starts_with("CNI-DN-"));
    }

    #[test]
    fn hash_with_prefix_lengths() {
        assert_eq!(hash_with_prefix(10, "AAA", "some string").len(), 10);
        assert_eq!(hash_with_prefix(5, "AAA", "some string").len(), 5);
        assert!(hash_with_prefix(10, "foo", "some string").starts_with("foo"));
        assert_eq!(hash_with_prefix(200, "", "x").len(), MAX_HASH_LEN);
        // sha512("") starts with cf83e135.
        assert_eq!(hash_with_prefix(8, "", ""), "cf83e135");
    }

    #[test]
    fn comment_matches_go() {
        assert_eq!(
            format_comment("testnet", "ctr1234"),
            r#"name: "testnet" id: "ctr1234""#
        );
        assert_eq!(format_comment("a\"b", "c\\d"), r#"name: "a\"b" id: "c\\d""#);
    }

    #[test]
    fn go_quote_escapes() {
        assert_eq!(go_quote("a\tb\n"), r#""a\tb\n""#);
        assert_eq!(go_quote("\u{1}"), r#""\x01""#);
        assert_eq!(go_quote("\u{7f}"), r#""\x7f""#);
        assert_eq!(go_quote("é ü"), "\"é ü\"");
        assert_eq!(go_quote("\u{a0}"), r#""\u00a0""#);
        assert_eq!(go_quote(""), r#""""#);
    }
}
