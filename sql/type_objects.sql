-- ---------------------------------------------------------------------------
-- type_objects.sql: everything built on interest.embedding and its Rust
-- functions (src/operators.rs, src/embedding_type.rs): operators, casts,
-- aggregates, and the COMMENTs on the type, its I/O functions (bootstrap.sql),
-- the functions, operators and aggregates. Runs after those functions
-- (`requires` in src/sql_install.rs).
-- ---------------------------------------------------------------------------

-- ---------------------------------------------------------------------------
-- Operators: all STRICT, IMMUTABLE, PARALLEL SAFE through their functions.
-- ---------------------------------------------------------------------------
CREATE OPERATOR interest.<=> (
    LEFTARG = interest.embedding, RIGHTARG = interest.embedding,
    FUNCTION = interest.cosine_distance, COMMUTATOR = OPERATOR(interest.<=>)
);
CREATE OPERATOR interest.<#> (
    LEFTARG = interest.embedding, RIGHTARG = interest.embedding,
    FUNCTION = interest.negative_inner_product, COMMUTATOR = OPERATOR(interest.<#>)
);
CREATE OPERATOR interest.<-> (
    LEFTARG = interest.embedding, RIGHTARG = interest.embedding,
    FUNCTION = interest.l2_distance, COMMUTATOR = OPERATOR(interest.<->)
);
CREATE OPERATOR interest.+ (
    LEFTARG = interest.embedding, RIGHTARG = interest.embedding,
    FUNCTION = interest.embedding_add, COMMUTATOR = OPERATOR(interest.+)
);
CREATE OPERATOR interest.- (
    LEFTARG = interest.embedding, RIGHTARG = interest.embedding,
    FUNCTION = interest.embedding_sub
);
CREATE OPERATOR interest.* (
    LEFTARG = interest.embedding, RIGHTARG = double precision,
    FUNCTION = interest.embedding_mul, COMMUTATOR = OPERATOR(interest.*)
);
CREATE OPERATOR interest.* (
    LEFTARG = double precision, RIGHTARG = interest.embedding,
    FUNCTION = interest.scalar_mul_embedding, COMMUTATOR = OPERATOR(interest.*)
);

-- ---------------------------------------------------------------------------
-- Casts: typmod coercion, arrays in and out.
-- ---------------------------------------------------------------------------
CREATE CAST (interest.embedding AS interest.embedding)
    WITH FUNCTION interest.embedding(interest.embedding, integer, boolean) AS IMPLICIT;
CREATE CAST (real[] AS interest.embedding)
    WITH FUNCTION interest.real_array_to_embedding(real[], integer, boolean) AS ASSIGNMENT;
CREATE CAST (double precision[] AS interest.embedding)
    WITH FUNCTION interest.double_array_to_embedding(double precision[], integer, boolean) AS ASSIGNMENT;
CREATE CAST (integer[] AS interest.embedding)
    WITH FUNCTION interest.integer_array_to_embedding(integer[], integer, boolean) AS ASSIGNMENT;
CREATE CAST (interest.embedding AS real[])
    WITH FUNCTION interest.embedding_to_real_array(interest.embedding, integer, boolean) AS ASSIGNMENT;

-- ---------------------------------------------------------------------------
-- Aggregates: state is float8[] {count, sums...}, parallel-combinable.
-- ---------------------------------------------------------------------------
CREATE AGGREGATE interest.avg(interest.embedding) (
    SFUNC = interest.embedding_accum, STYPE = double precision[], INITCOND = '{0}',
    FINALFUNC = interest.embedding_avg_final, COMBINEFUNC = interest.embedding_combine,
    PARALLEL = SAFE
);
CREATE AGGREGATE interest.sum(interest.embedding) (
    SFUNC = interest.embedding_accum, STYPE = double precision[], INITCOND = '{0}',
    FINALFUNC = interest.embedding_sum_final, COMBINEFUNC = interest.embedding_combine,
    PARALLEL = SAFE
);

-- ---------------------------------------------------------------------------
-- Documentation of the type and its functions, operators and aggregates.
-- ---------------------------------------------------------------------------
COMMENT ON TYPE interest.embedding IS
    'Dense float4 vector (1 to 16000 dimensions) with pgvector''s memory layout; text form [1,2,3]; embedding(n) checks the dimension.';
COMMENT ON FUNCTION interest.embedding_in(cstring, oid, integer) IS 'Input function of interest.embedding.';
COMMENT ON FUNCTION interest.embedding_out(interest.embedding) IS 'Output function of interest.embedding.';
COMMENT ON FUNCTION interest.embedding_typmod_in(cstring[]) IS 'Type modifier (dimension) input of interest.embedding.';
COMMENT ON FUNCTION interest.embedding_recv(internal, oid, integer) IS 'Binary input: int16 dim, int16 0, float4 values (big-endian).';
COMMENT ON FUNCTION interest.embedding_send(interest.embedding) IS 'Binary output: int16 dim, int16 0, float4 values (big-endian).';
COMMENT ON FUNCTION interest.embedding(interest.embedding, integer, boolean) IS 'Checks an embedding against a declared dimension embedding(n).';
COMMENT ON FUNCTION interest.real_array_to_embedding(real[], integer, boolean) IS 'Cast real[] to embedding (no NULLs, finite values).';
COMMENT ON FUNCTION interest.double_array_to_embedding(double precision[], integer, boolean) IS 'Cast double precision[] to embedding.';
COMMENT ON FUNCTION interest.integer_array_to_embedding(integer[], integer, boolean) IS 'Cast integer[] to embedding.';
COMMENT ON FUNCTION interest.embedding_to_real_array(interest.embedding, integer, boolean) IS 'Cast embedding to real[].';
COMMENT ON FUNCTION interest.cosine_distance(interest.embedding, interest.embedding) IS 'Cosine distance 1 - cos(a, b), from 0 to 2; NaN when either vector is zero. Operator <=>.';
COMMENT ON FUNCTION interest.inner_product(interest.embedding, interest.embedding) IS 'Inner product a·b.';
COMMENT ON FUNCTION interest.negative_inner_product(interest.embedding, interest.embedding) IS 'Negative inner product -(a·b), so that ascending order ranks the largest product first. Operator <#>.';
COMMENT ON FUNCTION interest.l2_distance(interest.embedding, interest.embedding) IS 'Euclidean distance. Operator <->.';
COMMENT ON FUNCTION interest.norm(interest.embedding) IS 'Euclidean norm.';
COMMENT ON FUNCTION interest.dims(interest.embedding) IS 'Number of dimensions.';
COMMENT ON FUNCTION interest.normalize(interest.embedding) IS 'The embedding scaled to unit length (a zero vector stays zero). Write it schema-qualified: unqualified normalize(x) is SQL syntax for Unicode normalisation.';
COMMENT ON FUNCTION interest.l2_normalize(interest.embedding) IS 'The embedding scaled to unit length (pgvector''s name; no clash with SQL''s NORMALIZE).';
COMMENT ON FUNCTION interest.embedding_add(interest.embedding, interest.embedding) IS 'Element-wise sum. Operator +.';
COMMENT ON FUNCTION interest.embedding_sub(interest.embedding, interest.embedding) IS 'Element-wise difference. Operator -.';
COMMENT ON FUNCTION interest.embedding_mul(interest.embedding, double precision) IS 'Scalar multiple. Operator *.';
COMMENT ON FUNCTION interest.scalar_mul_embedding(double precision, interest.embedding) IS 'Scalar multiple. Operator *.';
COMMENT ON FUNCTION interest.embedding_accum(double precision[], interest.embedding) IS 'State function of avg(embedding) and sum(embedding).';
COMMENT ON FUNCTION interest.embedding_combine(double precision[], double precision[]) IS 'Combine function of avg(embedding) and sum(embedding).';
COMMENT ON FUNCTION interest.embedding_avg_final(double precision[]) IS 'Final function of avg(embedding).';
COMMENT ON FUNCTION interest.embedding_sum_final(double precision[]) IS 'Final function of sum(embedding).';
COMMENT ON AGGREGATE interest.avg(interest.embedding) IS 'Element-wise mean of embeddings (NULLs skipped).';
COMMENT ON AGGREGATE interest.sum(interest.embedding) IS 'Element-wise sum of embeddings (NULLs skipped).';
COMMENT ON OPERATOR interest.<=> (interest.embedding, interest.embedding) IS 'Cosine distance: ORDER BY e <=> q LIMIT k ranks by similarity.';
COMMENT ON OPERATOR interest.<#> (interest.embedding, interest.embedding) IS 'Negative inner product.';
COMMENT ON OPERATOR interest.<-> (interest.embedding, interest.embedding) IS 'Euclidean distance.';
COMMENT ON OPERATOR interest.+ (interest.embedding, interest.embedding) IS 'Element-wise sum.';
COMMENT ON OPERATOR interest.- (interest.embedding, interest.embedding) IS 'Element-wise difference.';
COMMENT ON OPERATOR interest.* (interest.embedding, double precision) IS 'Scalar multiple.';
COMMENT ON OPERATOR interest.* (double precision, interest.embedding) IS 'Scalar multiple.';
