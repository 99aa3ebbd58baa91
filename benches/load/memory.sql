-- benches/load/run.sh, memory figure: :n triggers, each in a project of its own with
-- one API-key method and one Basic method attached, written straight into Postgres
-- (the admin API would take minutes). Every Basic method carries the real PHC string
-- :'phc', so each cached snapshot holds a full-size verifier. The ids are listed in
-- bench_memory_triggers for the warm-up client; the whole database is dropped after.
\set ON_ERROR_STOP on
BEGIN;
CREATE TABLE bench_memory_triggers (id uuid PRIMARY KEY, project_id uuid NOT NULL);
INSERT INTO bench_memory_triggers
SELECT gen_random_uuid(), gen_random_uuid() FROM generate_series(1, :n);

INSERT INTO triggers (id, project_id, auth_required)
SELECT id, project_id, true FROM bench_memory_triggers;

WITH m AS (
  INSERT INTO webhook_auth_methods (id, project_id, name, auth_type, api_key_sha256, api_key_hint)
  SELECT gen_random_uuid(), project_id, 'api', 'api',
         sha256(convert_to('key-' || id::text, 'UTF8')), right(id::text, 4)
    FROM bench_memory_triggers
  RETURNING id, project_id)
INSERT INTO trigger_auth_methods (trigger_id, auth_method_id, project_id)
SELECT t.id, m.id, m.project_id FROM m JOIN bench_memory_triggers t USING (project_id);

WITH m AS (
  INSERT INTO webhook_auth_methods (id, project_id, name, auth_type, username, password_hash)
  SELECT gen_random_uuid(), project_id, 'basic', 'basic', 'user-' || left(id::text, 8), :'phc'
    FROM bench_memory_triggers
  RETURNING id, project_id)
INSERT INTO trigger_auth_methods (trigger_id, auth_method_id, project_id)
SELECT t.id, m.id, m.project_id FROM m JOIN bench_memory_triggers t USING (project_id);
COMMIT;
ANALYZE;
