//! `event_sources.center`: the point sub-interests are clustered around, the
//! mean embedding of the source's items, fixed at the first event statement
//! that finds items so that incremental maintenance and rebuild agree.
//! Sources without items (free text only) cluster on raw vectors.

use crate::embedding_type::Embedding;
use crate::sources::EventSource;
use crate::spi::{current, extension_cache, one_cached, one_read_cached, ExtensionCache};
use std::rc::Rc;

thread_local! {
    // Per backend: each event source's centre once set (it never changes).
    static CENTERS: ExtensionCache<i32, Rc<Vec<f32>>> = extension_cache();
}

/// The centre for writers: set now if it is not yet and the items table has
/// embeddings; a concurrent first statement waits for ours and then reads
/// our value.
pub(crate) fn fix(src: &EventSource) -> Option<Rc<Vec<f32>>> {
    let item_source = src.item_source_id?;
    if let Some(c) = CENTERS.with(|c| current(c).get(&src.id).cloned()) {
        return Some(c);
    }
    let read = || {
        one_cached::<Embedding>(
            "SELECT center FROM interest.event_sources WHERE id = $1",
            &[src.id.into()],
        )
    };
    let center = match read() {
        Some(c) => c,
        None => {
            let set = one_cached::<Embedding>(
                "UPDATE interest.event_sources \
                 SET center = (SELECT interest.avg(embedding) FROM interest.item_embeddings WHERE source_id = $2) \
                 WHERE id = $1 AND center IS NULL \
                   AND EXISTS (SELECT 1 FROM interest.item_embeddings WHERE source_id = $2) \
                 RETURNING center",
                &[src.id.into(), item_source.into()],
            );
            match set {
                // Not cached until committed: the next statement reads it back.
                Some(c) => return Some(Rc::new(c.into_vec())),
                None => read()?,
            }
        }
    };
    let center = Rc::new(center.into_vec());
    CENTERS.with(|c| current(c).insert(src.id, center.clone()));
    Some(center)
}

/// The centre as `fix` gives it, for readers, which write nothing: before
/// the first fold stores it, the items' mean as it is now.
pub(crate) fn peek(src: &EventSource) -> Option<Rc<Vec<f32>>> {
    let item_source = src.item_source_id?;
    if let Some(c) = CENTERS.with(|c| current(c).get(&src.id).cloned()) {
        return Some(c);
    }
    one_read_cached::<Embedding>(
        "SELECT coalesce(center, (SELECT interest.avg(embedding) FROM interest.item_embeddings WHERE source_id = $2)) \
         FROM interest.event_sources WHERE id = $1",
        &[src.id.into(), item_source.into()],
    )
    .map(|c| Rc::new(c.into_vec()))
}
