-- Shared by every test file (pg_regress runs this one first): err(q) runs a
-- statement and returns "SQLSTATE: message | detail | hint", or 'no error'.
CREATE SCHEMA regress;
CREATE FUNCTION regress.err(q text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE d text; h text;
BEGIN
  EXECUTE q;
  RETURN 'no error';
EXCEPTION WHEN OTHERS THEN
  GET STACKED DIAGNOSTICS d = PG_EXCEPTION_DETAIL, h = PG_EXCEPTION_HINT;
  RETURN SQLSTATE || ': ' || SQLERRM || ' | ' || coalesce(d, '') || ' | ' || coalesce(h, '');
END $$;
GRANT USAGE ON SCHEMA regress TO PUBLIC;
SELECT regress.err('SELECT 1') AS ok, regress.err('SELECT 1/0') AS division;
