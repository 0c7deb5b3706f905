//! The one rule for user and item keys: how long a key may be. Keys are
//! stored in btree indexes (user states, counts, pending events), whose
//! entries must fit a third of a page; a longer key would fail every later
//! fold of its table, so such keys are refused where they enter.

/// The longest key, in bytes of its text, that the bookkeeping stores.
pub const MAX_KEY_BYTES: usize = 1024;

/// Whether a key is short enough to be stored.
pub fn key_fits(key: &str) -> bool {
    key.len() <= MAX_KEY_BYTES
}

/// `key_fits` as a SQL predicate over a text expression (NULL is not
/// refused here: whether a key may be missing is the caller's rule).
pub fn sql_key_fits(key: &str) -> String {
    format!("coalesce(pg_catalog.octet_length({key}) <= {MAX_KEY_BYTES}, true)")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_up_to_the_limit_fit() {
        assert!(key_fits(""));
        assert!(key_fits(&"k".repeat(MAX_KEY_BYTES)));
        assert!(!key_fits(&"k".repeat(MAX_KEY_BYTES + 1)));
    }

    #[test]
    fn the_limit_counts_bytes_not_characters() {
        // 'é' is two bytes in UTF-8.
        let key = "é".repeat(MAX_KEY_BYTES / 2 + 1);
        assert!(key.chars().count() <= MAX_KEY_BYTES);
        assert!(!key_fits(&key));
    }

    #[test]
    fn the_sql_rule_names_the_limit() {
        assert_eq!(
            sql_key_fits("u"),
            format!("coalesce(pg_catalog.octet_length(u) <= {MAX_KEY_BYTES}, true)")
        );
    }
}
