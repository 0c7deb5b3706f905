//! The hand-written install SQL (`sql/`), one file per concern, in install
//! order. pgrx places each block by its `requires` (Rust functions by path,
//! other blocks by name); `bootstrap` runs first and `finalize` last.

// The type shell, its I/O functions and the type: before any function that uses it.
pgrx::extension_sql_file!("../sql/bootstrap.sql", name = "bootstrap", bootstrap);
// Bookkeeping tables, indexes, the event queue's policy, grants and table COMMENTs.
pgrx::extension_sql_file!("../sql/schema.sql", name = "schema");
// Operators, casts, aggregates and the type's COMMENTs: after the functions they name.
pgrx::extension_sql_file!(
    "../sql/type_objects.sql",
    name = "type_objects",
    requires = [
        embedding_type::embedding_coerce,
        embedding_type::real_array_to_embedding,
        embedding_type::double_array_to_embedding,
        embedding_type::integer_array_to_embedding,
        embedding_type::embedding_to_real_array,
        operators::cosine_distance,
        operators::inner_product,
        operators::negative_inner_product,
        operators::l2_distance,
        operators::norm,
        operators::dims,
        operators::normalize,
        operators::l2_normalize,
        operators::embedding_add,
        operators::embedding_sub,
        operators::embedding_mul,
        operators::scalar_mul_embedding,
        operators::embedding_accum,
        operators::embedding_combine,
        operators::embedding_avg_final,
        operators::embedding_sum_final,
    ]
);
// The model registry (table, built-in row, rights) and the encoder functions' COMMENTs.
pgrx::extension_sql_file!(
    "../sql/models.sql",
    name = "models",
    requires = [
        embed::embed,
        embed::embed_array,
        embed::register_model,
        embed::unregister_model,
        embed::loaded_models,
    ]
);
// The interest_ivf access method and its operator classes.
pgrx::extension_sql_file!(
    "../sql/ivf.sql",
    name = "ivf",
    requires = [
        "type_objects",
        ivf::interest_ivf_handler,
        synthetic::synthetic_vectors
    ]
);
// attach/detach, backfill_items and their helpers (PL/pgSQL over the bookkeeping tables).
pgrx::extension_sql_file!("../sql/attach.sql", name = "attach", requires = ["schema"]);
// The public SQL API, views and plan settings: last, after every Rust function.
pgrx::extension_sql_file!("../sql/api.sql", name = "api", finalize);
