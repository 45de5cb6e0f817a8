//! JSON: one object per record, the same field names and value types as the Avro schemas
//! (optional fields may be `null` or absent). Used for files, humans and JSON topics.

use serde::{de::DeserializeOwned, Serialize};

use super::DecodeError;

/// Decodes one JSON object.
pub fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, DecodeError> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(DecodeError::Empty);
    }
    serde_json::from_slice(bytes).map_err(|e| DecodeError::Json(withhold_values(&e.to_string())))
}

/// serde's message without the offending value: `invalid type: integer `123456789`, expected a
/// string` quotes what the record held, which can be a member id, a name or a date of birth, and
/// the message goes to logs and the dead-letter topic's `message`. The value is replaced by
/// `(value withheld)`; the kind of value, what was expected and the line and column stay, and
/// the dead letter still carries the original bytes. Field and variant names that serde lists
/// as expected are schema, not data, and are kept.
pub fn withhold_values(message: &str) -> String {
    // The part that describes the value found, before ", expected ...".
    let (found, rest) = match message.find(", expected") {
        Some(i) => message.split_at(i),
        None => (message, ""),
    };
    let names_a_field = ["unknown field", "missing field", "duplicate field"]
        .iter()
        .any(|p| found.starts_with(p));
    if names_a_field {
        return message.to_owned();
    }
    let mut out = String::with_capacity(message.len());
    let mut chars = found.char_indices().peekable();
    let mut withheld = false;
    while let Some((_, c)) = chars.next() {
        match c {
            '`' | '"' => {
                // Skip to the closing quote (a `\"` inside a JSON string does not close it).
                let mut escaped = false;
                for (_, d) in chars.by_ref() {
                    if escaped {
                        escaped = false;
                    } else if d == '\\' && c == '"' {
                        escaped = true;
                    } else if d == c {
                        break;
                    }
                }
                out.push_str("(value withheld)");
                withheld = true;
            }
            _ => out.push(c),
        }
    }
    if !withheld {
        return message.to_owned();
    }
    out.push_str(rest);
    out
}

/// Appends one JSON object and a newline.
pub fn encode_line<T: Serialize>(value: &T, out: &mut Vec<u8>) {
    // Serializing our own plain-data types into a Vec cannot fail.
    serde_json::to_writer(&mut *out, value).expect("serializing plain data to JSON");
    out.push(b'\n');
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::ClaimSubmitted;

    /// The value a bad field held never reaches the message; what was expected and where does.
    #[test]
    fn decode_errors_withhold_the_values_they_found() {
        let cases = [
            (r#"{"member_id": 123456789}"#, "123456789"),
            (r#"{"claim_type": "JANE DOE"}"#, "JANE DOE"),
            (r#"{"claim_id": 4.5}"#, "4.5"),
            (r#"{"claim_id": "C1", "member_id": true}"#, "true"),
        ];
        for (json, secret) in cases {
            let e = decode::<ClaimSubmitted>(json.as_bytes())
                .unwrap_err()
                .to_string();
            assert!(!e.contains(secret), "{e}");
            assert!(e.contains("(value withheld)"), "{e}");
            assert!(e.contains("line 1 column"), "{e}");
        }
        assert_eq!(
            withhold_values(
                "invalid type: string \"a \\\"b\\\" c\", expected i64 at line 1 column 9"
            ),
            "invalid type: string (value withheld), expected i64 at line 1 column 9"
        );
        assert_eq!(
            withhold_values("unknown variant `X`, expected one of `PROFESSIONAL`, `INSTITUTIONAL`"),
            "unknown variant (value withheld), expected one of `PROFESSIONAL`, `INSTITUTIONAL`"
        );
        // Field names are schema: kept.
        assert_eq!(
            withhold_values("missing field `member_id`"),
            "missing field `member_id`"
        );
        assert_eq!(
            withhold_values("expected value at line 1 column 1"),
            "expected value at line 1 column 1"
        );
    }
}
