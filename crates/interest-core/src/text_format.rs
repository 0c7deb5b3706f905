//! The embedding's text form: `[1,2.5,-3e-2]`, the same as pgvector's `vector`.

use crate::MAX_DIMENSIONS;
use std::fmt::Write;

/// Why a literal or a vector was refused; the Postgres layer maps each kind to
/// its SQLSTATE.
#[derive(Debug, Clone, PartialEq)]
pub enum VectorError {
    /// Not of the form `[x,y,...]` (22P02).
    Malformed { input: String, reason: String },
    /// NaN or ±infinity (22000).
    NotFinite { position: usize },
    /// No elements at all (22000).
    Empty,
    /// More than `MAX_DIMENSIONS` elements (54000).
    TooManyDimensions { dimensions: usize },
}

impl std::fmt::Display for VectorError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            VectorError::Malformed { input, .. } => {
                write!(f, "invalid input syntax for type embedding: \"{input}\"")
            }
            VectorError::NotFinite { .. } => {
                write!(f, "NaN or infinity is not allowed in an embedding")
            }
            VectorError::Empty => write!(f, "an embedding must have at least 1 dimension"),
            VectorError::TooManyDimensions { dimensions } => {
                write!(f, "an embedding cannot have more than {MAX_DIMENSIONS} dimensions (got {dimensions})")
            }
        }
    }
}

impl std::error::Error for VectorError {}

/// Checks values that came from anywhere (text, binary, arrays, arithmetic).
pub fn validate(values: &[f32]) -> Result<(), VectorError> {
    if values.is_empty() {
        return Err(VectorError::Empty);
    }
    if values.len() > MAX_DIMENSIONS {
        return Err(VectorError::TooManyDimensions {
            dimensions: values.len(),
        });
    }
    if let Some(position) = values.iter().position(|v| !v.is_finite()) {
        return Err(VectorError::NotFinite {
            position: position + 1,
        });
    }
    Ok(())
}

pub fn parse(input: &str) -> Result<Vec<f32>, VectorError> {
    let malformed = |reason: &str| VectorError::Malformed {
        input: input.to_string(),
        reason: reason.to_string(),
    };
    let trimmed = input.trim_matches(|c: char| c.is_ascii_whitespace());
    let inner = trimmed
        .strip_prefix('[')
        .ok_or_else(|| malformed("an embedding literal must start with \"[\""))?
        .strip_suffix(']')
        .ok_or_else(|| malformed("an embedding literal must end with \"]\""))?;
    if inner.trim().is_empty() {
        return Err(VectorError::Empty);
    }
    let mut values = Vec::with_capacity(inner.len() / 8 + 1);
    for (i, token) in inner.split(',').enumerate() {
        let token = token.trim_matches(|c: char| c.is_ascii_whitespace());
        if token.is_empty() {
            return Err(malformed(&format!("element {} is empty", i + 1)));
        }
        let value: f32 = token
            .parse()
            .map_err(|_| malformed(&format!("element {} (\"{token}\") is not a number", i + 1)))?;
        // Rust also accepts "inf"/"nan" spelled out, and overflow gives ±inf:
        // both are refused by `validate` below with the right error kind.
        values.push(value);
        if values.len() > MAX_DIMENSIONS {
            return Err(VectorError::TooManyDimensions {
                dimensions: inner.split(',').count(),
            });
        }
    }
    validate(&values)?;
    Ok(values)
}

/// Shortest text that reads back to the same `f32`s.
pub fn format(values: &[f32]) -> String {
    let mut out = String::with_capacity(values.len() * 10 + 2);
    let mut buf = ryu::Buffer::new();
    out.push('[');
    for (i, v) in values.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        let s = buf.format(*v);
        // ryu writes "1.0"; Postgres' real type writes "1".
        let _ = out.write_str(s.strip_suffix(".0").unwrap_or(s));
    }
    out.push(']');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_with_whitespace_and_exponents() {
        assert_eq!(parse(" [1, 2.5 ,-3e-2 ] ").unwrap(), vec![1.0, 2.5, -0.03]);
    }

    #[test]
    fn round_trips_exactly() {
        let v = vec![0.1f32, -1.0, 1e30, 1e-30, 123456.79, 3.0];
        let text = format(&v);
        assert_eq!(parse(&text).unwrap(), v);
        assert_eq!(format(&[1.0, 2.0, 0.5]), "[1,2,0.5]");
    }

    #[test]
    fn refuses_bad_literals_with_the_right_kind() {
        assert!(matches!(parse("1,2"), Err(VectorError::Malformed { .. })));
        assert!(matches!(parse("[1,2"), Err(VectorError::Malformed { .. })));
        assert!(matches!(
            parse("[1,,2]"),
            Err(VectorError::Malformed { .. })
        ));
        assert!(matches!(parse("[1,x]"), Err(VectorError::Malformed { .. })));
        assert!(matches!(parse("[]"), Err(VectorError::Empty)));
        assert!(matches!(parse("[ ]"), Err(VectorError::Empty)));
        assert!(matches!(
            parse("[1,NaN]"),
            Err(VectorError::NotFinite { position: 2 })
        ));
        assert!(matches!(parse("[inf]"), Err(VectorError::NotFinite { .. })));
        assert!(matches!(
            parse("[1e39]"),
            Err(VectorError::NotFinite { .. })
        ));
        let big = format!("[{}]", vec!["1"; MAX_DIMENSIONS + 1].join(","));
        assert!(matches!(
            parse(&big),
            Err(VectorError::TooManyDimensions { .. })
        ));
        let max = format!("[{}]", vec!["1"; MAX_DIMENSIONS].join(","));
        assert_eq!(parse(&max).unwrap().len(), MAX_DIMENSIONS);
    }
}
