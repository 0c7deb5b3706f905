//! `interest.embedding`: a flat varlena of float4 with pgvector's layout
//! (int32 varlena header, int16 dim, int16 unused, float4 values), so a binary
//! cast to pgvector's `vector` costs nothing.
//!
//! Arguments are read in place from the detoasted datum (`EmbeddingRef`);
//! results are built straight into a palloc'd varlena (`Embedding`).

use crate::errors::{raise, raise_vector_error};
use interest_core::text_format;
use interest_core::MAX_DIMENSIONS;
use pgrx::callconv::{Arg, ArgAbi, BoxRet, FcInfo};
use pgrx::datum::Datum;
use pgrx::nullable::Nullable;
use pgrx::pgrx_sql_entity_graph::metadata::{
    ArgumentError, ReturnsError, ReturnsRef, SqlMappingRef, SqlTranslatable, TypeOrigin,
};
use pgrx::prelude::*;
use pgrx::{FromDatum, IntoDatum, PgSqlErrorCode};
use std::ffi::CStr;

/// Bytes before the first value: varlena header + dim + unused.
const HEADER_BYTES: usize = 8;
const SQL_TYPE: &str = "interest.embedding";

/// A borrowed embedding argument.
#[derive(Clone, Copy)]
pub struct EmbeddingRef<'a> {
    values: &'a [f32],
}

impl<'a> EmbeddingRef<'a> {
    pub fn as_slice(&self) -> &'a [f32] {
        self.values
    }
    pub fn dims(&self) -> usize {
        self.values.len()
    }
}

impl FromDatum for EmbeddingRef<'_> {
    unsafe fn from_polymorphic_datum(
        datum: pg_sys::Datum,
        is_null: bool,
        _typoid: pg_sys::Oid,
    ) -> Option<Self> {
        if is_null {
            return None;
        }
        // SAFETY: the datum is an interest.embedding varlena. pg_detoast_datum
        // returns the same pointer unless the value is toasted or has a short
        // header, so the common case reads the tuple's bytes without a copy.
        unsafe {
            let raw =
                pg_sys::pg_detoast_datum(datum.cast_mut_ptr::<pg_sys::varlena>()) as *const u8;
            let dim = *(raw.add(4) as *const i16);
            let values = std::slice::from_raw_parts(
                raw.add(HEADER_BYTES) as *const f32,
                dim.max(0) as usize,
            );
            Some(EmbeddingRef { values })
        }
    }
}

unsafe impl<'fcx> ArgAbi<'fcx> for EmbeddingRef<'fcx> {
    unsafe fn unbox_arg_unchecked(arg: Arg<'_, 'fcx>) -> Self {
        let index = arg.index();
        unsafe {
            arg.unbox_arg_using_from_datum()
                .unwrap_or_else(|| panic!("argument {index} must not be null"))
        }
    }

    unsafe fn unbox_nullable_arg(arg: Arg<'_, 'fcx>) -> Nullable<Self> {
        unsafe { arg.unbox_arg_using_from_datum().into() }
    }
}

unsafe impl SqlTranslatable for EmbeddingRef<'_> {
    const TYPE_IDENT: &'static str = pgrx::pgrx_resolved_type!(EmbeddingRef);
    const TYPE_ORIGIN: TypeOrigin = TypeOrigin::External;
    const ARGUMENT_SQL: Result<SqlMappingRef, ArgumentError> = Ok(SqlMappingRef::literal(SQL_TYPE));
    const RETURN_SQL: Result<ReturnsRef, ReturnsError> =
        Ok(ReturnsRef::One(SqlMappingRef::literal(SQL_TYPE)));
}

/// An embedding to return. Values are checked by the constructor.
#[derive(Debug, Clone, PartialEq)]
pub struct Embedding(Vec<f32>);

impl Embedding {
    /// Validates (finite, 1..=16000 dimensions) or raises the matching SQL error.
    pub fn new(values: Vec<f32>) -> Embedding {
        if let Err(e) = text_format::validate(&values) {
            raise_vector_error(e);
        }
        Embedding(values)
    }

    pub fn into_vec(self) -> Vec<f32> {
        self.0
    }

    pub fn dims(&self) -> usize {
        self.0.len()
    }

    /// Copies the values into a new palloc'd varlena in the current memory context.
    pub fn to_pg_datum(&self) -> pg_sys::Datum {
        let size = HEADER_BYTES + self.0.len() * 4;
        // SAFETY: palloc0 returns `size` writable bytes; we fill header and values.
        unsafe {
            let raw = pg_sys::palloc0(size) as *mut u8;
            // 4-byte varlena header on little-endian: length << 2 (SET_VARSIZE).
            *(raw as *mut u32) = (size as u32) << 2;
            *(raw.add(4) as *mut i16) = self.0.len() as i16;
            std::ptr::copy_nonoverlapping(
                self.0.as_ptr(),
                raw.add(HEADER_BYTES) as *mut f32,
                self.0.len(),
            );
            pg_sys::Datum::from(raw)
        }
    }
}

unsafe impl BoxRet for Embedding {
    unsafe fn box_into<'fcx>(self, fcinfo: &mut FcInfo<'fcx>) -> Datum<'fcx> {
        unsafe { fcinfo.return_raw_datum(self.to_pg_datum()) }
    }
}

impl IntoDatum for Embedding {
    fn into_datum(self) -> Option<pg_sys::Datum> {
        Some(self.to_pg_datum())
    }
    fn type_oid() -> pg_sys::Oid {
        embedding_type_oid()
    }
}

impl FromDatum for Embedding {
    unsafe fn from_polymorphic_datum(
        datum: pg_sys::Datum,
        is_null: bool,
        typoid: pg_sys::Oid,
    ) -> Option<Self> {
        unsafe { EmbeddingRef::from_polymorphic_datum(datum, is_null, typoid) }
            .map(|r| Embedding(r.as_slice().to_vec()))
    }
}

unsafe impl SqlTranslatable for Embedding {
    const TYPE_IDENT: &'static str = pgrx::pgrx_resolved_type!(Embedding);
    const TYPE_ORIGIN: TypeOrigin = TypeOrigin::External;
    const ARGUMENT_SQL: Result<SqlMappingRef, ArgumentError> = Ok(SqlMappingRef::literal(SQL_TYPE));
    const RETURN_SQL: Result<ReturnsRef, ReturnsError> =
        Ok(ReturnsRef::One(SqlMappingRef::literal(SQL_TYPE)));
}

/// The type's OID, looked up in the syscache (cheap, and right even after the
/// extension was dropped and created again in this backend).
pub fn embedding_type_oid() -> pg_sys::Oid {
    // SAFETY: plain catalog lookups with valid C strings.
    unsafe {
        let nsp = pg_sys::get_namespace_oid(c"interest".as_ptr(), false);
        let oid = pg_sys::GetSysCacheOid(
            pg_sys::SysCacheIdentifier::TYPENAMENSP as i32,
            pg_sys::Anum_pg_type_oid as i16,
            pg_sys::Datum::from(c"embedding".as_ptr()),
            pg_sys::Datum::from(nsp),
            pg_sys::Datum::from(0),
            pg_sys::Datum::from(0),
        );
        if oid == pg_sys::InvalidOid {
            raise(
                PgSqlErrorCode::ERRCODE_UNDEFINED_OBJECT,
                "type interest.embedding does not exist",
                "The pg_interest extension is not installed in this database.",
                "Run CREATE EXTENSION pg_interest.",
            );
        }
        oid
    }
}

pub fn check_typmod(dims: usize, typmod: i32) {
    if typmod > 0 && dims != typmod as usize {
        raise(
            PgSqlErrorCode::ERRCODE_DATA_EXCEPTION,
            format!("expected {typmod} dimensions, not {dims}"),
            format!("The column or cast is declared embedding({typmod})."),
            "Use an embedding of the declared dimension, or change the declaration.",
        );
    }
}

pub fn check_same_dims(a: &[f32], b: &[f32]) {
    if a.len() != b.len() {
        crate::errors::dimension_mismatch(a.len(), b.len());
    }
}

// ---- I/O functions; their SQL is hand-written in sql/bootstrap.sql ----------

#[pg_extern(sql = false, immutable, strict, parallel_safe)]
fn embedding_in(input: &CStr, _typioparam: pg_sys::Oid, typmod: i32) -> Embedding {
    let text = input.to_str().unwrap_or_else(|_| {
        raise(
            PgSqlErrorCode::ERRCODE_CHARACTER_NOT_IN_REPERTOIRE,
            "invalid byte sequence in embedding literal",
            "The literal is not valid UTF-8.",
            "Write an embedding as '[0.1,0.2,0.3]'.",
        )
    });
    let values = text_format::parse(text).unwrap_or_else(|e| raise_vector_error(e));
    check_typmod(values.len(), typmod);
    Embedding(values)
}

#[pg_extern(sql = false, immutable, strict, parallel_safe)]
fn embedding_out(e: EmbeddingRef<'_>) -> &'static CStr {
    let text = text_format::format(e.as_slice());
    // SAFETY: pstrdup-like copy into a palloc'd, NUL-terminated buffer.
    unsafe {
        let buf = pg_sys::palloc(text.len() + 1) as *mut u8;
        std::ptr::copy_nonoverlapping(text.as_ptr(), buf, text.len());
        *buf.add(text.len()) = 0;
        CStr::from_ptr(buf as *const std::ffi::c_char)
    }
}

#[pg_extern(sql = false, immutable, strict, parallel_safe)]
fn embedding_typmod_in(list: Array<&CStr>) -> i32 {
    let items: Vec<Option<&CStr>> = list.iter().collect();
    let bad = |detail: String| -> ! {
        raise(
            PgSqlErrorCode::ERRCODE_INVALID_PARAMETER_VALUE,
            "invalid type modifier for embedding",
            detail,
            format!("Declare the dimension as one integer from 1 to {MAX_DIMENSIONS}, for example embedding(384)."),
        )
    };
    if items.len() != 1 {
        bad(format!(
            "{} modifiers were given; embedding takes one.",
            items.len()
        ));
    }
    let text = items[0].and_then(|c| c.to_str().ok()).unwrap_or("");
    match text.trim().parse::<i64>() {
        Ok(n) if (1..=MAX_DIMENSIONS as i64).contains(&n) => n as i32,
        Ok(n) => bad(format!("The dimension {n} is out of range.")),
        Err(_) => bad(format!("\"{text}\" is not an integer.")),
    }
}

#[pg_extern(sql = false, immutable, strict, parallel_safe)]
fn embedding_recv(buf: pgrx::datum::Internal, _typioparam: pg_sys::Oid, typmod: i32) -> Embedding {
    let short = || -> ! {
        raise(
            PgSqlErrorCode::ERRCODE_PROTOCOL_VIOLATION,
            "insufficient data left in message",
            "The binary embedding is shorter than its header says.",
            "Send int16 dimension, int16 zero, then that many float4 values, all big-endian.",
        )
    };
    // SAFETY: for a receive function the first argument is a StringInfo.
    let values = unsafe {
        let info = buf
            .unwrap()
            .expect("receive buffer")
            .cast_mut_ptr::<pg_sys::StringInfoData>();
        let data = std::slice::from_raw_parts((*info).data as *const u8, (*info).len as usize);
        let mut cursor = (*info).cursor as usize;
        let mut take = |n: usize| -> &[u8] {
            if cursor + n > data.len() {
                short();
            }
            let s = &data[cursor..cursor + n];
            cursor += n;
            s
        };
        let dim = i16::from_be_bytes(take(2).try_into().unwrap());
        let unused = i16::from_be_bytes(take(2).try_into().unwrap());
        if dim < 1 || unused != 0 {
            raise(
                PgSqlErrorCode::ERRCODE_INVALID_BINARY_REPRESENTATION,
                "invalid binary embedding header",
                format!("dimension {dim}, unused field {unused}"),
                "Send int16 dimension (at least 1), int16 zero, then the float4 values.",
            );
        }
        let values: Vec<f32> = (0..dim)
            .map(|_| f32::from_be_bytes(take(4).try_into().unwrap()))
            .collect();
        (*info).cursor = cursor as i32;
        values
    };
    let e = Embedding::new(values);
    check_typmod(e.0.len(), typmod);
    e
}

#[pg_extern(sql = false, immutable, strict, parallel_safe)]
fn embedding_send(e: EmbeddingRef<'_>) -> Vec<u8> {
    let mut out = Vec::with_capacity(4 + e.dims() * 4);
    out.extend_from_slice(&(e.dims() as i16).to_be_bytes());
    out.extend_from_slice(&0i16.to_be_bytes());
    for v in e.as_slice() {
        out.extend_from_slice(&v.to_be_bytes());
    }
    out
}

// ---- typmod coercion and casts --------------------------------------------

/// Length coercion: applied when a value is stored in an embedding(n) column
/// or cast to embedding(n).
#[pg_extern(name = "embedding", immutable, strict, parallel_safe)]
fn embedding_coerce(e: EmbeddingRef<'_>, typmod: i32, _explicit: bool) -> Embedding {
    check_typmod(e.dims(), typmod);
    Embedding(e.as_slice().to_vec())
}

#[pg_extern(immutable, strict, parallel_safe)]
fn real_array_to_embedding(a: Array<f32>, typmod: i32, _explicit: bool) -> Embedding {
    let values = array_values(a.iter());
    let e = Embedding::new(values);
    check_typmod(e.0.len(), typmod);
    e
}

#[pg_extern(immutable, strict, parallel_safe)]
fn double_array_to_embedding(a: Array<f64>, typmod: i32, _explicit: bool) -> Embedding {
    let values = array_values(a.iter().map(|v| v.map(|x| x as f32)));
    let e = Embedding::new(values);
    check_typmod(e.0.len(), typmod);
    e
}

#[pg_extern(immutable, strict, parallel_safe)]
fn integer_array_to_embedding(a: Array<i32>, typmod: i32, _explicit: bool) -> Embedding {
    let values = array_values(a.iter().map(|v| v.map(|x| x as f32)));
    let e = Embedding::new(values);
    check_typmod(e.0.len(), typmod);
    e
}

fn array_values(items: impl Iterator<Item = Option<f32>>) -> Vec<f32> {
    items
        .enumerate()
        .map(|(i, v)| {
            v.unwrap_or_else(|| {
                raise(
                    PgSqlErrorCode::ERRCODE_NULL_VALUE_NOT_ALLOWED,
                    "array must not contain nulls",
                    format!("Element {} is NULL.", i + 1),
                    "Replace NULL elements with numbers before casting to embedding.",
                )
            })
        })
        .collect()
}

#[pg_extern(immutable, strict, parallel_safe)]
fn embedding_to_real_array(e: EmbeddingRef<'_>, _typmod: i32, _explicit: bool) -> Vec<f32> {
    e.as_slice().to_vec()
}
