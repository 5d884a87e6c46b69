//! NATS subjects and the token rule for names that become subject tokens.
//!
//! Service and instance names end up as single tokens of NATS subjects
//! (`faultline.in.<service>.<kind>`), so they must not contain the token
//! separator `.`, the wildcards `*` and `>`, or whitespace, and must not be empty.

/// Regular expression (for the JSON Schemas) matching a valid single token.
pub const TOKEN_PATTERN: &str = r"^[^.*>\s]{1,256}$";

/// Longest accepted token, in bytes.
pub const MAX_TOKEN_LEN: usize = 256;

/// Default subject prefix.
pub const DEFAULT_PREFIX: &str = "faultline";

/// Subject used for system-wide decisions and engine ticks.
pub const SYSTEM_SUBJECT: &str = "_system";

/// Whether `name` can be used as one NATS subject token.
pub fn is_valid_token(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= MAX_TOKEN_LEN
        && !name
            .chars()
            .any(|c| c == '.' || c == '*' || c == '>' || c.is_whitespace() || c.is_control())
}

/// Subject an observation about `service` of `kind` (e.g. `request`) is published on.
pub fn input_subject(prefix: &str, service: &str, kind: &str) -> String {
    format!("{prefix}.in.{service}.{kind}")
}

/// Subject an agent's decision about `service` is published on.
pub fn output_subject(prefix: &str, agent: &str, service: &str) -> String {
    format!("{prefix}.out.{agent}.{service}")
}

/// Subject rejected input goes to.
pub fn dlq_subject(prefix: &str, reason: &str) -> String {
    format!("{prefix}.dlq.{reason}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_rule() {
        for ok in ["checkout", "pay-ments_2", "i-3", "_system", "a:b"] {
            assert!(is_valid_token(ok), "{ok}");
        }
        for bad in ["", "a.b", "a*", ">", "a b", "tab\t", &"x".repeat(257)] {
            assert!(!is_valid_token(bad), "{bad:?}");
        }
    }

    #[test]
    fn subjects() {
        assert_eq!(
            input_subject("faultline", "checkout", "request"),
            "faultline.in.checkout.request"
        );
        assert_eq!(
            output_subject("fl", "breaker", "checkout"),
            "fl.out.breaker.checkout"
        );
        assert_eq!(dlq_subject("faultline", "invalid"), "faultline.dlq.invalid");
    }
}
