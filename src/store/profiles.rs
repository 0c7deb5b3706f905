//! `user_profiles`: text profiles for cold start, each acting as one event
//! at the time it was set.

use crate::embedding_type::Embedding;
use crate::spi::{exec, spi_error};
use interest_core::interest_state::StateEvent;
use pgrx::prelude::*;

/// The profiles of `users` (`None`: every user of the source) as state events.
pub(crate) fn load(source_id: i32, users: Option<&[String]>) -> Vec<(String, StateEvent)> {
    Spi::connect(|c| {
        let t = c.select(
            "SELECT user_key, embedding, set_at FROM interest.user_profiles \
             WHERE source_id = $1 AND ($2::text[] IS NULL OR user_key IN (SELECT unnest($2)))",
            None,
            &[source_id.into(), users.map(|u| u.to_vec()).into()],
        )?;
        t.map(|r| {
            let event = StateEvent {
                vector: r
                    .get::<Embedding>(2)?
                    .map(Embedding::into_vec)
                    .unwrap_or_default(),
                weight: 1.0,
                t: r.get::<f64>(3)?.unwrap_or(0.0),
            };
            Ok((r.get::<String>(1)?.unwrap_or_default(), event))
        })
        .collect::<Result<Vec<_>, pgrx::spi::Error>>()
    })
    .unwrap_or_else(|e| spi_error(e))
}

pub(crate) fn upsert(source_id: i32, user_key: &str, text: &str, vector: Vec<f32>) {
    exec(
        "INSERT INTO interest.user_profiles (source_id, user_key, profile, embedding, set_at) \
         VALUES ($1, $2, $3, $4, extract(epoch FROM now())) \
         ON CONFLICT (source_id, user_key) DO UPDATE \
         SET profile = excluded.profile, embedding = excluded.embedding, set_at = excluded.set_at",
        &[
            source_id.into(),
            user_key.into(),
            text.into(),
            Embedding::new(vector).into(),
        ],
    );
}

pub(crate) fn remove(source_id: i32, user_key: &str) {
    exec(
        "DELETE FROM interest.user_profiles WHERE source_id = $1 AND user_key = $2",
        &[source_id.into(), user_key.into()],
    );
}
