//! Every user-facing failure goes through here: a real SQLSTATE, a detail and
//! a hint (never `error!`, which reports XX000).

use interest_core::encoder::EncoderError;
use interest_core::text_format::VectorError;
use pgrx::pg_sys::panic::ErrorReport;
use pgrx::{PgLogLevel, PgSqlErrorCode};

pub fn raise(
    code: PgSqlErrorCode,
    message: impl Into<String>,
    detail: impl Into<String>,
    hint: impl Into<String>,
) -> ! {
    let mut report = ErrorReport::new(code, message.into(), "pg_interest");
    let (detail, hint) = (detail.into(), hint.into());
    if !detail.is_empty() {
        report = report.set_detail(detail);
    }
    if !hint.is_empty() {
        report = report.set_hint(hint);
    }
    report.report(PgLogLevel::ERROR);
    unreachable!("ERROR does not return")
}

/// A WARNING with its SQLSTATE, detail and hint; the statement goes on.
pub fn warn(
    code: PgSqlErrorCode,
    message: impl Into<String>,
    detail: impl Into<String>,
    hint: impl Into<String>,
) {
    ErrorReport::new(code, message.into(), "pg_interest")
        .set_detail(detail.into())
        .set_hint(hint.into())
        .report(PgLogLevel::WARNING);
}

pub fn raise_vector_error(err: VectorError) -> ! {
    let message = err.to_string();
    match err {
        VectorError::Malformed { reason, .. } => raise(
            PgSqlErrorCode::ERRCODE_INVALID_TEXT_REPRESENTATION,
            message,
            reason,
            "Write an embedding as a bracketed, comma-separated list of numbers, for example '[0.1,0.2,0.3]'.",
        ),
        VectorError::NotFinite { position } => raise(
            PgSqlErrorCode::ERRCODE_DATA_EXCEPTION,
            message,
            format!("Element {position} is NaN or infinite."),
            "Every element must be a finite number.",
        ),
        VectorError::Empty => raise(
            PgSqlErrorCode::ERRCODE_DATA_EXCEPTION,
            message,
            "The embedding has no elements.",
            "Give at least one number, for example '[0]'.",
        ),
        VectorError::TooManyDimensions { dimensions } => raise(
            PgSqlErrorCode::ERRCODE_PROGRAM_LIMIT_EXCEEDED,
            message,
            format!("The input has {dimensions} dimensions."),
            "Reduce the dimension, for example with a smaller model.",
        ),
    }
}

pub fn dimension_mismatch(left: usize, right: usize) -> ! {
    raise(
        PgSqlErrorCode::ERRCODE_DATA_EXCEPTION,
        format!("different embedding dimensions {left} and {right}"),
        format!("The left operand has {left} dimensions and the right operand has {right}."),
        "Compare only embeddings made by the same model.",
    )
}

pub fn raise_encoder_error(model: &str, err: EncoderError) -> ! {
    let message = format!("model \"{model}\": {err}");
    match err {
        EncoderError::Runtime(detail) => raise(
            PgSqlErrorCode::ERRCODE_UNDEFINED_FILE,
            "could not load ONNX Runtime",
            detail,
            "Set interest.onnxruntime_library to the path of libonnxruntime.so (1.31 or newer); models/fetch_models.sh installs it.",
        ),
        EncoderError::FileMissing { path, message: m } => raise(
            PgSqlErrorCode::ERRCODE_UNDEFINED_FILE,
            message,
            format!("{}: {m}", path.display()),
            "Check interest.model_dir and the files listed in interest.models; models/fetch_models.sh installs the default model.",
        ),
        EncoderError::BadModel { path, message: m } => raise(
            PgSqlErrorCode::ERRCODE_DATA_CORRUPTED,
            format!("model \"{model}\" could not be loaded from \"{}\"", path.display()),
            m,
            "The file is damaged or not an ONNX model / tokenizer.json; reinstall it or register a different model.",
        ),
        EncoderError::UnsupportedSignature(m) => raise(
            PgSqlErrorCode::ERRCODE_FEATURE_NOT_SUPPORTED,
            message,
            m,
            "pg_interest runs BERT-family encoders with inputs input_ids, attention_mask and optional token_type_ids.",
        ),
        EncoderError::Inference(m) => raise(
            PgSqlErrorCode::ERRCODE_EXTERNAL_ROUTINE_EXCEPTION,
            message,
            m,
            "The text could not be embedded; check the model's files, or report the text that fails.",
        ),
    }
}

/// The value of an argument that has no meaning as NULL: a NULL is refused
/// with 22004 (pgrx's own refusal would report XX000).
pub fn required<T>(value: Option<T>, argument: &str) -> T {
    value.unwrap_or_else(|| {
        let hint = match argument {
            "user_key" => "For a visitor without a key, pass any key that has no events (such as ''): recommendations then come from popularity and trends.",
            "table" => "Pass the table, such as 'events' (a regclass).",
            _ => "Pass a value, or leave the argument out to take its default.",
        };
        raise(
            PgSqlErrorCode::ERRCODE_NULL_VALUE_NOT_ALLOWED,
            format!("{argument} must not be NULL"),
            format!("The argument {argument} has no meaning as NULL."),
            hint,
        )
    })
}
