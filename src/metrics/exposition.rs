//! A strict reader of the Prometheus text exposition format (version 0.0.4), as much of it as our
//! own scrapes use: `# HELP`, `# TYPE`, and samples `name{label="value",...} value`.
//!
//! Tests use it to check a scrape structurally (every sample belongs to a declared family of the
//! right type, label values are well-escaped) and to read label values; `promtool check metrics`
//! additionally lints names when it is installed.

use std::collections::BTreeMap;

/// One sample line.
#[derive(Clone, Debug, PartialEq)]
pub struct Sample {
    pub name: String,
    pub labels: Vec<(String, String)>,
    pub value: f64,
}

/// A parsed scrape: the declared families (name → type) and the samples.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Scrape {
    pub types: BTreeMap<String, String>,
    pub samples: Vec<Sample>,
}

impl Scrape {
    /// The family a sample name belongs to (histogram and summary samples carry suffixes).
    pub fn family_of<'a>(&self, sample: &'a str) -> Option<&'a str> {
        if self.types.contains_key(sample) {
            return Some(sample);
        }
        for suffix in ["_bucket", "_sum", "_count"] {
            if let Some(base) = sample.strip_suffix(suffix) {
                if matches!(
                    self.types.get(base).map(String::as_str),
                    Some("histogram" | "summary")
                ) {
                    return Some(base);
                }
            }
        }
        None
    }

    /// The sum of the samples of `name` that have `labels` (over the labels not given), or `None`
    /// when no sample matches.
    pub fn sum(&self, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
        let mut found = None;
        for x in &self.samples {
            if x.name == name
                && labels
                    .iter()
                    .all(|(k, v)| x.labels.iter().any(|(k2, v2)| k2 == k && v2 == v))
            {
                *found.get_or_insert(0.0) += x.value;
            }
        }
        found
    }

    /// Every name a PromQL query may use: family names and the sample names of histograms.
    pub fn names(&self) -> std::collections::BTreeSet<&str> {
        let mut out: std::collections::BTreeSet<&str> =
            self.types.keys().map(String::as_str).collect();
        out.extend(self.samples.iter().map(|s| s.name.as_str()));
        out
    }
}

fn is_name(s: &str) -> bool {
    let mut b = s.bytes();
    matches!(b.next(), Some(c) if c.is_ascii_alphabetic() || c == b'_' || c == b':')
        && b.all(|c| c.is_ascii_alphanumeric() || c == b'_' || c == b':')
}

fn parse_value(s: &str) -> Option<f64> {
    match s {
        "+Inf" => Some(f64::INFINITY),
        "-Inf" => Some(f64::NEG_INFINITY),
        "NaN" => Some(f64::NAN),
        _ => s.parse().ok(),
    }
}

/// Parses a scrape; the error names the first bad line.
pub fn parse(text: &str) -> Result<Scrape, String> {
    let mut out = Scrape::default();
    for (n, line) in text.lines().enumerate() {
        let err = |what: &str| format!("line {}: {what}: {line:?}", n + 1);
        if line.is_empty() {
            continue;
        }
        if let Some(rest) = line.strip_prefix("# ") {
            let mut parts = rest.splitn(3, ' ');
            match (parts.next(), parts.next(), parts.next()) {
                (Some("TYPE"), Some(name), Some(kind)) => {
                    if !is_name(name) {
                        return Err(err("bad metric name"));
                    }
                    if !matches!(
                        kind,
                        "counter" | "gauge" | "histogram" | "summary" | "untyped"
                    ) {
                        return Err(err("bad type"));
                    }
                    if out.types.insert(name.into(), kind.into()).is_some() {
                        return Err(err("family declared twice"));
                    }
                }
                (Some("HELP"), Some(name), _) if is_name(name) => {}
                _ => return Err(err("bad comment")),
            }
            continue;
        }
        let (name, rest) = match line.find(['{', ' ']) {
            Some(i) => line.split_at(i),
            None => return Err(err("no value")),
        };
        if !is_name(name) {
            return Err(err("bad metric name"));
        }
        let mut labels = Vec::new();
        let rest = if let Some(mut r) = rest.strip_prefix('{') {
            loop {
                if let Some(after) = r.strip_prefix('}') {
                    r = after;
                    break;
                }
                let eq = r.find('=').ok_or_else(|| err("label without ="))?;
                let key = &r[..eq];
                if !is_name(key) || key.starts_with("__") {
                    return Err(err("bad label name"));
                }
                let mut chars = r[eq + 1..]
                    .strip_prefix('"')
                    .ok_or_else(|| err("unquoted label value"))?
                    .char_indices();
                let mut value = String::new();
                let end = loop {
                    match chars.next() {
                        Some((i, '"')) => break i,
                        Some((_, '\\')) => match chars.next() {
                            Some((_, 'n')) => value.push('\n'),
                            Some((_, '\\')) => value.push('\\'),
                            Some((_, '"')) => value.push('"'),
                            _ => return Err(err("bad escape")),
                        },
                        Some((_, c)) => value.push(c),
                        None => return Err(err("unterminated label value")),
                    }
                };
                labels.push((key.to_owned(), value));
                r = &r[eq + 1 + 1 + end + 1..];
                r = r.strip_prefix(',').unwrap_or(r);
            }
            r
        } else {
            rest
        };
        let mut fields = rest.split_whitespace();
        let value = fields
            .next()
            .and_then(parse_value)
            .ok_or_else(|| err("bad value"))?;
        if let Some(ts) = fields.next() {
            ts.parse::<i64>().map_err(|_| err("bad timestamp"))?;
        }
        if fields.next().is_some() {
            return Err(err("trailing fields"));
        }
        let sample = Sample {
            name: name.to_owned(),
            labels,
            value,
        };
        if out.family_of(&sample.name).is_none() {
            return Err(err("sample of an undeclared family"));
        }
        out.samples.push(sample);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_families_samples_and_escapes() {
        let s = parse(
            "# HELP a_total Things.\n# TYPE a_total counter\na_total{x=\"q\\\"\\\\\\n\",y=\"\"} 3\n\
             # TYPE h histogram\nh_bucket{le=\"+Inf\"} 1\nh_sum 0.5\nh_count 1 1700000000\n",
        )
        .unwrap();
        assert_eq!(s.samples.len(), 4);
        assert_eq!(s.samples[0].labels[0].1, "q\"\\\n");
        assert_eq!(s.samples[1].value, 1.0);
        assert!(s.names().contains("h_bucket"));
    }

    #[test]
    fn rejects_malformed_lines() {
        for bad in [
            "x 1\n",
            "# TYPE x counter\nx{a=b} 1\n",
            "# TYPE x counter\nx 1 2 3\n",
            "# TYPE x counter\nx{a=\"b} 1\n",
            "# TYPE 1x counter\n",
            "# TYPE x widget\n",
            "# TYPE x counter\nx abc\n",
        ] {
            assert!(parse(bad).is_err(), "{bad:?}");
        }
    }
}
