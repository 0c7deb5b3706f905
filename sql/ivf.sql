-- The interest_ivf index access method and its operator classes.
CREATE ACCESS METHOD interest_ivf TYPE INDEX HANDLER interest.interest_ivf_handler;
COMMENT ON ACCESS METHOD interest_ivf IS 'Approximate nearest-neighbour index for interest.embedding: inverted lists with RaBitQ 1-bit codes and exact rerank. ORDER BY e <=> q LIMIT k uses it; settings interest.ivf_probes, interest.ivf_rerank, interest.ivf_max_probes.';

CREATE OPERATOR CLASS interest.embedding_cosine_ops
    DEFAULT FOR TYPE interest.embedding USING interest_ivf AS
    OPERATOR 1 interest.<=> (interest.embedding, interest.embedding) FOR ORDER BY pg_catalog.float_ops,
    FUNCTION 1 interest.cosine_distance(interest.embedding, interest.embedding);
CREATE OPERATOR CLASS interest.embedding_ip_ops
    FOR TYPE interest.embedding USING interest_ivf AS
    OPERATOR 1 interest.<#> (interest.embedding, interest.embedding) FOR ORDER BY pg_catalog.float_ops,
    FUNCTION 1 interest.negative_inner_product(interest.embedding, interest.embedding);
CREATE OPERATOR CLASS interest.embedding_l2_ops
    FOR TYPE interest.embedding USING interest_ivf AS
    OPERATOR 1 interest.<-> (interest.embedding, interest.embedding) FOR ORDER BY pg_catalog.float_ops,
    FUNCTION 1 interest.l2_distance(interest.embedding, interest.embedding);

COMMENT ON FUNCTION interest.interest_ivf_handler(internal) IS 'Handler of the interest_ivf index access method.';
COMMENT ON OPERATOR CLASS interest.embedding_cosine_ops USING interest_ivf IS 'Cosine distance (<=>), the default.';
COMMENT ON OPERATOR CLASS interest.embedding_ip_ops USING interest_ivf IS 'Negative inner product (<#>).';
COMMENT ON OPERATOR CLASS interest.embedding_l2_ops USING interest_ivf IS 'Euclidean distance (<->).';
COMMENT ON FUNCTION interest.synthetic_vectors(bigint, integer, integer, double precision, bigint) IS 'Clustered unit vectors (random centres plus Gaussian noise of the given length; the same centres for every seed, so another seed gives queries from the same clusters), for trying and benchmarking interest_ivf indexes.';
CREATE FUNCTION interest.ivf_info(index regclass)
RETURNS TABLE (format_version integer, dimensions integer, metric text, lists integer, entries bigint, pages bigint, automatic_probes integer, automatic_quiet_steps integer)
LANGUAGE sql STRICT STABLE SET search_path = pg_catalog, pg_temp AS $$ SELECT * FROM interest._ivf_info($1::oid) $$;
COMMENT ON FUNCTION interest._ivf_info(oid) IS 'Implementation of interest.ivf_info.';
COMMENT ON FUNCTION interest.ivf_info(regclass) IS 'What an interest_ivf index holds: its page format version, dimensions, metric, lists, live entries and pages, and the most lists a scan probes under automatic probes (interest.ivf_probes = 0; more than an eighth of the lists when the build measured that the data needs them), and how many steps of 10 lists in a row that reach no row end such a scan (more than one where the build measured gaps between the lists holding neighbours).';
