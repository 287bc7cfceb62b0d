//! A stable 64-bit name for one row of a stock database, for the import ledger.
//!
//! The ledger must recognise a row it imported at an earlier start, and only that row, across
//! versions of scrapyd-rs: so the hash is FNV-1a, fixed forever, and not the standard library's
//! (whose output may change between Rust releases). It covers the table, the rowid and every
//! value of the row: a row that stock deleted and whose rowid it later reused for another job
//! has another fingerprint.

use rusqlite::types::Value;

const OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
const PRIME: u64 = 0x0000_0100_0000_01b3;

/// An FNV-1a hash being built.
#[derive(Debug, Clone, Copy)]
pub struct Fingerprint(u64);

impl Fingerprint {
    /// Starts a fingerprint for a row of `table`.
    pub fn new(table: &[u8]) -> Fingerprint {
        let mut fingerprint = Fingerprint(OFFSET);
        fingerprint.add_bytes(table);
        fingerprint
    }

    /// Adds bytes, prefixed by their length so that no two sequences of values hash alike by
    /// shifting bytes from one value to the next.
    pub fn add_bytes(&mut self, bytes: &[u8]) -> &mut Self {
        for byte in (bytes.len() as u64).to_le_bytes().iter().chain(bytes) {
            self.0 = (self.0 ^ u64::from(*byte)).wrapping_mul(PRIME);
        }
        self
    }

    pub fn add_i64(&mut self, value: i64) -> &mut Self {
        self.add_bytes(&value.to_le_bytes())
    }

    /// Adds an SQLite value with its type, so `1`, `1.0` and `'1'` differ.
    pub fn add_value(&mut self, value: &Value) -> &mut Self {
        match value {
            Value::Null => self.add_bytes(b"n"),
            Value::Integer(int) => self.add_bytes(b"i").add_i64(*int),
            Value::Real(real) => self.add_bytes(b"r").add_bytes(&real.to_bits().to_le_bytes()),
            Value::Text(text) => self.add_bytes(b"t").add_bytes(text.as_bytes()),
            Value::Blob(blob) => self.add_bytes(b"b").add_bytes(blob),
        }
    }

    pub fn finish(self) -> u64 {
        self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fingerprints_are_fixed_and_tell_types_and_boundaries_apart() {
        // Fixed forever: a changed value would make every ledger forget what it imported.
        let mut fingerprint = Fingerprint::new(b"spider_queue");
        fingerprint.add_i64(1).add_value(&Value::Real(0.0)).add_value(&Value::Blob(b"{}".to_vec()));
        assert_eq!(fingerprint.finish(), 0xc08a_0737_d6b2_60e9);

        let of = |values: &[Value]| {
            let mut fingerprint = Fingerprint::new(b"t");
            values.iter().for_each(|value| {
                fingerprint.add_value(value);
            });
            fingerprint.finish()
        };
        assert_ne!(of(&[Value::Integer(1)]), of(&[Value::Real(1.0)]));
        assert_ne!(of(&[Value::Text("1".into())]), of(&[Value::Blob(b"1".to_vec())]));
        assert_ne!(
            of(&[Value::Text("ab".into()), Value::Text("c".into())]),
            of(&[Value::Text("a".into()), Value::Text("bc".into())])
        );
    }
}
