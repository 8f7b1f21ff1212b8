//! The small part of Prometheus's alert templating that regsim supports.
//!
//! Model: Prometheus expands alert labels and annotations with Go's `text/template`, given
//! `$labels` (the alert's series labels), `$value` (its sample value) and `$externalLabels`.
//! regsim supports only the actions rules use most: `{{ $labels.NAME }}` (also
//! `{{ .Labels.NAME }}`; a missing label expands to the empty string, as Prometheus's
//! `missingkey=zero`) and `{{ $value }}` (also `{{ .Value }}`, printed as Go's `%v` prints a
//! float64). Anything else between `{{` and `}}` (pipelines, functions, conditionals) is a
//! load-time error, so a rule never silently shows an unexpanded template.

use super::labels::Labels;

enum Part<'a> {
    Text(&'a str),
    Label(&'a str),
    Value,
}

fn parts(text: &str) -> Result<Vec<Part<'_>>, String> {
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(open) = rest.find("{{") {
        out.push(Part::Text(&rest[..open]));
        let after = &rest[open + 2..];
        let close = after.find("}}").ok_or_else(|| format!("unclosed action in template {text:?}"))?;
        let action = after[..close].trim_matches(|c: char| c == ' ' || c == '-');
        let action = action.trim();
        let part = if action == "$value" || action == ".Value" {
            Part::Value
        } else if let Some(name) = action.strip_prefix("$labels.").or_else(|| action.strip_prefix(".Labels.")) {
            if !super::labels::valid_label_name(name) {
                return Err(format!("bad label name in template action {{{{ {action} }}}}"));
            }
            Part::Label(name)
        } else {
            return Err(format!(
                "template action {{{{ {action} }}}} is outside regsim's support (only {{{{ $labels.NAME }}}} and {{{{ $value }}}})"
            ));
        };
        out.push(part);
        rest = &after[close + 2..];
    }
    out.push(Part::Text(rest));
    Ok(out)
}

/// Checks that `text` uses only supported actions.
pub fn check(text: &str) -> Result<(), String> {
    parts(text).map(|_| ())
}

/// Expands `text` for an alert with `labels` and `value`.
pub fn expand(text: &str, labels: &Labels, value: f64) -> Result<String, String> {
    let mut out = String::new();
    for p in parts(text)? {
        match p {
            Part::Text(t) => out.push_str(t),
            Part::Label(name) => out.push_str(labels.get(name).unwrap_or("")),
            Part::Value => out.push_str(&go_float(value)),
        }
    }
    Ok(out)
}

/// A float64 as Go's `%v` prints it: the shortest round-trip digits, in exponent form when the
/// decimal exponent is below -4 or at least 6 (`strconv`'s `'g'` with shortest precision), e.g.
/// `0.5`, `123456`, `1e+06`, `1.5e-05`.
pub fn go_float(v: f64) -> String {
    if v.is_nan() {
        return "NaN".into();
    }
    if v.is_infinite() {
        return if v > 0.0 { "+Inf".into() } else { "-Inf".into() };
    }
    if v == 0.0 {
        return if v.is_sign_negative() { "-0".into() } else { "0".into() };
    }
    let sci = format!("{v:e}");
    let Some((mantissa, exp)) = sci.split_once('e') else { return format!("{v}") };
    let Ok(exp) = exp.parse::<i32>() else { return format!("{v}") };
    if (-4..6).contains(&exp) {
        return format!("{v}");
    }
    let sign = if exp < 0 { '-' } else { '+' };
    format!("{mantissa}e{sign}{:02}", exp.abs())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expands_labels_and_value() {
        let l = Labels::from_pairs([("instance", "a:80"), ("job", "api")]);
        assert_eq!(
            expand("{{ $labels.instance }} of {{$labels.job}} is {{ $value }}{{ $labels.nope }}", &l, 0.5),
            Ok("a:80 of api is 0.5".to_string())
        );
        assert_eq!(expand("plain", &l, 1.0), Ok("plain".to_string()));
        assert!(check("{{ $value | humanize }}").is_err());
        assert!(check("{{ if x }}").is_err());
        assert!(check("{{ $labels.x ").is_err());
    }

    #[test]
    fn floats_print_like_go() {
        for (v, want) in [(0.5, "0.5"), (123456.0, "123456"), (1e6, "1e+06"), (1.5e-5, "1.5e-05"), (4.0, "4")] {
            assert_eq!(go_float(v), want);
        }
        assert_eq!(go_float(0.0001), "0.0001");
        assert_eq!(go_float(-1234567.0), "-1.234567e+06");
        assert_eq!(go_float(f64::INFINITY), "+Inf");
    }
}
