//! evaluate() and tune(): read the events table as it is and run
//! `interest_core::evaluation` / `interest_core::tuning` (the live ranking
//! code) over it.

use crate::errors::{raise, required};
use crate::privileges::{require_owner, with_extension_rights};
use crate::recommend::{check_k, weights};
use crate::sources::{decode_event, readable_event_source, EventSource};
use crate::spi::spi_error;
use crate::store::catalog;
use interest_core::evaluation::{self, EvalConfig, EvalEvent, Protocol};
use interest_core::events::DEFAULT_WEIGHT;
use interest_core::ranking::RankWeights;
use interest_core::signals::FRESHNESS_HALF_LIFE_SECS;
use interest_core::tuning;
use interest_core::weights::WeightOverrides;
use pgrx::prelude::*;
use pgrx::PgSqlErrorCode;
use std::collections::HashMap;
use std::rc::Rc;

/// Item keys, their vectors, and every user's events in time order.
struct Replay {
    keys: Vec<String>,
    vectors: Vec<Option<Vec<f32>>>,
    users: Vec<Vec<EvalEvent>>,
}

/// The source, if the caller may replay all of it: row-level security that
/// hides rows from them would make the figures about someone else's data.
fn replayable_source(source_id: i32, what: &str) -> Rc<EventSource> {
    let src = readable_event_source(source_id);
    if crate::privileges::rls_limits_caller(src.relid) {
        raise(
            PgSqlErrorCode::ERRCODE_INSUFFICIENT_PRIVILEGE,
            format!(
                "row-level security limits what you may read of {}",
                src.relname
            ),
            format!(
                "{what} replays every user's events, not only the rows your policies show you."
            ),
            "Run it as the table's owner or a role with BYPASSRLS.",
        );
    }
    src
}

fn protocol(name: &str, time_cut: f64) -> Protocol {
    match name {
        "leave-last-out" => Protocol::LeaveLastOut,
        "time" if time_cut > 0.0 && time_cut < 1.0 => Protocol::TimeCut { quantile: time_cut },
        "time" => raise(
            PgSqlErrorCode::ERRCODE_INVALID_PARAMETER_VALUE,
            "time_cut must be between 0 and 1 (exclusive)",
            format!("Got time_cut => {time_cut}."),
            "It is the quantile of the event times where replay stops and testing starts, for example 0.8.",
        ),
        other => raise(
            PgSqlErrorCode::ERRCODE_INVALID_PARAMETER_VALUE,
            format!("unknown protocol \"{other}\""),
            "The protocols are leave-last-out and time.",
            "Use protocol => 'leave-last-out' (each user's last event) or protocol => 'time' (a global time cut).",
        ),
    }
}

fn check_holdout(holdout: i32) {
    if !(1..=10).contains(&holdout) {
        raise(
            PgSqlErrorCode::ERRCODE_INVALID_PARAMETER_VALUE,
            "holdout must be between 1 and 10",
            format!("Got holdout => {holdout}."),
            "1 tests on each user's last event; 2 validates on the second-to-last (the last is never seen).",
        );
    }
}

fn config(
    src: &EventSource,
    k: usize,
    protocol: Protocol,
    holdout: i32,
    w: RankWeights,
) -> EvalConfig {
    EvalConfig {
        k,
        protocol,
        holdout: holdout as usize,
        weights: w,
        interest: src.params,
        covisit: src.covisit,
        freshness_half_life_secs: FRESHNESS_HALF_LIFE_SECS,
        ablations: false,
        candidates: crate::gucs::candidate_limits(),
    }
}

/// The catalog (the embedded items, plus items that only have events) and
/// each user's events in time order, ties in table order (ctid), read as
/// the table's owner (src/owner_read.rs): the select list is theirs.
fn read_replay(src: &EventSource) -> Replay {
    let (mut keys, mut vectors): (Vec<String>, Vec<Option<Vec<f32>>>) = match src.item_source_id {
        Some(item_source) => {
            let c = catalog::uncached(item_source);
            (c.keys, c.vectors)
        }
        None => (Vec::new(), Vec::new()),
    };
    let mut index: HashMap<String, usize> = keys
        .iter()
        .enumerate()
        .map(|(i, k)| (k.clone(), i))
        .collect();
    let sql = format!(
        "SELECT {}, NULL::interest.embedding AS embedding FROM {} ORDER BY user_key, t, ctid",
        src.select_list, src.relname
    );
    let mut users: Vec<Vec<EvalEvent>> = Vec::new();
    let mut last_user: Option<String> = None;
    crate::owner_read::as_table_owner(src.relid, || {
        Spi::connect(|c| {
            for r in c.select(&sql, None, &[])? {
                // Every item event, whatever its weight: the protocol's targets.
                let e = decode_event(&r)?;
                let (Some(u), Some(item), Some(t)) = (e.user, e.item, e.t) else {
                    continue;
                };
                let weight = e.weight.unwrap_or(DEFAULT_WEIGHT);
                // Bad values are no events anywhere (`EventRow::check`).
                if !t.is_finite() || !weight.is_finite() {
                    continue;
                }
                let i = *index.entry(item.clone()).or_insert_with(|| {
                    keys.push(item);
                    vectors.push(None);
                    keys.len() - 1
                });
                if last_user.as_deref() != Some(u.as_str()) {
                    users.push(Vec::new());
                    last_user = Some(u);
                }
                if let Some(events) = users.last_mut() {
                    events.push(EvalEvent { item: i, t, weight });
                }
            }
            Ok::<_, pgrx::spi::Error>(())
        })
    })
    .unwrap_or_else(|e| spi_error(e));
    Replay {
        keys,
        vectors,
        users,
    }
}

#[allow(clippy::too_many_arguments, clippy::type_complexity)]
#[pg_extern(volatile, parallel_unsafe)]
#[search_path(pg_catalog, interest, pg_temp)]
fn _evaluate(
    source_id: i32,
    k: Option<i32>,
    holdout: Option<i32>,
    content: Option<f64>,
    covisit: Option<f64>,
    popularity: Option<f64>,
    freshness: Option<f64>,
    diversity: Option<f64>,
    ablations: Option<bool>,
    balance: Option<f64>,
    new_items: Option<f64>,
    protocol_name: Option<&str>,
    time_cut: Option<f64>,
) -> TableIterator<
    'static,
    (
        name!(method, String),
        name!(users, i64),
        name!(hit_rate, f64),
        name!(hit_rate_se, f64),
        name!(ndcg, f64),
        name!(ndcg_se, f64),
        name!(coverage, f64),
        name!(diversity, f64),
    ),
> {
    let k = required(k, "k");
    let holdout = required(holdout, "holdout");
    let ablations = required(ablations, "ablations");
    let new_items = required(new_items, "new_items");
    let protocol_name = required(protocol_name, "protocol");
    let time_cut = required(time_cut, "time_cut");
    with_extension_rights(|| {
        let k = check_k(k);
        check_holdout(holdout);
        let protocol = protocol(protocol_name, time_cut);
        if !(0.0..1.0).contains(&new_items) {
            raise(
                PgSqlErrorCode::ERRCODE_INVALID_PARAMETER_VALUE,
                "new_items must be at least 0 and less than 1",
                format!("Got new_items => {new_items}."),
                "It is the share of the items made new for the new-item protocol, for example 0.1; 0 skips it.",
            );
        }
        let src = replayable_source(source_id, "evaluate()");
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
        let replay = read_replay(&src);
        let cfg = EvalConfig {
            ablations,
            ..config(&src, k, protocol, holdout, w)
        };
        let new_items =
            evaluation::NewItems::from_keys(replay.keys.iter().map(|k| k.as_str()), new_items);
        let rows: Vec<_> = evaluation::evaluate(&replay.users, &replay.vectors, &new_items, &cfg)
            .into_iter()
            .map(|(m, r)| {
                (
                    m,
                    r.users as i64,
                    r.hit_rate,
                    r.hit_rate_se,
                    r.ndcg,
                    r.ndcg_se,
                    r.coverage,
                    r.diversity,
                )
            })
            .collect();
        TableIterator::new(rows)
    })
}

/// The longest budget tune() accepts.
const MAX_TUNE_BUDGET_SECS: f64 = 3_600.0;

#[allow(clippy::type_complexity)]
#[pg_extern(volatile, parallel_unsafe)]
#[search_path(pg_catalog, interest, pg_temp)]
fn _tune(
    source_id: i32,
    k: Option<i32>,
    protocol_name: Option<&str>,
    time_cut: Option<f64>,
    budget_secs: Option<f64>,
    apply: Option<bool>,
) -> TableIterator<
    'static,
    (
        name!(content, f64),
        name!(covisit, f64),
        name!(popularity, f64),
        name!(freshness, f64),
        name!(popularity_half_life_secs, f64),
        name!(hit_rate, f64),
        name!(hit_rate_se, f64),
        name!(ndcg, f64),
        name!(ndcg_se, f64),
        name!(chosen, bool),
    ),
> {
    let k = required(k, "k");
    let protocol_name = required(protocol_name, "protocol");
    let time_cut = required(time_cut, "time_cut");
    let budget_secs = required(budget_secs, "budget");
    let apply = required(apply, "apply");
    with_extension_rights(|| {
        crate::privileges::refuse_in_restricted_operation();
        let k = check_k(k);
        let protocol = protocol(protocol_name, time_cut);
        if !(budget_secs.is_finite() && budget_secs > 0.0 && budget_secs <= MAX_TUNE_BUDGET_SECS) {
            raise(
                PgSqlErrorCode::ERRCODE_INVALID_PARAMETER_VALUE,
                "budget must be more than 0 and at most 1 hour",
                format!("Got {budget_secs} seconds."),
                "For example budget => '3 minutes'; statement_timeout also stops tune().",
            );
        }
        let src = replayable_source(source_id, "tune()");
        if apply {
            require_owner(src.relid, &src.relname, "tune() with apply");
            crate::read_only::require_writable("interest.tune() with apply => true");
        }
        let replay = read_replay(&src);
        let tested = config(&src, k, protocol, 1, src.rank_weights);
        let started = std::time::Instant::now();
        let (trials, best) = tuning::tune(
            &replay.users,
            &replay.vectors,
            &tested,
            src.rank_weights,
            |t, done, total| {
                let elapsed = started.elapsed().as_secs_f64();
                if done == 1 || done % 10 == 0 || done == total {
                    pgrx::notice!(
                        "tune {}: {done} of {total} settings tried ({:.0} s); last: content {} covisit {} popularity {} freshness {}, popularity half-life {:.0} days: HR@{k} {:.4}, NDCG@{k} {:.4}",
                        src.relname, elapsed, t.weights.content, t.weights.covisit, t.weights.popularity,
                        t.weights.freshness, t.popularity_half_life_secs / 86_400.0, t.metrics.hit_rate, t.metrics.ndcg
                    );
                }
                let go_on = elapsed < budget_secs;
                if !go_on && done < total {
                    pgrx::notice!(
                        "tune {}: the budget of {budget_secs:.0} s is spent after {done} of {total} settings; the best so far is chosen",
                        src.relname
                    );
                }
                go_on
            },
        );
        if apply {
            let chosen = &trials[best];
            store_weights(
                source_id,
                &chosen.weights,
                Some((protocol_name, &chosen.metrics)),
            );
            if chosen.popularity_half_life_secs != src.covisit.popularity_half_life_secs {
                pgrx::notice!(
                    "tune {}: popularity's half-life becomes {:.0} days; recomputing the table's counts",
                    src.relname,
                    chosen.popularity_half_life_secs / 86_400.0
                );
                crate::spi::exec(
                    "UPDATE interest.event_sources SET popularity_half_life = make_interval(secs => $2) WHERE id = $1",
                    &[source_id.into(), chosen.popularity_half_life_secs.into()],
                );
                crate::sources::forget_cached_event_source(source_id);
                crate::locks::lock_source_exclusive(source_id);
                crate::ingest::replay_all(&crate::sources::load_event_source(source_id));
            }
        }
        let rows: Vec<_> = trials
            .iter()
            .enumerate()
            .map(|(i, t)| {
                (
                    t.weights.content,
                    t.weights.covisit,
                    t.weights.popularity,
                    t.weights.freshness,
                    t.popularity_half_life_secs,
                    t.metrics.hit_rate,
                    t.metrics.hit_rate_se,
                    t.metrics.ndcg,
                    t.metrics.ndcg_se,
                    i == best,
                )
            })
            .collect();
        TableIterator::new(rows)
    })
}

/// Pins the table's weights by hand (NULL keeps a weight's default), as if
/// tune() had chosen them; owner only.
#[pg_extern(volatile, parallel_unsafe)]
#[search_path(pg_catalog, interest, pg_temp)]
fn _set_weights(
    source_id: i32,
    content: Option<f64>,
    covisit: Option<f64>,
    popularity: Option<f64>,
    freshness: Option<f64>,
) -> bool {
    with_extension_rights(|| {
        crate::privileges::refuse_in_restricted_operation();
        let src = readable_event_source(source_id);
        require_owner(src.relid, &src.relname, "set_weights()");
        crate::read_only::require_writable("interest.set_weights()");
        let w = weights(
            RankWeights::default(),
            WeightOverrides {
                content,
                covisit,
                popularity,
                freshness,
                ..Default::default()
            },
        );
        store_weights(source_id, &w, None);
        true
    })
}

/// Stores the table's weights, with the validation figures they were chosen by.
fn store_weights(
    source_id: i32,
    w: &RankWeights,
    validation: Option<(&str, &interest_core::metrics::Metrics)>,
) {
    crate::spi::exec(
        "UPDATE interest.event_sources SET tuned_at = now(), rank_weights = jsonb_build_object( \
           'content', $2::float8, 'covisit', $3::float8, 'popularity', $4::float8, 'freshness', $5::float8) \
           || CASE WHEN $6::text IS NULL THEN '{}'::jsonb ELSE jsonb_build_object('validation', \
                jsonb_build_object('protocol', $6::text, 'hit_rate', $7::float8, 'ndcg', $8::float8, 'users', $9::int8)) END \
         WHERE id = $1",
        &[
            source_id.into(),
            w.content.into(),
            w.covisit.into(),
            w.popularity.into(),
            w.freshness.into(),
            validation.map(|v| v.0).into(),
            validation.map(|v| v.1.hit_rate).into(),
            validation.map(|v| v.1.ndcg).into(),
            validation.map(|v| v.1.users as i64).into(),
        ],
    );
    crate::sources::forget_cached_event_source(source_id);
}

/// Forgets the weights tune() chose: recommend() goes back to the defaults.
#[pg_extern(volatile, parallel_unsafe)]
#[search_path(pg_catalog, interest, pg_temp)]
fn _use_default_weights(source_id: i32) -> bool {
    with_extension_rights(|| {
        crate::privileges::refuse_in_restricted_operation();
        let src = readable_event_source(source_id);
        require_owner(src.relid, &src.relname, "use_default_weights()");
        crate::read_only::require_writable("interest.use_default_weights()");
        crate::spi::exec(
            "UPDATE interest.event_sources SET rank_weights = NULL, tuned_at = NULL WHERE id = $1",
            &[source_id.into()],
        );
        crate::sources::forget_cached_event_source(source_id);
        true
    })
}
