-- One active Basic method per username in a project: a presented username then names
-- exactly one password hash, so a wrong password costs one argon2 verification whether
-- or not the username exists, and throttling caps the work per client. Methods
-- scheduled for deletion leave the index, so a revoked username can be reissued.
CREATE UNIQUE INDEX webhook_auth_methods_username_key
    ON webhook_auth_methods (project_id, username)
    WHERE auth_type = 'basic' AND scheduled_deletion IS NULL;
