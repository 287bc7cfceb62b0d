//! Version names: how stock Scrapyd turns them into file names, and how we order them.
//!
//! Stock Scrapyd stores `1.10` as `1_10.egg` and then sorts the stored names as plain strings,
//! so after deploying `1.9` and `1.10` it runs the older egg by default. We keep its file names
//! (an existing eggs directory must load unchanged) but order them like distutils' `LooseVersion`,
//! which is what users expect: digit runs compare as numbers, other runs as strings, and a number
//! sorts before a string in the same place. `r99` < `r156`, `1_9` < `1_10`.

use std::cmp::Ordering;

/// The file stem stock Scrapyd uses for a version: every character outside `[A-Za-z0-9_-]`
/// becomes `_` (one per character, as Python's `re.sub` on a `str`).
pub fn sanitize(version: &str) -> String {
    version.chars().map(|ch| if ch.is_ascii_alphanumeric() || ch == '_' || ch == '-' { ch } else { '_' }).collect()
}

/// One run of a version name: digits compare as a number, anything else as a string.
#[derive(Debug, PartialEq, Eq)]
enum Part<'a> {
    Number(&'a str),
    Text(&'a str),
}

impl Ord for Part<'_> {
    fn cmp(&self, other: &Self) -> Ordering {
        match (self, other) {
            (Part::Number(a), Part::Number(b)) => compare_digits(a, b),
            (Part::Number(_), Part::Text(_)) => Ordering::Less,
            (Part::Text(_), Part::Number(_)) => Ordering::Greater,
            (Part::Text(a), Part::Text(b)) => a.cmp(b),
        }
    }
}

impl PartialOrd for Part<'_> {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

/// Compares two digit runs by numeric value without parsing, so any length works.
fn compare_digits(a: &str, b: &str) -> Ordering {
    let a = a.trim_start_matches('0');
    let b = b.trim_start_matches('0');
    a.len().cmp(&b.len()).then_with(|| a.cmp(b))
}

fn parts(version: &str) -> Vec<Part<'_>> {
    let mut parts = Vec::new();
    let mut start = 0;
    let bytes = version.as_bytes();
    while start < bytes.len() {
        let digit = bytes[start].is_ascii_digit();
        let len = bytes[start..].iter().take_while(|b| b.is_ascii_digit() == digit).count();
        let run = &version[start..start + len];
        parts.push(if digit { Part::Number(run) } else { Part::Text(run) });
        start += len;
    }
    parts
}

/// The `LooseVersion` order; names that compare equal (`01` and `1`) fall back to string order so
/// the result never depends on directory order.
pub fn compare(a: &str, b: &str) -> Ordering {
    parts(a).cmp(&parts(b)).then_with(|| a.cmp(b))
}

/// Sorts version names oldest first; the last one is the default ("latest") version.
pub fn sort(versions: &mut [String]) {
    versions.sort_by(|a, b| compare(a, b));
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sorted(names: &[&str]) -> Vec<String> {
        let mut names: Vec<String> = names.iter().map(|s| s.to_string()).collect();
        sort(&mut names);
        names
    }

    #[test]
    fn sanitizes_like_stock() {
        assert_eq!(sanitize("1.0"), "1_0");
        assert_eq!(sanitize("../../x"), "______x");
        assert_eq!(sanitize("r1-a_b"), "r1-a_b");
        assert_eq!(sanitize("\u{e9}t\u{e9} 1+0"), "_t__1_0");
        assert_eq!(sanitize(""), "");
    }

    #[test]
    fn numbers_compare_as_numbers() {
        assert_eq!(sorted(&["r156", "r99", "r100"]), ["r99", "r100", "r156"]);
        assert_eq!(sorted(&["1_10", "1_2", "1_9"]), ["1_2", "1_9", "1_10"]);
        assert_eq!(sorted(&["10", "9", "100", "2"]), ["2", "9", "10", "100"]);
        assert_eq!(sorted(&["1700000000", "999"]), ["999", "1700000000"]);
    }

    #[test]
    fn a_number_sorts_before_text_in_the_same_place() {
        assert_eq!(sorted(&["abc", "10", "2"]), ["2", "10", "abc"]);
        assert_eq!(sorted(&["1_0a", "1_0_1"]), ["1_0_1", "1_0a"]);
        assert_eq!(sorted(&["2024-01-02", "2024-01-10", "2023-12-31"]), ["2023-12-31", "2024-01-02", "2024-01-10"]);
    }

    #[test]
    fn equal_versions_fall_back_to_string_order() {
        assert_eq!(sorted(&["1", "01", "001"]), ["001", "01", "1"]);
        assert_eq!(compare("1", "1"), Ordering::Equal);
    }

    #[test]
    fn huge_digit_runs_do_not_overflow() {
        let long = "9".repeat(60);
        assert_eq!(sorted(&[&long, "10"]), ["10".to_string(), long]);
    }
}
