//! Settings, all under the reserved prefix `interest.`.

use interest_core::candidates;
use pgrx::guc::{GucContext, GucFlags, GucRegistry, GucSetting};
use std::ffi::CString;

/// Path of libonnxruntime.so; `$libdir` expands to Postgres' package library
/// directory. Superuser-only: it names a file the server will dlopen.
pub static ONNXRUNTIME_LIBRARY: GucSetting<Option<CString>> =
    GucSetting::<Option<CString>>::new(Some(c"$libdir/pg_interest/libonnxruntime.so.1.31.1"));

/// Colon-separated directories that model files may be read from; `$sharedir`
/// expands to Postgres' share directory. Superuser-only.
pub static MODEL_DIR: GucSetting<Option<CString>> =
    GucSetting::<Option<CString>>::new(Some(c"$sharedir/pg_interest/models"));

pub static MAX_TOKENS: GucSetting<i32> = GucSetting::<i32>::new(256);
pub static INTRA_OP_THREADS: GucSetting<i32> = GucSetting::<i32>::new(1);
pub static BATCH_SIZE: GucSetting<i32> = GucSetting::<i32>::new(32);

/// Queued events (from statements of fewer than `interest::DIRECT_APPLY_EVENTS`
/// rows) after which one statement folds the queue into the shared state;
/// 0 applies every statement at once (no queue).
pub static FOLD_BATCH: GucSetting<i32> = GucSetting::<i32>::new(20_000);

/// A small event statement also folds the queue when it was last folded at
/// least this long ago (milliseconds); 0: only FOLD_BATCH counts.
pub static FOLD_INTERVAL_MS: GucSetting<i32> = GucSetting::<i32>::new(5000);

/// The database the queue folder (background worker) works in; empty: no
/// worker, the triggers fold. Needs pg_interest in shared_preload_libraries.
pub static FOLD_DATABASE: GucSetting<Option<CString>> = GucSetting::<Option<CString>>::new(None);

/// Lists an `interest_ivf` scan probes before its first rerank; 0:
/// automatic, 10 at a time up to `interest_core::ivf::automatic_probes`
/// while the steps' lists hold entries near the rows
/// (`interest_core::ivf::search::AutomaticSteps`).
pub static IVF_PROBES: GucSetting<i32> = GucSetting::<i32>::new(0);
/// Rows an `interest_ivf` scan certifies by exact distance per round after
/// the first (`interest_core::ivf::search::round_rows`).
pub static IVF_RERANK: GucSetting<i32> = GucSetting::<i32>::new(40);
/// Lists an `interest_ivf` scan may probe in all (rounds continue while a
/// filter rejects rows); 0: every list.
pub static IVF_MAX_PROBES: GucSetting<i32> = GucSetting::<i32>::new(0);

/// Whether `interest_ivf` scans probe automatically (`interest.ivf_probes` 0).
pub fn ivf_probes_automatic() -> bool {
    IVF_PROBES.get() == 0
}

/// The most lists an `interest_ivf` scan of an index with `lists` lists
/// probes (`interest.ivf_max_probes`; 0: all).
pub fn ivf_list_limit(lists: usize) -> usize {
    match IVF_MAX_PROBES.get().max(0) as usize {
        0 => lists,
        max => max.min(lists),
    }
}

/// Entries an `interest_ivf` scan ranks per round (`interest.ivf_rerank`).
pub fn ivf_rerank() -> usize {
    IVF_RERANK.get().max(1) as usize
}

/// Lists an `interest_ivf` scan of an index with `lists` lists probes at a
/// time: the setting, or the automatic step.
pub fn ivf_probes(lists: usize) -> usize {
    let probes = match IVF_PROBES.get() {
        0 => interest_core::ivf::AUTO_PROBE_STEP,
        n => n as usize,
    };
    probes.min(lists.max(1))
}

/// recommend() ranks the candidates of a source's vector index when it has
/// one (interest.index_items); off: every item, as on small catalogs.
pub static RECOMMEND_CANDIDATES: GucSetting<bool> = GucSetting::<bool>::new(true);
/// Nearest items recommend() asks the vector index for, shared by the
/// user's sub-interests.
pub static CONTENT_CANDIDATES: GucSetting<i32> =
    GucSetting::<i32>::new(candidates::DEFAULT_LIMITS.content as i32);
/// Items the user's recent items lead to by co-visitation that recommend()
/// takes as candidates, strongest first.
pub static COVISIT_CANDIDATES: GucSetting<i32> =
    GucSetting::<i32>::new(candidates::DEFAULT_LIMITS.covisit as i32);

/// The candidate limits of this session (recommend() and evaluate()).
pub fn candidate_limits() -> candidates::CandidateLimits {
    candidates::CandidateLimits {
        content: CONTENT_CANDIDATES.get() as usize,
        covisit: COVISIT_CANDIDATES.get() as usize,
        ..candidates::DEFAULT_LIMITS
    }
}

pub fn init() {
    GucRegistry::define_bool_guc(
        c"interest.recommend_candidates",
        c"recommend() ranks candidates from the source's vector index (interest.index_items) when it has one.",
        c"Off ranks every embedded item of the catalog, as for sources without an index.",
        &RECOMMEND_CANDIDATES,
        GucContext::Userset,
        GucFlags::default(),
    );
    // Bounded: each candidate is one read of its embedding and its counts.
    GucRegistry::define_int_guc(
        c"interest.content_candidates",
        c"Nearest items recommend() asks the vector index for, shared by the user's sub-interests by their weights.",
        c"Used when the source has a vector index (interest.index_items); for lists of up to 10 items, scaled with k beyond; each sub-interest asks at least 20. Fewer reads less per call; evaluate(ablations => true) reports the candidate path under the same setting.",
        &CONTENT_CANDIDATES,
        candidates::MIN_PER_INTEREST as i32,
        candidates::MAX_PER_SOURCE as i32,
        GucContext::Userset,
        GucFlags::default(),
    );
    GucRegistry::define_int_guc(
        c"interest.covisit_candidates",
        c"Items the user's recent items lead to by co-visitation that recommend() takes as candidates, strongest first.",
        c"Used when the source has a vector index (interest.index_items). Fewer reads less per call; evaluate(ablations => true) reports the candidate path under the same setting.",
        &COVISIT_CANDIDATES,
        0,
        candidates::MAX_PER_SOURCE as i32,
        GucContext::Userset,
        GucFlags::default(),
    );
    GucRegistry::define_int_guc(
        c"interest.ivf_probes",
        c"Lists an interest_ivf index scan probes first; 0 chooses from the index's lists.",
        c"More probes: higher recall, slower queries. 0 probes 10 lists at a time, up to an eighth of them (10 to 40) or the more the index's build measured its data needs, while each step finds entries near the rows (or, where the build measured gaps, until as many steps in a row find none as it allows).",
        &IVF_PROBES,
        0,
        16_384,
        GucContext::Userset,
        GucFlags::default(),
    );
    GucRegistry::define_int_guc(
        c"interest.ivf_rerank",
        c"Rows an interest_ivf index scan returns per round after the first (at most 10), each certain by exact distance among the probed entries.",
        c"Entries are ranked exactly in order of their codes' lower bounds until no bound left could beat this many; larger rounds rank more entries.",
        &IVF_RERANK,
        1,
        10_000,
        GucContext::Userset,
        GucFlags::default(),
    );
    GucRegistry::define_int_guc(
        c"interest.ivf_max_probes",
        c"Lists an interest_ivf index scan may probe in all; 0 means every list.",
        c"When a WHERE clause rejects rows the scan probes further lists until LIMIT is met; this caps that search.",
        &IVF_MAX_PROBES,
        0,
        i32::MAX,
        GucContext::Userset,
        GucFlags::default(),
    );
    GucRegistry::define_string_guc(
        c"interest.onnxruntime_library",
        c"Path of the ONNX Runtime shared library (libonnxruntime.so, 1.31 or newer).",
        c"Loaded on the first call to interest.embed in each backend. $libdir expands to the package library directory.",
        &ONNXRUNTIME_LIBRARY,
        GucContext::Suset,
        GucFlags::default(),
    );
    GucRegistry::define_string_guc(
        c"interest.model_dir",
        c"Colon-separated directories that model files are read from.",
        c"interest.register_model refuses files outside these directories. $sharedir expands to the share directory.",
        &MODEL_DIR,
        GucContext::Suset,
        GucFlags::default(),
    );
    GucRegistry::define_int_guc(
        c"interest.max_tokens",
        c"Longest input, in tokens, that interest.embed encodes; longer texts are truncated.",
        c"Capped at the model's own limit (interest.models.max_tokens).",
        &MAX_TOKENS,
        2,
        8192,
        GucContext::Userset,
        GucFlags::default(),
    );
    GucRegistry::define_int_guc(
        c"interest.intra_op_threads",
        c"Threads ONNX Runtime uses inside one inference call.",
        c"Read when a backend loads a model; 1 keeps each backend on one core. Superuser only: each thread is a core taken from every other session.",
        &INTRA_OP_THREADS,
        1,
        64,
        GucContext::Suset,
        GucFlags::default(),
    );
    GucRegistry::define_int_guc(
        c"interest.batch_size",
        c"Texts per inference call when interest.embed(text[]) embeds many texts.",
        c"Texts are sorted by length and padded per batch to the longest one; a batch is cut smaller so its padded tokens and attention scores stay bounded (interest_core::encoder::MAX_BATCH_TOKENS, MAX_ATTENTION_CELLS).",
        &BATCH_SIZE,
        1,
        4096,
        GucContext::Userset,
        GucFlags::default(),
    );
    GucRegistry::define_int_guc(
        c"interest.fold_batch",
        c"Queued events after which a small event statement folds the queue into the shared interest state.",
        c"Small statements only queue their events (user_vector, interests and recommend see them at once); every fold_batch events one statement folds them all. 0 applies every statement at once.",
        &FOLD_BATCH,
        0,
        1_000_000,
        GucContext::Userset,
        GucFlags::default(),
    );
    GucRegistry::define_int_guc(
        c"interest.fold_interval",
        c"A small event statement also folds the queue when it was last folded at least this long ago.",
        c"Keeps counts and co-visitation links of a quiet table current; 0 folds only every interest.fold_batch events.",
        &FOLD_INTERVAL_MS,
        0,
        86_400_000,
        GucContext::Userset,
        GucFlags::UNIT_MS,
    );
    GucRegistry::define_string_guc(
        c"interest.fold_database",
        c"Database whose event queues a background worker folds (needs pg_interest in shared_preload_libraries).",
        c"Empty: no worker; the first small event statement after interest.fold_batch events or interest.fold_interval folds instead.",
        &FOLD_DATABASE,
        // (Postmaster context cannot be defined when the library is loaded
        // after startup; the worker reads it once, at server start.)
        GucContext::Sighup,
        GucFlags::default(),
    );
    // SAFETY: called from _PG_init with a static C string.
    unsafe { pgrx::pg_sys::MarkGUCPrefixReserved(c"interest".as_ptr()) };
}

pub fn string_setting(setting: &GucSetting<Option<CString>>) -> String {
    setting
        .get()
        .map(|c| c.to_string_lossy().into_owned())
        .unwrap_or_default()
}
