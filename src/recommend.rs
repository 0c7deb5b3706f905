//! recommend(), explain(), similar_items() and evaluate(): the read side.
//! Loads what the ranker needs (catalog, counts, the user's state and recent
//! items) and hands it to `interest_core::ranking` / `evaluation`, the same
//! code for live lists and offline evaluation.

use crate::covisit as store;
use crate::errors::raise;
use crate::interests::{self, run_cached, spi_error, EventSource};
use interest_core::covisit::{covisit_scores, CovisitContribution};
use interest_core::evaluation::{self, EvalConfig, EvalEvent};
use interest_core::ranking::{self, Catalog, RankWeights, Scored, UserSignals};
use pgrx::prelude::*;
use pgrx::PgSqlErrorCode;
use std::collections::{HashMap, HashSet};
use std::rc::Rc;

/// Freshness halves every week after an item first appears.
const FRESHNESS_HALF_LIFE_SECS: f64 = 7.0 * 86_400.0;
const MAX_K: i32 = 10_000;

/// An items table's embeddings, cached per backend until its version moves.
struct CachedCatalog {
    ext: pg_sys::Oid,
    version: i64,
    keys: Vec<String>,
    index: HashMap<String, usize>,
    vectors: Vec<Option<Vec<f32>>>,
    created: Vec<f64>,
}

thread_local! {
    static CATALOGS: std::cell::RefCell<HashMap<i32, Rc<CachedCatalog>>> = std::cell::RefCell::new(HashMap::new());
}

fn cached_catalog(item_source: i32) -> Rc<CachedCatalog> {
    let ext = interests::extension_oid();
    let version: i64 = run_cached(
        "SELECT version FROM interest.item_sources WHERE id = $1",
        &[item_source.into()],
        |t| {
            Ok(t.into_iter()
                .next()
                .and_then(|r| r.get::<i64>(1).ok().flatten())
                .unwrap_or(-1))
        },
    );
    if let Some(c) = CATALOGS.with(|c| c.borrow().get(&item_source).cloned()) {
        if c.ext == ext && c.version == version {
            return c;
        }
    }
    let rows: Vec<(String, Vec<f32>, f64)> = run_cached(
        "SELECT item_key, embedding, extract(epoch FROM created_at)::float8 FROM interest.item_embeddings \
         WHERE source_id = $1 ORDER BY item_key",
        &[item_source.into()],
        |t| {
            t.map(|r| {
                Ok((
                    r.get::<String>(1)?.unwrap(),
                    r.get::<crate::embedding_type::Embedding>(2)?.unwrap().into_vec(),
                    r.get::<f64>(3)?.unwrap(),
                ))
            })
            .collect()
        },
    );
    let mut c = CachedCatalog {
        ext,
        version,
        keys: Vec::new(),
        index: HashMap::new(),
        vectors: Vec::new(),
        created: Vec::new(),
    };
    for (k, mut v, t) in rows {
        interest_core::kernels::normalize_in_place(&mut v);
        c.index.insert(k.clone(), c.keys.len());
        c.keys.push(k);
        c.vectors.push(Some(v));
        c.created.push(t);
    }
    let c = Rc::new(c);
    CATALOGS.with(|m| m.borrow_mut().insert(item_source, c.clone()));
    c
}

/// Everything the ranker needs for one events source at time `now`.
struct Context {
    catalog: Rc<CachedCatalog>,
    popularity: Vec<f64>,
    freshness: Vec<f64>,
    /// Decayed event count by catalog index.
    counts: Vec<f64>,
    now: f64,
}

impl Context {
    /// `as_of` (epoch seconds) replaces now() for replayed, historical data.
    fn load(src: &EventSource, as_of: Option<f64>) -> Context {
        let now: f64 = as_of.unwrap_or_else(|| {
            run_cached("SELECT extract(epoch FROM now())::float8", &[], |t| {
                Ok(t.into_iter()
                    .next()
                    .and_then(|r| r.get::<f64>(1).ok().flatten())
                    .unwrap_or(0.0))
            })
        });
        let p = store::params();
        let raw = store::load_all_counts(src.id);
        let catalog = match src.item_source_id {
            // With an items table, the catalog is its embedded items.
            Some(is) => cached_catalog(is),
            // Events only: every item that has events; content plays no part.
            None => {
                let mut keys: Vec<String> = raw.iter().map(|r| r.0.clone()).collect();
                keys.sort();
                let n = keys.len();
                Rc::new(CachedCatalog {
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
                })
            }
        };
        // By catalog index: decayed count at `now`, and first appearance.
        let n = catalog.keys.len();
        let mut counts = vec![0.0; n];
        let mut first_seen = catalog.created.clone();
        for (k, t_ref, c, first) in raw {
            if let Some(&i) = catalog.index.get(&k) {
                counts[i] = c * (-(now - t_ref) / p.half_life_secs).exp2();
                first_seen[i] = first_seen[i].min(first);
            }
        }
        let popularity = evaluation::popularity_scores(&counts);
        let freshness = first_seen
            .iter()
            .map(|&first| {
                evaluation::freshness_score(
                    first.is_finite().then_some(first),
                    now,
                    FRESHNESS_HALF_LIFE_SECS,
                )
            })
            .collect();
        Context {
            catalog,
            popularity,
            freshness,
            counts,
            now,
        }
    }

    fn index(&self) -> &HashMap<String, usize> {
        &self.catalog.index
    }

    fn keys(&self) -> &[String] {
        &self.catalog.keys
    }

    fn vectors(&self) -> &[Option<Vec<f32>>] {
        &self.catalog.vectors
    }

    fn catalog(&self) -> Catalog<'_> {
        Catalog {
            vectors: self.vectors(),
            popularity: &self.popularity,
            freshness: &self.freshness,
            tie_order: None,
        }
    }

    /// Co-visitation terms from `recent` (oldest first), by catalog index;
    /// each term's `via` is a position in `recent`. Keys become indices once,
    /// so scoring hashes integers, not strings.
    fn covisit(&self, src: &EventSource, recent: &[String]) -> Terms {
        let p = store::params();
        let n = self.keys().len();
        let by_key: HashMap<String, (f64, Vec<(usize, f64)>)> =
            store::load_item_stats(src.id, recent, |j| self.index().get(j).copied())
                .into_iter()
                .map(|(k, s)| {
                    let f = s.decay_to(self.now, &p);
                    let links = s
                        .links
                        .iter()
                        .filter_map(|&(j, w)| j.map(|i| (i, w * f)))
                        .collect();
                    (k, (s.count * f, links))
                })
                .collect();
        // Recent item at position q is "n + q": never confused with a candidate.
        let ids: Vec<usize> = (0..recent.len()).map(|q| n + q).collect();
        let terms = covisit_scores(
            &ids,
            |&id| by_key.get(&recent[id - n]).cloned(),
            |&j| if j < n { self.counts[j] } else { 0.0 },
            &p,
        )
        .into_iter()
        .filter(|(j, _)| *j < n)
        .map(|(j, parts)| {
            let parts = parts
                .into_iter()
                .map(|c| CovisitContribution {
                    via: c.via - n,
                    value: c.value,
                })
                .collect();
            (j, parts)
        })
        .collect();
        Terms {
            recent: recent.to_vec(),
            by_item: terms,
        }
    }
}

/// Co-visitation terms per candidate; `via` indexes `recent`.
struct Terms {
    recent: Vec<String>,
    by_item: HashMap<usize, Vec<CovisitContribution<usize>>>,
}

impl Terms {
    fn totals(&self) -> HashMap<usize, f64> {
        self.by_item
            .iter()
            .map(|(&i, parts)| (i, parts.iter().map(|c| c.value).sum()))
            .collect()
    }
}

/// The user's signals plus the per-item co-visitation terms (for reasons).
fn user_signals(src: &EventSource, ctx: &Context, user_key: &str) -> (UserSignals, Terms) {
    let view = interests::load_user(src, user_key);
    let interests = view
        .state
        .map_or_else(Vec::new, |s| s.interests_at(ctx.now, &src.params));
    let recent = view.recent;
    let terms = ctx.covisit(src, &recent);
    let covisit = terms.totals();
    (UserSignals { interests, covisit }, terms)
}

fn seen_items(src: &EventSource, user_key: &str) -> HashSet<String> {
    let sql = format!(
        "SELECT DISTINCT {} FROM {} WHERE {}",
        src.item_expr, src.relname, src.user_match
    );
    run_cached(&sql, &[user_key.into()], |t| {
        t.map(|r| r.get::<String>(1).map(|v| v.unwrap_or_default()))
            .collect()
    })
}

fn check_k(k: i32) -> usize {
    if !(1..=MAX_K).contains(&k) {
        raise(
            PgSqlErrorCode::ERRCODE_INVALID_PARAMETER_VALUE,
            format!("k must be between 1 and {MAX_K}"),
            format!("Got k = {k}."),
            "Ask for the number of items to return, for example k => 10.",
        );
    }
    k as usize
}

fn weights(
    content: f64,
    covisit: f64,
    popularity: f64,
    freshness: f64,
    diversity: f64,
    balance: f64,
) -> RankWeights {
    for (name, v) in [
        ("content", content),
        ("covisit", covisit),
        ("popularity", popularity),
        ("freshness", freshness),
    ] {
        if !v.is_finite() || v < 0.0 {
            raise(
                PgSqlErrorCode::ERRCODE_INVALID_PARAMETER_VALUE,
                format!("weight {name} must be a non-negative number"),
                format!("Got {name} => {v}."),
                "Weights are non-negative; 0 turns a signal off.",
            );
        }
    }
    for (name, v, hint) in [
        (
            "diversity",
            diversity,
            "0 ranks by score only; 0.3 is a mild push towards variety.",
        ),
        (
            "balance",
            balance,
            "0 ranks by score only; 1 gives each taste its full share of the list.",
        ),
    ] {
        if !(0.0..=1.0).contains(&v) {
            raise(
                PgSqlErrorCode::ERRCODE_INVALID_PARAMETER_VALUE,
                format!("{name} must be between 0 and 1"),
                format!("Got {name} => {v}."),
                hint,
            );
        }
    }
    RankWeights {
        content,
        covisit,
        popularity,
        freshness,
        diversity,
        balance,
    }
}

fn reason(s: &Scored, user: &UserSignals, terms: &Terms) -> String {
    let mut parts: Vec<(f64, String)> = Vec::new();
    if s.covisit > 0.0 {
        let mut via: Vec<&CovisitContribution<usize>> = terms
            .by_item
            .get(&s.item)
            .map(|v| v.iter().collect())
            .unwrap_or_default();
        via.sort_by(|a, b| b.value.total_cmp(&a.value));
        let names: Vec<&str> = via
            .iter()
            .take(3)
            .map(|c| terms.recent[c.via].as_str())
            .collect();
        parts.push((s.covisit, format!("often follows {}", names.join(", "))));
    }
    if let (true, Some(i)) = (s.content > 0.0, s.interest) {
        let share = user.interests.get(i).map_or(0.0, |x| x.1);
        parts.push((
            s.content,
            format!(
                "matches interest {} ({:.0}% of recent taste)",
                i + 1,
                share * 100.0
            ),
        ));
    }
    // Minor parts are named only when they carry a tenth of the score.
    if s.popularity > 0.1 * s.score {
        parts.push((s.popularity, "popular now".into()));
    }
    if s.freshness > 0.1 * s.score {
        parts.push((s.freshness, "new".into()));
    }
    parts.sort_by(|a, b| b.0.total_cmp(&a.0));
    parts
        .into_iter()
        .map(|p| p.1)
        .collect::<Vec<_>>()
        .join("; ")
}

#[allow(clippy::too_many_arguments)]
#[pg_extern(security_definer, stable, parallel_unsafe)]
#[search_path(pg_catalog, interest)]
fn _recommend(
    source_id: i32,
    user_key: &str,
    k: i32,
    content: f64,
    covisit: f64,
    popularity: f64,
    freshness: f64,
    diversity: f64,
    exclude_seen: bool,
    exclude: Option<Vec<Option<String>>>,
    allowed: Option<Vec<Option<String>>>,
    as_of: Option<f64>,
    balance: f64,
) -> TableIterator<
    'static,
    (
        name!(item, String),
        name!(score, f64),
        name!(reason, String),
    ),
> {
    let k = check_k(k);
    let w = weights(content, covisit, popularity, freshness, diversity, balance);
    let src = interests::load_event_source(source_id);
    interests::require_read(&src);
    let ctx = Context::load(&src, as_of);
    let (user, terms) = user_signals(&src, &ctx, user_key);
    let mut banned: HashSet<usize> = HashSet::new();
    if exclude_seen {
        banned.extend(
            seen_items(&src, user_key)
                .iter()
                .filter_map(|k| ctx.index().get(k)),
        );
    }
    banned.extend(
        exclude
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|k| ctx.index().get(&k).copied()),
    );
    let allowed: Option<HashSet<usize>> = allowed.map(|a| {
        a.into_iter()
            .flatten()
            .filter_map(|k| ctx.index().get(&k).copied())
            .collect()
    });
    let eligible =
        |i: usize| !banned.contains(&i) && allowed.as_ref().is_none_or(|a| a.contains(&i));
    let ranked = ranking::rank(&ctx.catalog(), &user, eligible, k, &w);
    let rows: Vec<(String, f64, String)> = ranked
        .iter()
        .map(|s| {
            (
                ctx.keys()[s.item].clone(),
                s.score,
                reason(s, &user, &terms),
            )
        })
        .collect();
    TableIterator::new(rows)
}

#[allow(clippy::too_many_arguments)]
#[pg_extern(security_definer, stable, parallel_unsafe)]
#[search_path(pg_catalog, interest)]
fn _explain(
    source_id: i32,
    user_key: &str,
    item_key: &str,
    content: f64,
    covisit: f64,
    popularity: f64,
    freshness: f64,
    as_of: Option<f64>,
) -> TableIterator<
    'static,
    (
        name!(component, String),
        name!(detail, String),
        name!(contribution, f64),
    ),
> {
    let w = weights(content, covisit, popularity, freshness, 0.0, 0.0);
    let src = interests::load_event_source(source_id);
    interests::require_read(&src);
    let ctx = Context::load(&src, as_of);
    let Some(&item) = ctx.index().get(item_key) else {
        unknown_item(item_key, &src)
    };
    let (user, terms) = user_signals(&src, &ctx, user_key);
    let s = ranking::score_item(&ctx.catalog(), &user, user.covisit_scale(), item, &w);
    let mut rows = Vec::new();
    // One content row per sub-interest: its share times its cosine, which add
    // up to the content part of the score.
    if let (Some(closest), Some(v)) = (s.interest, ctx.vectors()[item].as_ref()) {
        for (i, (share, cos)) in ranking::interest_cosines(&user, v).enumerate() {
            rows.push((
                "content".to_string(),
                format!(
                    "interest {} of {} (share {:.3}), cosine {:.3}{}",
                    i + 1,
                    user.interests.len(),
                    share,
                    cos,
                    if i == closest { ", the closest" } else { "" }
                ),
                w.content * share * cos,
            ));
        }
    }
    let scale = user.covisit_scale();
    for c in terms.by_item.get(&item).into_iter().flatten() {
        rows.push((
            "co-visitation".to_string(),
            format!("after the user's recent item {}", terms.recent[c.via]),
            w.covisit * c.value * scale,
        ));
    }
    rows.push((
        "popularity".to_string(),
        format!("{:.2} decayed events", ctx.counts[item]),
        s.popularity,
    ));
    rows.push((
        "freshness".to_string(),
        format!("freshness {:.3}", ctx.freshness[item]),
        s.freshness,
    ));
    TableIterator::new(rows)
}

fn unknown_item(item_key: &str, src: &EventSource) -> ! {
    raise(
        PgSqlErrorCode::ERRCODE_UNDEFINED_OBJECT,
        format!("item {item_key} is not in the catalog of {}", src.relname),
        "The catalog is the attached items table's embedded items (or, without one, the items that have events).",
        "Check the key, or wait for the item's embedding (see interest.item_status).",
    )
}

#[pg_extern(security_definer, stable, parallel_unsafe)]
#[search_path(pg_catalog, interest)]
fn _similar_items(
    source_id: i32,
    item_key: &str,
    k: i32,
    content: f64,
    covisit: f64,
    as_of: Option<f64>,
) -> TableIterator<'static, (name!(item, String), name!(score, f64))> {
    let k = check_k(k);
    let w = weights(content, covisit, 0.0, 0.0, 0.0, 0.0);
    let src = interests::load_event_source(source_id);
    interests::require_read(&src);
    let ctx = Context::load(&src, as_of);
    let Some(&item) = ctx.index().get(item_key) else {
        unknown_item(item_key, &src)
    };
    // The item itself plays the user: its direction and its links.
    let terms = ctx.covisit(&src, &[item_key.to_string()]);
    let user = UserSignals {
        interests: ctx.vectors()[item]
            .clone()
            .map(|v| vec![(v, 1.0)])
            .unwrap_or_default(),
        covisit: terms.totals(),
    };
    let ranked = ranking::rank(&ctx.catalog(), &user, |i| i != item, k, &w);
    TableIterator::new(
        ranked
            .into_iter()
            .map(|s| (ctx.keys()[s.item].clone(), s.score))
            .collect::<Vec<_>>(),
    )
}

#[allow(clippy::too_many_arguments)]
#[pg_extern(security_definer, volatile, parallel_unsafe)]
#[search_path(pg_catalog, interest)]
fn _evaluate(
    source_id: i32,
    k: i32,
    holdout: i32,
    content: f64,
    covisit: f64,
    popularity: f64,
    freshness: f64,
    diversity: f64,
    ablations: bool,
    balance: f64,
    new_items: f64,
) -> TableIterator<
    'static,
    (
        name!(method, String),
        name!(users, i64),
        name!(hit_rate, f64),
        name!(ndcg, f64),
        name!(coverage, f64),
        name!(diversity, f64),
    ),
> {
    let k = check_k(k);
    if !(1..=10).contains(&holdout) {
        raise(
            PgSqlErrorCode::ERRCODE_INVALID_PARAMETER_VALUE,
            "holdout must be between 1 and 10",
            format!("Got holdout => {holdout}."),
            "1 tests on each user's last event; 2 validates on the second-to-last (the last is never seen).",
        );
    }
    if !(0.0..1.0).contains(&new_items) {
        raise(
            PgSqlErrorCode::ERRCODE_INVALID_PARAMETER_VALUE,
            "new_items must be at least 0 and less than 1",
            format!("Got new_items => {new_items}."),
            "It is the share of the items made new for the new-item protocol, for example 0.1; 0 skips it.",
        );
    }
    let w = weights(content, covisit, popularity, freshness, diversity, balance);
    let src = interests::load_event_source(source_id);
    interests::require_read(&src);
    // Catalog: the embedded items, plus items that only have events.
    let (mut keys, mut vectors): (Vec<String>, Vec<Option<Vec<f32>>>) = match src.item_source_id {
        Some(is) => {
            let c = cached_catalog(is);
            (c.keys.clone(), c.vectors.clone())
        }
        None => (Vec::new(), Vec::new()),
    };
    let mut index: HashMap<String, usize> = keys
        .iter()
        .enumerate()
        .map(|(i, k)| (k.clone(), i))
        .collect();
    // Each user's events in time order; ties keep table order (ctid).
    let sql = format!(
        "SELECT {} FROM {} ORDER BY 1, 3, ctid",
        src.select_list, src.relname
    );
    let mut users: Vec<Vec<EvalEvent>> = Vec::new();
    let mut last_user: Option<String> = None;
    Spi::connect(|c| {
        for r in c.select(&sql, None, &[])? {
            let (Some(u), Some(item), Some(t)) =
                (r.get::<String>(1)?, r.get::<String>(2)?, r.get::<f64>(3)?)
            else {
                continue;
            };
            let weight = r.get::<f64>(4)?.unwrap_or(1.0);
            let i = *index.entry(item.clone()).or_insert_with(|| {
                keys.push(item);
                vectors.push(None);
                keys.len() - 1
            });
            if last_user.as_deref() != Some(u.as_str()) {
                users.push(Vec::new());
                last_user = Some(u);
            }
            users
                .last_mut()
                .unwrap()
                .push(EvalEvent { item: i, t, weight });
        }
        Ok::<_, pgrx::spi::Error>(())
    })
    .unwrap_or_else(|e| spi_error(e));
    let cfg = EvalConfig {
        k,
        holdout: holdout as usize,
        weights: w,
        interest: src.params,
        covisit: store::params(),
        freshness_half_life_secs: FRESHNESS_HALF_LIFE_SECS,
        ablations,
    };
    let new_items = evaluation::NewItems::from_keys(keys.iter().map(|k| k.as_str()), new_items);
    let rows: Vec<_> = evaluation::evaluate(&users, &vectors, &new_items, &cfg)
        .into_iter()
        .map(|(m, r)| {
            (
                m,
                r.users as i64,
                r.hit_rate,
                r.ndcg,
                r.coverage,
                r.diversity,
            )
        })
        .collect();
    TableIterator::new(rows)
}
