//! yara-x scan results → Cuckoo's `yara[]` entries.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use nestbox_types::report::YaraMatch;
use serde_json::{Map, Value};

/// libyara keeps at most this many bytes of a match (`YR_MAX_MATCH_DATA`); the `yara` CLI
/// and yara-python show no more, so neither do we.
pub const MAX_MATCH_DATA: usize = 512;
/// Offsets kept per pattern. A pattern such as `{ 00 00 }` can match millions of times;
/// the count still drives the rule's condition, but the report keeps only the first ones.
pub const MAX_OFFSETS_PER_PATTERN: usize = 64;

/// The matching rules of a scan in the shape Cuckoo's `File.get_yara()` produces:
///
/// * `name`: the rule identifier;
/// * `meta`: `{"description": "(no description)"}` overlaid with the rule's metadata;
/// * `strings`: the distinct matched bytes, base64-encoded, sorted;
/// * `offsets`: per pattern identifier without `$`, `[[offset, index into strings]]`;
/// * `tags`: the rule's tags.
pub fn to_cuckoo_matches(results: &yara_x::ScanResults<'_, '_>) -> Vec<YaraMatch> {
    results.matching_rules().map(|rule| one(&rule)).collect()
}

fn one(rule: &yara_x::Rule<'_, '_>) -> YaraMatch {
    let mut meta = Map::new();
    meta.insert(
        "description".to_owned(),
        Value::String("(no description)".to_owned()),
    );
    for (key, value) in rule.metadata() {
        meta.insert(key.to_owned(), meta_value(value));
    }

    // (pattern id, offset, encoded data) in pattern order, then match order.
    let mut hits: Vec<(String, usize, String)> = Vec::new();
    for pattern in rule.patterns() {
        let id = pattern.identifier().trim_start_matches('$').to_owned();
        for m in pattern.matches().take(MAX_OFFSETS_PER_PATTERN) {
            let data = m.data();
            let data = &data[..data.len().min(MAX_MATCH_DATA)];
            hits.push((id.clone(), m.range().start, B64.encode(data)));
        }
    }
    let mut strings: Vec<String> = hits.iter().map(|(_, _, s)| s.clone()).collect();
    strings.sort();
    strings.dedup();
    let mut offsets = Map::new();
    for (id, offset, data) in &hits {
        let index = strings.binary_search(data).unwrap_or(0);
        let entry = offsets
            .entry(id.clone())
            .or_insert_with(|| Value::Array(Vec::new()));
        if let Value::Array(list) = entry {
            list.push(Value::Array(vec![Value::from(*offset), Value::from(index)]));
        }
    }
    YaraMatch {
        name: rule.identifier().to_owned(),
        meta,
        strings,
        offsets,
        tags: rule.tags().map(|t| t.identifier().to_owned()).collect(),
    }
}

fn meta_value(v: yara_x::MetaValue<'_>) -> Value {
    match v {
        yara_x::MetaValue::Integer(i) => Value::from(i),
        yara_x::MetaValue::Float(f) => Value::from(f),
        yara_x::MetaValue::Bool(b) => Value::Bool(b),
        yara_x::MetaValue::String(s) => Value::String(s.to_owned()),
        // yara-python hands byte metadata over as text with invalid bytes replaced.
        yara_x::MetaValue::Bytes(b) => Value::String(String::from_utf8_lossy(b).into_owned()),
    }
}
