-- Phone numbers (allauth leaves their storage to the project's adapter):
-- at most one per user, in E.164 form, and one user per number, verified
-- or not. A number being switched to by a signed-in user is not stored
-- until its code is typed back (the session keeps it meanwhile).
CREATE TABLE phone_numbers (
    user_id BIGINT PRIMARY KEY NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    phone TEXT NOT NULL,
    verified BOOLEAN NOT NULL DEFAULT FALSE,
    -- Unix epoch milliseconds.
    created_at BIGINT NOT NULL
);
CREATE UNIQUE INDEX phone_numbers_phone_key ON phone_numbers (phone);
