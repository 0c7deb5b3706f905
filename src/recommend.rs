//! recommend(), explain() and similar_items(): loads what the ranker needs
//! (catalog, counts, the user's state and recent items) and hands it to
//! `interest_core::ranking`, the code offline evaluation runs too.

use crate::errors::{raise, required};
use crate::gucs;
use crate::privileges::with_extension_rights;
use crate::read::{load_user, UserView};
use crate::sources::{readable_event_source, EventSource};
use crate::spi::one_read_cached;
use crate::store::catalog::{self, Catalog};
use crate::store::covisit as store;
use crate::store::items::{self, VectorIndex};
use crate::store::trending::{self, Trending};
use interest_core::candidates::{self, CandidateLimits};
use interest_core::clock::ranking_clock;
use interest_core::covisit::{covisit_scores, link_strengths, CovisitContribution, ItemStats};
use interest_core::covisit_context::{self, catalog_covisit_scores, RecentStats};
use interest_core::ranking::{self, RankWeights, Scored, UserSignals};
use interest_core::signals::{catalog_signals, freshness_since, FRESHNESS_HALF_LIFE_SECS};
use interest_core::unread_vectors;
use interest_core::weights::{WeightError, WeightOverrides};
use pgrx::prelude::*;
use pgrx::PgSqlErrorCode;
use std::collections::{HashMap, HashSet};
use std::rc::Rc;

pub(crate) const MAX_K: i32 = 10_000;

/// Everything the ranker needs for one events source at time `now`.
struct Context {
    catalog: Rc<Catalog>,
    popularity: Vec<f64>,
    freshness: Vec<f64>,
    /// Event count by catalog index (co-visitation's normalisation).
    counts: Vec<f64>,
    /// Recent (decayed) event count by catalog index (popularity).
    recent: Vec<f64>,
    /// The stats and links of the recent items when the call has read them
    /// already (`Seed`; None: `covisit` reads them).
    recent_links: Option<Rc<RecentLinks>>,
    /// The co-visitation score to divide by, fixed for the user on the
    /// candidate path (`Seed::covisit_max`); None: the largest scored.
    covisit_max: Option<f64>,
    /// First event by catalog index (infinite when unknown).
    first_seen: Vec<f64>,
    /// Candidates whose embedding is not read yet (`Context::read_vectors`),
    /// and the items source they are read from. Their freshness is an
    /// upper bound until then: their creation time is unknown.
    unread: Vec<usize>,
    /// Candidates read and found without an embedding (not in the catalog).
    absent: HashSet<usize>,
    item_source: Option<i32>,
    now: f64,
}

type RecentLinks = Vec<(String, ItemStats<String>)>;

impl Context {
    /// `as_of` (epoch seconds) replaces now() for replayed, historical data;
    /// either way the clock stops at the source's last event (`ranking_clock`).
    fn load(src: &EventSource, as_of: Option<f64>) -> Context {
        let stats = store::load_all_counts(src.id);
        let last_event = stats
            .iter()
            .map(|(_, s)| s.last_seen)
            .max_by(f64::total_cmp);
        let now = clock(as_of, last_event);
        let peak = stats
            .iter()
            .map(|(_, s)| s.recent_at(now, &src.covisit))
            .max_by(f64::total_cmp);
        let catalog = match src.item_source_id {
            // With an items table, the catalog is its embedded items.
            Some(item_source) => catalog::cached(item_source),
            // Events only: every item that has events; content plays no part.
            None => Rc::new(Catalog::of_keys(
                stats.iter().map(|s| s.0.clone()).collect(),
            )),
        };
        Context::assemble(src, catalog, stats, now, peak)
    }

    /// The context of the keys `gather` returns, given a lookup of nearest
    /// neighbours in the source's vector `index`, for `seed`. Most
    /// neighbours cannot place once the first reads raise the ranking's
    /// threshold, so the index gives their keys alone and their rows wait
    /// with the other unread candidates; an index without keys (or a
    /// catalog read whole) gives rows, whose vectors are not read again.
    fn of_candidates(
        src: &EventSource,
        item_source: i32,
        index: pg_sys::Oid,
        seed: &Seed,
        popular: Vec<(String, ItemStats<String>)>,
        gather: impl FnOnce(&mut dyn FnMut(&[f32], usize) -> Vec<String>) -> Vec<String>,
    ) -> Context {
        let mut fetched = Vec::new();
        // Each neighbour's place among a taste's nearest (its best): of two
        // unread candidates with equal bounds, the nearer is read first.
        let mut nearness: HashMap<String, usize> = HashMap::new();
        let mut keys = gather(&mut |v, n| {
            if let Some(keys) = catalog::nearest_keys(item_source, index, v, n) {
                for (place, key) in keys.iter().enumerate() {
                    let best = nearness.entry(key.clone()).or_insert(place);
                    *best = (*best).min(place);
                }
                return keys;
            }
            let rows = catalog::nearest(item_source, v, n);
            let keys = rows.iter().map(|r| r.0.clone()).collect();
            fetched.extend(rows);
            keys
        });
        keys.sort();
        keys.dedup();
        let recurring: HashSet<&str> = popular.iter().map(|(k, _)| k.as_str()).collect();
        let (catalog, waiting) = catalog::of_candidates(item_source, &keys, fetched, &recurring);
        let catalog = Rc::new(catalog);
        // The counts read already: the trending rows and the user's
        // strongest links (whose read wins for an item in both).
        let held: HashMap<&str, &ItemStats<String>> = popular
            .iter()
            .chain(&seed.base_stats)
            .map(|(k, s)| (k.as_str(), s))
            .collect();
        let unread: Vec<String> = catalog
            .keys
            .iter()
            .filter(|k| !held.contains_key(k.as_str()))
            .cloned()
            .collect();
        let mut stats = store::load_counts(src.id, &unread);
        // (assemble skips the held items that are not candidates)
        stats.extend(held.iter().map(|(k, s)| (k.to_string(), (*s).clone())));
        let mut ctx = Context {
            recent_links: Some(seed.recent_links.clone()),
            covisit_max: Some(seed.covisit_max),
            item_source: Some(item_source),
            ..Context::assemble(src, catalog, stats, seed.now, seed.popularity_peak)
        };
        for &i in &waiting {
            // Created at most when first seen, or at any time: at most fresh.
            if !ctx.first_seen[i].is_finite() {
                ctx.freshness[i] = 1.0;
            }
        }
        let mut waiting = waiting;
        waiting.sort_by_key(|&i| nearness.get(&ctx.keys()[i]).copied().unwrap_or(usize::MAX));
        ctx.unread = waiting;
        ctx
    }

    /// Reads the embeddings of the unread candidates `wanted`; an item
    /// without one is `absent` (it is not in the catalog).
    fn read_vectors(&mut self, wanted: &[usize]) {
        let unread: HashSet<usize> = self.unread.iter().copied().collect();
        let asked: HashSet<usize> = wanted
            .iter()
            .copied()
            .filter(|i| unread.contains(i))
            .collect();
        let keys: Vec<String> = asked.iter().map(|&i| self.keys()[i].clone()).collect();
        let (Some(item_source), false) = (self.item_source, keys.is_empty()) else {
            return;
        };
        let rows = catalog::embeddings(item_source, keys);
        let catalog =
            Rc::get_mut(&mut self.catalog).expect("a candidates catalog is the call's own");
        let mut read = HashSet::new();
        for (key, vector, created) in rows {
            let Some(&i) = catalog.index.get(&key) else {
                continue;
            };
            catalog.fill(i, vector, created);
            self.first_seen[i] = self.first_seen[i].min(created);
            self.freshness[i] =
                freshness_since(self.first_seen[i], self.now, FRESHNESS_HALF_LIFE_SECS);
            read.insert(i);
        }
        self.absent.extend(asked.difference(&read));
        self.unread.retain(|i| !asked.contains(i));
    }

    /// The catalog's signals at `now`, popularity scaled to `popularity_peak`
    /// (the source's most popular item; None: the catalog's).
    fn assemble(
        src: &EventSource,
        catalog: Rc<Catalog>,
        stats: Vec<(String, ItemStats<String>)>,
        now: f64,
        popularity_peak: Option<f64>,
    ) -> Context {
        let p = src.covisit;
        let n = catalog.keys.len();
        let mut counts = vec![0.0; n];
        let mut recent = vec![0.0; n];
        let mut first_seen = catalog.created.clone();
        for (k, s) in stats {
            if let Some(&i) = catalog.index.get(&k) {
                counts[i] = s.count_at(now, &p);
                recent[i] = s.recent_at(now, &p);
                first_seen[i] = first_seen[i].min(s.first_seen);
            }
        }
        let (popularity, freshness) = catalog_signals(
            &recent,
            popularity_peak,
            &first_seen,
            now,
            FRESHNESS_HALF_LIFE_SECS,
        );
        Context {
            catalog,
            popularity,
            freshness,
            counts,
            recent,
            recent_links: None,
            covisit_max: None,
            first_seen,
            unread: Vec::new(),
            absent: HashSet::new(),
            item_source: None,
            now,
        }
    }

    /// How many candidates the context holds, less those read and found
    /// without an embedding: what a widening round compares.
    fn candidates(&self) -> usize {
        self.keys().len() - self.absent.len()
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

    fn ranking_catalog(&self) -> ranking::Catalog<'_> {
        ranking::Catalog {
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
        let p = src.covisit;
        let read;
        let stats = match &self.recent_links {
            Some(stats) => stats,
            None => {
                read = store::load_item_stats(src.id, recent, |j| j.to_string());
                &read
            }
        };
        let by_key: HashMap<&str, RecentStats> = stats
            .iter()
            .map(|(k, s)| {
                let links = s
                    .links_at(self.now, &p)
                    .filter_map(|(j, w)| self.index().get(j).map(|&i| (i, w)))
                    .collect();
                (k.as_str(), (s.count_at(self.now, &p), links))
            })
            .collect();
        let recent_stats: Vec<Option<RecentStats>> = recent
            .iter()
            .map(|k| by_key.get(k.as_str()).cloned())
            .collect();
        let by_item = catalog_covisit_scores(&recent_stats, &self.counts, &p);
        Terms {
            recent: recent.to_vec(),
            by_item,
        }
    }

    /// The user's signals from their interests and co-visitation terms,
    /// scaled as the context says.
    fn signals(&self, interests: Vec<(Vec<f32>, f64)>, terms: &Terms) -> UserSignals {
        UserSignals {
            interests,
            covisit: terms.totals(),
            covisit_max: self.covisit_max,
        }
    }
}

/// What a call on the candidate path reads once about whom it ranks for (a
/// user, or the item similar_items() starts from), whatever its candidate
/// limits: each widening round gathers its candidates from it.
struct Seed {
    now: f64,
    interests: Vec<(Vec<f32>, f64)>,
    /// Most recent last.
    recent: Vec<String>,
    recent_links: Rc<RecentLinks>,
    /// Each item the recent items lead to, by strength (`link_strengths`).
    linked: HashMap<String, f64>,
    /// The largest co-visitation score among the `COVISIT_SCALE_BASE`
    /// strongest linked items: one scale for every call of the user.
    covisit_max: f64,
    /// The counts of those strongest linked items, read for the scale;
    /// candidates among them are not read again.
    base_stats: Vec<(String, ItemStats<String>)>,
    /// The top of the trend order with its counts; None: no trending
    /// candidates (similar_items).
    trending: Option<Trending>,
    /// The source's largest recent count at `now`: popularity's one scale,
    /// whichever items a round or the fallback scores (None for similar_items).
    popularity_peak: Option<f64>,
}

impl Seed {
    /// The user's seed: their interests now and their recent items.
    fn of_user(src: &EventSource, as_of: Option<f64>, user_key: &str) -> Seed {
        let trending = Trending::read(src, candidates::DEFAULT_LIMITS.trending);
        let now = clock(as_of, trending::last_event(src));
        let view = load_user(src, user_key);
        let interests = interests_of(src, &view, now);
        Seed::read(src, now, interests, view.recent, Some(trending))
    }

    /// The seed of similar_items(item_key): its direction and its links.
    /// None when the item has no embedding.
    fn of_item(
        src: &EventSource,
        item_source: i32,
        as_of: Option<f64>,
        item_key: &str,
    ) -> Option<Seed> {
        let key = item_key.to_string();
        let vector = items::vectors(item_source, std::slice::from_ref(&key)).remove(&key)?;
        let now = clock(as_of, trending::last_event(src));
        Some(Seed::read(src, now, vec![(vector, 1.0)], vec![key], None))
    }

    fn read(
        src: &EventSource,
        now: f64,
        interests: Vec<(Vec<f32>, f64)>,
        recent: Vec<String>,
        trending: Option<Trending>,
    ) -> Seed {
        let p = src.covisit;
        let recent_links = store::load_item_stats(src.id, &recent, |j| j.to_string());
        let by_key: HashMap<&str, &ItemStats<String>> =
            recent_links.iter().map(|(k, s)| (k.as_str(), s)).collect();
        let stats_of = |k: &String| {
            by_key.get(k.as_str()).map(|s| {
                let links = s.links_at(now, &p).map(|(j, w)| (j.clone(), w)).collect();
                (s.count_at(now, &p), links)
            })
        };
        let linked = link_strengths(&recent, stats_of, &p);
        let base = candidates::strongest(&linked, candidates::COVISIT_SCALE_BASE);
        let base_stats = store::load_counts(src.id, &base);
        let base_counts: HashMap<&str, f64> = base_stats
            .iter()
            .map(|(k, s)| (k.as_str(), s.count_at(now, &p)))
            .collect();
        let scores = covisit_context::totals(&covisit_scores(
            &recent,
            stats_of,
            |j| base_counts.get(j.as_str()).copied().unwrap_or(0.0),
            &p,
        ));
        let covisit_max = candidates::covisit_max(&scores, &base);
        Seed {
            // (similar_items weighs no popularity: no read for it)
            popularity_peak: trending
                .as_ref()
                .and_then(|t| t.peak_recent_count(src, now)),
            now,
            interests,
            recent,
            recent_links: Rc::new(recent_links),
            linked,
            covisit_max,
            base_stats,
            trending,
        }
    }

    /// Every item of the catalog, for a call whose candidates fell short:
    /// on the seed's clock and co-visitation scale, so that explain() (from
    /// candidates) adds up to the scores such a call returns. Read for the
    /// call only: a source with an index leaves no catalog in the backend.
    fn every_item(&self, src: &EventSource, item_source: i32) -> Context {
        Context {
            recent_links: Some(self.recent_links.clone()),
            covisit_max: Some(self.covisit_max),
            ..Context::assemble(
                src,
                Rc::new(catalog::uncached(item_source)),
                store::load_all_counts(src.id),
                self.now,
                self.popularity_peak,
            )
        }
    }

    /// The context of the candidates under `limits` for a list of `k`,
    /// plus the `extra` keys.
    fn context(
        &self,
        src: &EventSource,
        item_source: i32,
        index: pg_sys::Oid,
        k: usize,
        extra: &[String],
        limits: CandidateLimits,
    ) -> Context {
        let popular = match &self.trending {
            Some(t) => t.most_popular(src, limits.trending),
            None => Vec::new(),
        };
        let popular_keys: Vec<String> = popular.iter().map(|(k, _)| k.clone()).collect();
        Context::of_candidates(src, item_source, index, self, popular, |nearest| {
            let mut keys = candidates::gather(
                &self.interests,
                &self.linked,
                &popular_keys,
                nearest,
                limits,
                k,
            );
            keys.extend(extra.iter().cloned());
            keys
        })
    }
}

fn interests_of(src: &EventSource, view: &UserView, now: f64) -> Vec<(Vec<f32>, f64)> {
    view.state
        .as_ref()
        .map_or_else(Vec::new, |s| s.interests_at(now, &src.params))
}

/// The items source whose vector index gives `src`'s candidates, and that
/// index, when interest.recommend_candidates is on.
fn candidate_source(src: &EventSource) -> Option<(i32, pg_sys::Oid)> {
    let item_source = src.item_source_id?;
    if !gucs::RECOMMEND_CANDIDATES.get() {
        return None;
    }
    match items::vector_index(item_source) {
        VectorIndex::Valid(index) => Some((item_source, index)),
        VectorIndex::Missing => {
            warn_missing_index(item_source);
            None
        }
        VectorIndex::None => None,
    }
}

thread_local! {
    static WARNED_MISSING: std::cell::RefCell<HashSet<i32>> = Default::default();
}

/// Once per backend and source: its vector index is gone (a restore), so
/// calls rank every item until it is rebuilt.
fn warn_missing_index(item_source: i32) {
    if !WARNED_MISSING.with(|w| w.borrow_mut().insert(item_source)) {
        return;
    }
    let relname = crate::sources::load_item_source(item_source)
        .relname
        .clone();
    crate::errors::warn(
        PgSqlErrorCode::ERRCODE_UNDEFINED_OBJECT,
        format!("the vector index of items table {relname} is missing"),
        "interest.index_items built it, but it does not exist now, as after pg_restore (a dump does not carry indexes on the extension's own tables). \
         Until it is rebuilt, recommend(), explain() and similar_items() rank every item, with the catalog in each backend's memory.",
        format!(
            "Call SELECT interest.index_items({}); the queue folder rebuilds it by itself when interest.fold_database names this database.",
            pgrx::spi::quote_literal(&relname)
        ),
    );
}

/// The ranking time (`ranking_clock`) of a call asked at now() or at its
/// `as_of` (epoch seconds), which must be a finite time.
fn clock(as_of: Option<f64>, last_event: Option<f64>) -> f64 {
    let asked = as_of.unwrap_or_else(|| {
        one_read_cached::<f64>("SELECT extract(epoch FROM now())::float8", &[]).unwrap_or(0.0)
    });
    if !asked.is_finite() {
        raise(
            PgSqlErrorCode::ERRCODE_DATETIME_FIELD_OVERFLOW,
            "as_of must be a finite time",
            format!(
                "Got as_of => '{}infinity'.",
                if asked < 0.0 { "-" } else { "" }
            ),
            "Pass a real time, or leave as_of out to rank at now().",
        );
    }
    ranking_clock(asked, last_event)
}

/// Co-visitation terms per candidate; `via` indexes `recent`.
struct Terms {
    recent: Vec<String>,
    by_item: HashMap<usize, Vec<CovisitContribution<usize>>>,
}

impl Terms {
    fn totals(&self) -> HashMap<usize, f64> {
        covisit_context::totals(&self.by_item)
    }

    /// The item's contributions as (recent item, value), for its reason.
    fn via(&self, item: usize) -> Vec<(&str, f64)> {
        self.by_item
            .get(&item)
            .into_iter()
            .flatten()
            .map(|c| (self.recent[c.via].as_str(), c.value))
            .collect()
    }
}

/// The user's signals plus the per-item co-visitation terms (for reasons).
fn user_signals(
    src: &EventSource,
    ctx: &Context,
    interests: Vec<(Vec<f32>, f64)>,
    recent: &[String],
) -> (UserSignals, Terms) {
    let terms = ctx.covisit(src, recent);
    (ctx.signals(interests, &terms), terms)
}

/// The items the user has events on, read as the table's owner (the select
/// list is theirs); none for a user the reader cannot see, as for the rest
/// of the user's state.
fn seen_items(src: &EventSource, user_key: &str) -> HashSet<String> {
    if !crate::owner_read::reader_sees_user(src, user_key) {
        return HashSet::new();
    }
    let sql = format!(
        "SELECT DISTINCT {} FROM {} WHERE {}",
        src.item_expr, src.relname, src.user_match
    );
    crate::owner_read::as_table_owner(src.relid, || {
        if !crate::owner_read::user_key_fits(src, user_key) {
            return HashSet::new();
        }
        crate::spi::read_cached_prefetching(&sql, &[user_key.into()], |t| {
            t.map(|r| r.get::<String>(1).map(|v| v.unwrap_or_default()))
                .collect()
        })
    })
}

pub(crate) fn check_k(k: i32) -> usize {
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

/// The call's weights over `defaults`, or an error naming the bad one.
pub(crate) fn weights(defaults: RankWeights, overrides: WeightOverrides) -> RankWeights {
    defaults.overridden(&overrides).unwrap_or_else(|e| match e {
        WeightError::NotNonNegative { name, value } => raise(
            PgSqlErrorCode::ERRCODE_INVALID_PARAMETER_VALUE,
            format!("weight {name} must be a non-negative number"),
            format!("Got {name} => {value}."),
            "Weights are non-negative; 0 turns a signal off.",
        ),
        WeightError::NotAFraction { name, value } => raise(
            PgSqlErrorCode::ERRCODE_INVALID_PARAMETER_VALUE,
            format!("{name} must be between 0 and 1"),
            format!("Got {name} => {value}."),
            if name == "diversity" {
                "0 ranks by score only; 0.3 is a mild push towards variety."
            } else {
                "0 ranks by score only; 1 gives each taste its full share of the list."
            },
        ),
    })
}

#[allow(clippy::too_many_arguments)]
#[pg_extern(stable, parallel_unsafe)]
#[search_path(pg_catalog, interest, pg_temp)]
fn _recommend(
    source_id: i32,
    user_key: Option<&str>,
    k: Option<i32>,
    content: Option<f64>,
    covisit: Option<f64>,
    popularity: Option<f64>,
    freshness: Option<f64>,
    diversity: Option<f64>,
    exclude_seen: Option<bool>,
    exclude: Option<Vec<Option<String>>>,
    allowed: Option<Vec<Option<String>>>,
    as_of: Option<f64>,
    balance: Option<f64>,
) -> TableIterator<
    'static,
    (
        name!(item, String),
        name!(score, f64),
        name!(reason, String),
    ),
> {
    let user_key = required(user_key, "user_key");
    let k = required(k, "k");
    let exclude_seen = required(exclude_seen, "exclude_seen");
    with_extension_rights(|| {
        let k = check_k(k);
        let src = readable_event_source(source_id);
        let w = weights(
            src.rank_weights,
            WeightOverrides {
                content,
                covisit,
                popularity,
                freshness,
                diversity,
                balance,
            },
        );
        let seen = exclude_seen.then(|| seen_items(&src, user_key));
        let rules = ListRules {
            k,
            w: &w,
            seen: seen.as_ref(),
            exclude: exclude.as_deref(),
            allowed: allowed.as_deref(),
        };
        if let Some((item_source, index)) = candidate_source(&src) {
            let seed = Seed::of_user(&src, as_of, user_key);
            // A short filter list joins the candidates whole: then nothing
            // the filter allows is left out, however few rows it gives.
            let whole = rules
                .allowed
                .filter(|a| a.len() <= candidates::MAX_FILTER_CANDIDATES);
            let extra: Vec<String> = whole.into_iter().flatten().flatten().cloned().collect();
            let attempt = |limits| {
                let mut ctx = seed.context(&src, item_source, index, k, &extra, limits);
                let rows = rank_in(&src, &mut ctx, seed.interests.clone(), &seed.recent, &rules);
                (ctx.candidates(), rows)
            };
            if whole.is_some() {
                return TableIterator::new(attempt(gucs::candidate_limits()).1);
            }
            if let Ok(rows) = widening("recommend", k, attempt) {
                return TableIterator::new(rows);
            }
            debug1!("recommend(): fewer than {k} eligible candidates; ranking every item");
            let mut ctx = seed.every_item(&src, item_source);
            return TableIterator::new(rank_in(
                &src,
                &mut ctx,
                seed.interests,
                &seed.recent,
                &rules,
            ));
        }
        let mut ctx = Context::load(&src, as_of);
        let view = load_user(&src, user_key);
        let interests = interests_of(&src, &view, ctx.now);
        TableIterator::new(rank_in(&src, &mut ctx, interests, &view.recent, &rules))
    })
}

/// Asks `attempt` for k rows under the candidate limits, widened
/// (`candidates::widened`) while it returns fewer and its candidates still
/// grow. `attempt` returns how many candidates it read and its rows. Err:
/// the last rows, fewer than k.
fn widening<T>(
    call: &str,
    k: usize,
    mut attempt: impl FnMut(CandidateLimits) -> (usize, Vec<T>),
) -> Result<Vec<T>, Vec<T>> {
    let mut read = 0;
    let mut rows = Vec::new();
    for round in 0..=candidates::WIDENING_ROUNDS {
        let (n, found) = attempt(candidates::widened(gucs::candidate_limits(), round));
        if found.len() >= k {
            return Ok(found);
        }
        debug1!(
            "{call}(): {} of {k} rows from {n} candidates (round {round})",
            found.len()
        );
        rows = found;
        if n <= read {
            break;
        }
        read = n;
    }
    Err(rows)
}

/// What a list must satisfy: its length and weights, and the items it
/// leaves out.
struct ListRules<'a> {
    k: usize,
    w: &'a RankWeights,
    /// The user's seen items, when they are excluded.
    seen: Option<&'a HashSet<String>>,
    exclude: Option<&'a [Option<String>]>,
    allowed: Option<&'a [Option<String>]>,
}

/// Ranks `ctx`'s catalog for the user, with the call's exclusions and filter
/// (and row-level security on the items table) applied first.
fn rank_in(
    src: &EventSource,
    ctx: &mut Context,
    interests: Vec<(Vec<f32>, f64)>,
    recent: &[String],
    rules: &ListRules,
) -> Vec<(String, f64, String)> {
    let (user, terms) = user_signals(src, ctx, interests, recent);
    let mut banned: HashSet<usize> = HashSet::new();
    banned.extend(
        rules
            .seen
            .into_iter()
            .flatten()
            .filter_map(|k| ctx.index().get(k)),
    );
    banned.extend(
        rules
            .exclude
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|k| ctx.index().get(k).copied()),
    );
    // The caller's filter, and row-level security on the items table.
    let allowed: Option<HashSet<usize>> = rules.allowed.map(|a| {
        a.iter()
            .flatten()
            .filter_map(|k| ctx.index().get(k).copied())
            .collect()
    });
    let visible = visible_indices(src, ctx);
    let allowed = match (allowed, visible) {
        (Some(a), Some(v)) => Some(a.intersection(&v).copied().collect()),
        (a, v) => a.or(v),
    };
    let eligible =
        |i: usize| !banned.contains(&i) && allowed.as_ref().is_none_or(|a| a.contains(&i));
    let ranked = rank_reading_vectors(ctx, &user, eligible, rules.k, rules.w);
    ranked
        .iter()
        .map(|s: &Scored| {
            let reason = interest_core::explain::reason(s, &user, &terms.via(s.item));
            (ctx.keys()[s.item].clone(), s.score, reason)
        })
        .collect()
}

#[allow(clippy::too_many_arguments)]
#[pg_extern(stable, parallel_unsafe)]
#[search_path(pg_catalog, interest, pg_temp)]
fn _explain(
    source_id: i32,
    user_key: Option<&str>,
    item_key: Option<&str>,
    content: Option<f64>,
    covisit: Option<f64>,
    popularity: Option<f64>,
    freshness: Option<f64>,
    as_of: Option<f64>,
) -> TableIterator<
    'static,
    (
        name!(component, String),
        name!(detail, String),
        name!(contribution, f64),
    ),
> {
    let user_key = required(user_key, "user_key");
    let item_key = required(item_key, "item");
    with_extension_rights(|| {
        let src = readable_event_source(source_id);
        let defaults = RankWeights {
            diversity: 0.0,
            balance: 0.0,
            ..src.rank_weights
        };
        let w = weights(
            defaults,
            WeightOverrides {
                content,
                covisit,
                popularity,
                freshness,
                ..Default::default()
            },
        );
        // With a vector index, the item alone on the user's seed: its
        // normalisers (the co-visitation scale, the popularity peak) are the
        // seed's, not the other candidates', so the score is recommend()'s.
        let (mut ctx, interests, recent) = match candidate_source(&src) {
            Some((item_source, index)) => {
                let seed = Seed::of_user(&src, as_of, user_key);
                let ctx =
                    Context::of_candidates(&src, item_source, index, &seed, Vec::new(), |_| {
                        vec![item_key.to_string()]
                    });
                (ctx, seed.interests, seed.recent)
            }
            None => {
                let ctx = Context::load(&src, as_of);
                let view = load_user(&src, user_key);
                let interests = interests_of(&src, &view, ctx.now);
                (ctx, interests, view.recent)
            }
        };
        let visible = visible_indices(&src, &ctx);
        let item = catalog_item(&src, &mut ctx, item_key, visible.as_ref());
        let (user, terms) = user_signals(&src, &ctx, interests, &recent);
        let s = ranking::score_item(
            &ctx.ranking_catalog(),
            &user,
            user.covisit_scale(),
            item,
            &w,
        );
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
        let factor = user.covisit_factor(item, user.covisit_scale());
        for c in terms.by_item.get(&item).into_iter().flatten() {
            rows.push((
                "co-visitation".to_string(),
                format!("after the user's recent item {}", terms.recent[c.via]),
                w.covisit * c.value * factor,
            ));
        }
        rows.push((
            "popularity".to_string(),
            format!(
                "{:.0} events, {:.2} recent",
                ctx.counts[item], ctx.recent[item]
            ),
            s.popularity,
        ));
        rows.push((
            "freshness".to_string(),
            format!("freshness {:.3}", ctx.freshness[item]),
            s.freshness,
        ));
        TableIterator::new(rows)
    })
}

/// Unread candidates that may place are read in up to this many rounds,
/// the `READ_ROUND` most promising at a time (the last round reads all that
/// are left): each round's scores raise the thresholds the next must reach.
const READ_ROUNDS: usize = 8;
const READ_ROUND: usize = 8;

/// `ranking::rank` over `ctx`, reading first the embeddings of the unread
/// candidates that may place (`unread_vectors::may_place`); those that
/// cannot are left out, which leaves the list as it would be with them.
fn rank_reading_vectors(
    ctx: &mut Context,
    user: &UserSignals,
    eligible: impl Fn(usize) -> bool,
    k: usize,
    w: &RankWeights,
) -> Vec<Scored> {
    if !ctx.unread.is_empty() {
        for round in 1..=READ_ROUNDS {
            let present = |i: usize| !ctx.absent.contains(&i) && eligible(i);
            let wanted =
                unread_vectors::may_place(&ctx.ranking_catalog(), user, present, &ctx.unread, k, w);
            // Short of k items at hand the threshold cannot rise yet: read
            // at least enough to fill the list.
            let at_hand = ctx.keys().len() - ctx.unread.len() - ctx.absent.len();
            let read = if round < READ_ROUNDS {
                wanted.len().min(READ_ROUND.max(k.saturating_sub(at_hand)))
            } else {
                wanted.len()
            };
            debug2!(
                "round {round}: {at_hand} of {} candidates' embeddings at hand, {} of the {} unread may place, {read} read",
                ctx.keys().len(),
                wanted.len(),
                ctx.unread.len()
            );
            ctx.read_vectors(&wanted[..read]);
            if read == wanted.len() {
                break;
            }
        }
    }
    let left_out: HashSet<usize> = ctx.unread.iter().chain(&ctx.absent).copied().collect();
    ranking::rank(
        &ctx.ranking_catalog(),
        user,
        |i| !left_out.contains(&i) && eligible(i),
        k,
        w,
    )
}

/// The catalog positions of the items row-level security lets the caller
/// see; None when it hides none.
fn visible_indices(src: &EventSource, ctx: &Context) -> Option<HashSet<usize>> {
    crate::owner_read::items_visible_to_caller(src, ctx.keys()).map(|keys| {
        keys.iter()
            .filter_map(|k| ctx.index().get(k).copied())
            .collect()
    })
}

/// The catalog position of `item_key` with its embedding read, or the
/// error for an item that is not in the catalog or not `visible`.
fn catalog_item(
    src: &EventSource,
    ctx: &mut Context,
    item_key: &str,
    visible: Option<&HashSet<usize>>,
) -> usize {
    let Some(&item) = ctx.index().get(item_key) else {
        unknown_item(item_key, src)
    };
    ctx.read_vectors(&[item]);
    if ctx.absent.contains(&item) || visible.is_some_and(|v| !v.contains(&item)) {
        unknown_item(item_key, src)
    }
    item
}

fn unknown_item(item_key: &str, src: &EventSource) -> ! {
    raise(
        PgSqlErrorCode::ERRCODE_UNDEFINED_OBJECT,
        format!("item {item_key} is not in the catalog of {}", src.relname),
        "The catalog is the attached items table's embedded items (or, without one, the items that have events).",
        "Check the key, or wait for the item's embedding (see interest.item_status).",
    )
}

#[pg_extern(stable, parallel_unsafe)]
#[search_path(pg_catalog, interest, pg_temp)]
fn _similar_items(
    source_id: i32,
    item_key: Option<&str>,
    k: Option<i32>,
    content: Option<f64>,
    covisit: Option<f64>,
    as_of: Option<f64>,
) -> TableIterator<'static, (name!(item, String), name!(score, f64))> {
    let item_key = required(item_key, "item");
    let k = required(k, "k");
    with_extension_rights(|| {
        let k = check_k(k);
        let w = weights(
            RankWeights::similar_items(),
            WeightOverrides {
                content,
                covisit,
                ..Default::default()
            },
        );
        let src = readable_event_source(source_id);
        if let Some((item_source, index)) = candidate_source(&src) {
            let Some(seed) = Seed::of_item(&src, item_source, as_of, item_key) else {
                unknown_item(item_key, &src)
            };
            let extra = [item_key.to_string()];
            let found = widening("similar_items", k, |limits| {
                let mut ctx = seed.context(&src, item_source, index, k, &extra, limits);
                let rows = similar_in(&src, &mut ctx, item_key, k, &w);
                (ctx.candidates(), rows)
            });
            if let Ok(rows) = found {
                return TableIterator::new(rows);
            }
            debug1!("similar_items(): fewer than {k} eligible candidates; ranking every item");
            let mut ctx = seed.every_item(&src, item_source);
            return TableIterator::new(similar_in(&src, &mut ctx, item_key, k, &w));
        }
        let mut ctx = Context::load(&src, as_of);
        TableIterator::new(similar_in(&src, &mut ctx, item_key, k, &w))
    })
}

/// The `k` items of `ctx` most like `item_key` (which plays the user: its
/// direction and its links).
fn similar_in(
    src: &EventSource,
    ctx: &mut Context,
    item_key: &str,
    k: usize,
    w: &RankWeights,
) -> Vec<(String, f64)> {
    let visible = visible_indices(src, ctx);
    let item = catalog_item(src, ctx, item_key, visible.as_ref());
    let terms = ctx.covisit(src, &[item_key.to_string()]);
    let interests = ctx.vectors()[item]
        .clone()
        .map(|v| vec![(v, 1.0)])
        .unwrap_or_default();
    let user = ctx.signals(interests, &terms);
    let ranked = rank_reading_vectors(
        ctx,
        &user,
        |i| i != item && visible.as_ref().is_none_or(|v| v.contains(&i)),
        k,
        w,
    );
    ranked
        .into_iter()
        .map(|s| (ctx.keys()[s.item].clone(), s.score))
        .collect()
}

/// The catalogs this backend holds for ranking every item (see
/// `catalog::cached`): what a connection keeps beyond one call.
#[pg_extern(volatile, parallel_unsafe)]
#[search_path(pg_catalog, interest, pg_temp)]
fn _cached_catalogs() -> TableIterator<
    'static,
    (
        name!(source_id, i32),
        name!(embeddings, i64),
        name!(bytes, i64),
    ),
> {
    TableIterator::new(catalog::cached_sizes())
}
