-- interest.embedding: same layout as pgvector's vector (see src/embedding_type.rs).
CREATE TYPE interest.embedding;

CREATE FUNCTION interest.embedding_in(cstring, oid, integer) RETURNS interest.embedding
    IMMUTABLE STRICT PARALLEL SAFE LANGUAGE C AS 'MODULE_PATHNAME', 'embedding_in_wrapper';
CREATE FUNCTION interest.embedding_out(interest.embedding) RETURNS cstring
    IMMUTABLE STRICT PARALLEL SAFE LANGUAGE C AS 'MODULE_PATHNAME', 'embedding_out_wrapper';
CREATE FUNCTION interest.embedding_typmod_in(cstring[]) RETURNS integer
    IMMUTABLE STRICT PARALLEL SAFE LANGUAGE C AS 'MODULE_PATHNAME', 'embedding_typmod_in_wrapper';
CREATE FUNCTION interest.embedding_recv(internal, oid, integer) RETURNS interest.embedding
    IMMUTABLE STRICT PARALLEL SAFE LANGUAGE C AS 'MODULE_PATHNAME', 'embedding_recv_wrapper';
CREATE FUNCTION interest.embedding_send(interest.embedding) RETURNS bytea
    IMMUTABLE STRICT PARALLEL SAFE LANGUAGE C AS 'MODULE_PATHNAME', 'embedding_send_wrapper';

CREATE TYPE interest.embedding (
    INPUT = interest.embedding_in,
    OUTPUT = interest.embedding_out,
    TYPMOD_IN = interest.embedding_typmod_in,
    RECEIVE = interest.embedding_recv,
    SEND = interest.embedding_send,
    STORAGE = external
);
