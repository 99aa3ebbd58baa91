-- Triggers, webhook auth methods, their attachments and the audit trail.
-- The database refuses bad states itself: one name per project, one API key per
-- project, attachments only within one project, exactly the secret columns the
-- auth type needs.

CREATE TABLE triggers (
    id            uuid PRIMARY KEY,
    project_id    uuid NOT NULL,
    enabled       boolean NOT NULL DEFAULT true,
    auth_required boolean NOT NULL DEFAULT false,
    upstream_url  text,
    inserted_at   timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT triggers_id_project_key UNIQUE (id, project_id)
);

CREATE TABLE webhook_auth_methods (
    id                 uuid PRIMARY KEY,
    project_id         uuid NOT NULL,
    name               text NOT NULL,
    auth_type          text NOT NULL,
    username           text,
    password_hash      text,
    api_key_sha256     bytea,
    api_key_hint       text,
    -- Bumped whenever a verifier changes; part of the verified-credential cache key.
    version            bigint NOT NULL DEFAULT 1,
    scheduled_deletion timestamptz,
    inserted_at        timestamptz NOT NULL DEFAULT now(),
    updated_at         timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT webhook_auth_methods_name_key UNIQUE (project_id, name),
    CONSTRAINT webhook_auth_methods_api_key_key UNIQUE (project_id, api_key_sha256),
    CONSTRAINT webhook_auth_methods_id_project_key UNIQUE (id, project_id),
    CONSTRAINT webhook_auth_methods_name_length
        CHECK (char_length(name) BETWEEN 1 AND 255),
    CONSTRAINT webhook_auth_methods_auth_type CHECK (auth_type IN ('basic', 'api')),
    CONSTRAINT webhook_auth_methods_secret_columns CHECK (
        (auth_type = 'basic'
            AND username IS NOT NULL AND password_hash IS NOT NULL
            AND api_key_sha256 IS NULL AND api_key_hint IS NULL)
        OR
        (auth_type = 'api'
            AND api_key_sha256 IS NOT NULL AND octet_length(api_key_sha256) = 32
            AND api_key_hint IS NOT NULL
            AND username IS NULL AND password_hash IS NULL)
    )
);

CREATE INDEX webhook_auth_methods_scheduled_deletion_idx
    ON webhook_auth_methods (scheduled_deletion)
    WHERE scheduled_deletion IS NOT NULL;

CREATE TABLE trigger_auth_methods (
    trigger_id     uuid NOT NULL,
    auth_method_id uuid NOT NULL,
    project_id     uuid NOT NULL,
    inserted_at    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (trigger_id, auth_method_id),
    CONSTRAINT trigger_auth_methods_trigger_fkey FOREIGN KEY (trigger_id, project_id)
        REFERENCES triggers (id, project_id) ON DELETE CASCADE,
    CONSTRAINT trigger_auth_methods_method_fkey FOREIGN KEY (auth_method_id, project_id)
        REFERENCES webhook_auth_methods (id, project_id) ON DELETE CASCADE
);

CREATE INDEX trigger_auth_methods_method_idx ON trigger_auth_methods (auth_method_id);

CREATE TABLE audit_events (
    seq         bigserial PRIMARY KEY,
    id          uuid NOT NULL UNIQUE,
    item_type   text NOT NULL,
    item_id     uuid NOT NULL,
    event       text NOT NULL,
    actor_id    uuid,
    actor_name  text,
    changes     jsonb NOT NULL,
    inserted_at timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX audit_events_item_idx ON audit_events (item_id, seq DESC);
