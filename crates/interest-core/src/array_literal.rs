//! Postgres array literals, for ragged arrays that travel one literal per
//! row (slicing one long flat array would walk it from the start per row).

/// `{"a","b\"c"}`: every element quoted, `"` and `\` escaped.
pub fn text_array_literal(items: &[String]) -> String {
    let mut out = String::with_capacity(2 + items.iter().map(|s| s.len() + 3).sum::<usize>());
    out.push('{');
    for (n, s) in items.iter().enumerate() {
        if n > 0 {
            out.push(',');
        }
        out.push('"');
        for c in s.chars() {
            if c == '"' || c == '\\' {
                out.push('\\');
            }
            out.push(c);
        }
        out.push('"');
    }
    out.push('}');
    out
}

/// `{1.5e0,2.5e-3}`: exponent form keeps tiny decayed values short, and
/// reads back exactly.
pub fn float_array_literal<T: std::fmt::LowerExp>(values: &[T]) -> String {
    let body: Vec<String> = values.iter().map(|v| format!("{v:e}")).collect();
    format!("{{{}}}", body.join(","))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_elements_are_quoted_and_escaped() {
        let items = vec![
            "a".to_string(),
            "b\"c".to_string(),
            "d\\e".to_string(),
            "".to_string(),
            "NULL".to_string(),
        ];
        assert_eq!(
            text_array_literal(&items),
            r#"{"a","b\"c","d\\e","","NULL"}"#
        );
        assert_eq!(text_array_literal(&[]), "{}");
    }

    #[test]
    fn floats_read_back_exactly() {
        let values = [1.5, 2.5e-3, 1.0 / 3.0, 7.0e-300, -0.0, 123456789.123];
        let lit = float_array_literal(&values);
        let back: Vec<f64> = lit
            .trim_matches(|c| c == '{' || c == '}')
            .split(',')
            .map(|v| v.parse().unwrap())
            .collect();
        assert_eq!(back, values);
    }
}
