//! The bookkeeping tables, one file per table group; each file owns the SQL
//! that reads and writes its tables.

pub(crate) mod catalog;
pub(crate) mod center;
pub(crate) mod covisit;
pub(crate) mod embedding_cache;
pub(crate) mod failures;
pub(crate) mod items;
pub(crate) mod pending;
pub(crate) mod profiles;
pub(crate) mod queue;
pub(crate) mod rewrites;
pub(crate) mod states;
pub(crate) mod trending;
