//! evaluate(): reads the events table as it is and runs
//! `interest_core::evaluation` (the live ranking code) over it.

use crate::errors::raise;
use crate::privileges::with_extension_rights;
use crate::recommend::{check_k, weights};
use crate::sources::{decode_event, readable_event_source};
use crate::spi::spi_error;
use crate::store::{catalog, covisit};
use interest_core::evaluation::{self, EvalConfig, EvalEvent, Protocol};
use interest_core::events::DEFAULT_WEIGHT;
use interest_core::ranking::RankWeights;
use interest_core::signals::FRESHNESS_HALF_LIFE_SECS;
use interest_core::weights::WeightOverrides;
use pgrx::prelude::*;
use pgrx::PgSqlErrorCode;
use std::collections::HashMap;

#[allow(clippy::too_many_arguments)]
#[pg_extern(volatile, parallel_unsafe)]
#[search_path(pg_catalog, interest)]
fn _evaluate(
    source_id: i32,
    k: i32,
    holdout: i32,
    content: Option<f64>,
    covisit: Option<f64>,
    popularity: Option<f64>,
    freshness: Option<f64>,
    diversity: Option<f64>,
    ablations: bool,
    balance: Option<f64>,
    new_items: f64,
    protocol: &str,
    time_cut: f64,
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
    with_extension_rights(|| {
        let k = check_k(k);
        if !(1..=10).contains(&holdout) {
            raise(
                PgSqlErrorCode::ERRCODE_INVALID_PARAMETER_VALUE,
                "holdout must be between 1 and 10",
                format!("Got holdout => {holdout}."),
                "1 tests on each user's last event; 2 validates on the second-to-last (the last is never seen).",
            );
        }
        let protocol = match protocol {
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
                "evaluate() knows the protocols leave-last-out and time.",
                "Use protocol => 'leave-last-out' (each user's last event) or protocol => 'time' (a global time cut).",
            ),
        };
        if !(0.0..1.0).contains(&new_items) {
            raise(
                PgSqlErrorCode::ERRCODE_INVALID_PARAMETER_VALUE,
                "new_items must be at least 0 and less than 1",
                format!("Got new_items => {new_items}."),
                "It is the share of the items made new for the new-item protocol, for example 0.1; 0 skips it.",
            );
        }
        let w = weights(
            RankWeights::default(),
            WeightOverrides {
                content,
                covisit,
                popularity,
                freshness,
                diversity,
                balance,
            },
        );
        let src = readable_event_source(source_id);
        if crate::privileges::rls_limits_caller(src.relid) {
            crate::errors::raise(
                pgrx::PgSqlErrorCode::ERRCODE_INSUFFICIENT_PRIVILEGE,
                format!(
                    "row-level security limits what you may read of {}",
                    src.relname
                ),
                "evaluate() replays every user's events, not only the rows your policies show you.",
                "Run it as the table's owner or a role with BYPASSRLS.",
            );
        }
        // Catalog: the embedded items, plus items that only have events.
        let (mut keys, mut vectors): (Vec<String>, Vec<Option<Vec<f32>>>) = match src.item_source_id
        {
            Some(item_source) => {
                let c = catalog::cached(item_source);
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
            "SELECT {}, NULL::interest.embedding AS embedding FROM {} ORDER BY user_key, t, ctid",
            src.select_list, src.relname
        );
        let mut users: Vec<Vec<EvalEvent>> = Vec::new();
        let mut last_user: Option<String> = None;
        // Read as the table's owner (src/owner_read.rs): the select list is theirs.
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
        let cfg = EvalConfig {
            k,
            protocol,
            holdout: holdout as usize,
            weights: w,
            interest: src.params,
            covisit: covisit::params(),
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
