//! An items table's embeddings as recommend() ranks them, cached per backend
//! until the table's count of changes moves (`store::items::version`).

use super::embedding_cache;
use crate::embedding_type::Embedding;
use crate::spi::{extension_oid, read_cached, read_cached_first};
use pgrx::pg_sys;
use std::cell::RefCell;
use std::collections::{HashMap, HashSet};
use std::rc::Rc;

pub(crate) struct Catalog {
    ext: pg_sys::Oid,
    version: i64,
    pub keys: Vec<String>,
    pub index: HashMap<String, usize>,
    /// Unit vectors, or None for items known only from events (and, in a
    /// candidates catalog, for candidates whose embedding is not read yet).
    pub vectors: Vec<Option<Vec<f32>>>,
    /// When each item was first embedded (epoch seconds; +inf when unknown).
    pub created: Vec<f64>,
}

impl Catalog {
    /// A catalog of items known only by key (events without an items table).
    pub(crate) fn of_keys(mut keys: Vec<String>) -> Catalog {
        keys.sort();
        let n = keys.len();
        Catalog {
            ext: pg_sys::InvalidOid,
            version: -1,
            index: keys
                .iter()
                .enumerate()
                .map(|(i, k)| (k.clone(), i))
                .collect(),
            keys,
            vectors: vec![None; n],
            created: vec![f64::INFINITY; n],
        }
    }
}

/// recommend()'s candidates `keys` for one call (no backend keeps a large
/// catalog), and the positions of those whose embedding is not read yet.
/// `fetched` rows (from `nearest`) are not read again; the `recurring` keys
/// (the trending items, candidates of every call) are read now and kept per
/// backend (`embedding_cache`); the others wait, vector None and creation
/// time unknown, until the ranking asks for them (`Catalog::fill`), as most
/// cannot place (`interest_core::unread_vectors`).
pub(crate) fn of_candidates(
    item_source: i32,
    keys: &[String],
    fetched: Vec<(String, Vec<f32>, f64)>,
    recurring: &HashSet<&str>,
) -> (Catalog, Vec<usize>) {
    let wanted: Vec<&str> = keys
        .iter()
        .map(String::as_str)
        .filter(|k| recurring.contains(k))
        .collect();
    // (similar_items has no trending candidates: no count to read)
    let version = if wanted.is_empty() {
        None
    } else {
        super::items::committed_version(item_source)
    };
    let mut rows = match version {
        Some(v) => embedding_cache::get(item_source, v, &wanted),
        None => Vec::new(),
    };
    let known: HashSet<&str> = fetched.iter().chain(&rows).map(|r| r.0.as_str()).collect();
    let (recurring_missing, waiting): (Vec<String>, Vec<String>) = keys
        .iter()
        .filter(|k| !known.contains(k.as_str()))
        .cloned()
        .partition(|k| recurring.contains(k.as_str()));
    let read = embeddings(item_source, recurring_missing);
    if let Some(v) = version {
        embedding_cache::keep(item_source, v, &read.iter().collect::<Vec<_>>());
    }
    rows.extend(read);
    rows.extend(fetched);
    let mut rows: Vec<(String, Option<Vec<f32>>, f64)> =
        rows.into_iter().map(|(k, v, t)| (k, Some(v), t)).collect();
    rows.extend(waiting.into_iter().map(|k| (k, None, f64::INFINITY)));
    rows.sort_by(|a, b| a.0.cmp(&b.0));
    rows.dedup_by(|a, b| a.0 == b.0);
    let unread = rows
        .iter()
        .enumerate()
        .filter(|(_, r)| r.1.is_none())
        .map(|(i, _)| i)
        .collect();
    (build(pg_sys::InvalidOid, -1, rows), unread)
}

/// The embeddings of `keys` that exist, with their creation times.
pub(crate) fn embeddings(item_source: i32, keys: Vec<String>) -> Vec<(String, Vec<f32>, f64)> {
    if keys.is_empty() {
        return Vec::new();
    }
    crate::spi::read_cached_prefetching(
        "SELECT item_key, embedding, extract(epoch FROM created_at)::float8 FROM interest.item_embeddings \
         WHERE source_id = $1 AND item_key = ANY ($2::text[])",
        &[item_source.into(), keys.into()],
        rows_of,
    )
}

impl Catalog {
    /// Sets item `i`'s embedding (made unit length) and creation time.
    pub(crate) fn fill(&mut self, i: usize, mut vector: Vec<f32>, created: f64) {
        interest_core::kernels::normalize_in_place(&mut vector);
        self.vectors[i] = Some(vector);
        self.created[i] = created;
    }
}

/// Up to `n` items nearest `vector` (cosine) through the source's vector
/// index, with their embeddings (the index scan reads the rows anyway).
pub(crate) fn nearest(item_source: i32, vector: &[f32], n: usize) -> Vec<(String, Vec<f32>, f64)> {
    // recommend() scores its candidates exactly: the index's own exact
    // rerank would be work done twice. The read stops at `n` rows, each a
    // heap page.
    crate::ivf::with_estimates_only(|| {
        read_cached_first(
            &nearest_sql(item_source, n),
            &[Embedding::new(vector.to_vec()).into()],
            n,
            rows_of,
        )
    })
}

/// `nearest`'s statement. The source id and the limit are part of it: the
/// planner matches the partial index's predicate only against a constant,
/// and prefers the index only when it knows how few rows are wanted.
/// Limits go up in steps of 20, so few statements are prepared and kept.
fn nearest_sql(item_source: i32, n: usize) -> String {
    let limit = n.div_ceil(20) * 20;
    format!(
        "SELECT item_key, embedding, extract(epoch FROM created_at)::float8 FROM interest.item_embeddings \
         WHERE source_id = {item_source} ORDER BY embedding OPERATOR(interest.<=>) $1 LIMIT {limit}"
    )
}

/// The keys of up to `n` items nearest `vector` (cosine) from the index's
/// own pages, no row read (`ivf::keys`): the items `nearest` gives when it
/// is planned through that index (a small catalog is read whole, exactly,
/// as before). None when it is not, or when the index does not carry keys
/// (one built by an older release: index_items rebuilds it).
pub(crate) fn nearest_keys(
    item_source: i32,
    index: pg_sys::Oid,
    vector: &[f32],
    n: usize,
) -> Option<Vec<String>> {
    let query = [Embedding::new(vector.to_vec()).into()];
    if !crate::plan_shape::scans_index(&nearest_sql(item_source, n), &query, index) {
        return None;
    }
    crate::ivf::keys::nearest_keys(index, vector, n)
}

fn rows_of(
    t: pgrx::spi::SpiTupleTable<'_>,
) -> Result<Vec<(String, Vec<f32>, f64)>, pgrx::spi::Error> {
    t.map(|r| {
        Ok((
            r.get::<String>(1)?.unwrap_or_default(),
            r.get::<Embedding>(2)?
                .map(Embedding::into_vec)
                .unwrap_or_default(),
            r.get::<f64>(3)?.unwrap_or(f64::INFINITY),
        ))
    })
    .collect()
}

fn build(ext: pg_sys::Oid, version: i64, rows: Vec<(String, Option<Vec<f32>>, f64)>) -> Catalog {
    let mut c = Catalog {
        ext,
        version,
        keys: Vec::with_capacity(rows.len()),
        index: HashMap::with_capacity(rows.len()),
        vectors: Vec::with_capacity(rows.len()),
        created: Vec::with_capacity(rows.len()),
    };
    for (k, mut v, t) in rows {
        if let Some(v) = &mut v {
            interest_core::kernels::normalize_in_place(v);
        }
        c.index.insert(k.clone(), c.keys.len());
        c.keys.push(k);
        c.vectors.push(v);
        c.created.push(t);
    }
    c
}

thread_local! {
    static CATALOGS: RefCell<HashMap<i32, Rc<Catalog>>> = RefCell::new(HashMap::new());
}

pub(crate) fn cached(item_source: i32) -> Rc<Catalog> {
    let Some(version) = super::items::committed_version(item_source) else {
        return Rc::new(uncached(item_source));
    };
    let ext = extension_oid();
    if let Some(c) = CATALOGS.with(|c| c.borrow().get(&item_source).cloned()) {
        if c.ext == ext && c.version == version {
            return c;
        }
    }
    let c = Rc::new(read_whole(ext, version, item_source));
    CATALOGS.with(|m| m.borrow_mut().insert(item_source, c.clone()));
    c
}

/// Every embedded item of the items table, read for one call and not kept
/// (evaluate(): one read per call, and no copy left in a pooled connection).
pub(crate) fn uncached(item_source: i32) -> Catalog {
    read_whole(pg_sys::InvalidOid, -1, item_source)
}

fn read_whole(ext: pg_sys::Oid, version: i64, item_source: i32) -> Catalog {
    let rows: Vec<(String, Vec<f32>, f64)> = read_cached(
        "SELECT item_key, embedding, extract(epoch FROM created_at)::float8 FROM interest.item_embeddings \
         WHERE source_id = $1 ORDER BY item_key",
        &[item_source.into()],
        rows_of,
    );
    let rows = rows.into_iter().map(|(k, v, t)| (k, Some(v), t)).collect();
    build(ext, version, rows)
}

/// Each catalog this backend holds: its items source, how many embeddings
/// and about how many bytes (vectors and keys).
pub(crate) fn cached_sizes() -> Vec<(i32, i64, i64)> {
    CATALOGS.with(|m| {
        let mut sizes: Vec<(i32, i64, i64)> = m
            .borrow()
            .iter()
            .map(|(&source, c)| {
                let vectors: usize = c.vectors.iter().flatten().map(|v| v.len() * 4).sum();
                let keys: usize = c.keys.iter().map(|k| k.len()).sum();
                (source, c.keys.len() as i64, (vectors + keys) as i64)
            })
            .collect();
        sizes.sort();
        sizes
    })
}
