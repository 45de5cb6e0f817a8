//! JSON: one object per record, the same field names and value types as the Avro schemas
//! (optional fields may be `null` or absent). Used for files, humans and JSON topics.

use serde::{de::DeserializeOwned, Serialize};

use super::DecodeError;

/// Decodes one JSON object.
pub fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, DecodeError> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(DecodeError::Empty);
    }
    serde_json::from_slice(bytes).map_err(|e| DecodeError::Json(e.to_string()))
}

/// Appends one JSON object and a newline.
pub fn encode_line<T: Serialize>(value: &T, out: &mut Vec<u8>) {
    // Serializing our own plain-data types into a Vec cannot fail.
    serde_json::to_writer(&mut *out, value).expect("serializing plain data to JSON");
    out.push(b'\n');
}
