//! Diesel table definitions: the output of `diesel print-schema` run against the migrated PostgreSQL schema (see `diesel.toml`).
// @generated automatically by Diesel CLI.

diesel::table! {
    email_addresses (id) {
        id -> Int8,
        user_id -> Int8,
        email -> Text,
        email_lower -> Text,
        verified -> Bool,
        primary -> Bool,
    }
}

diesel::table! {
    mail_outbox (id) {
        id -> Int8,
        created_at -> Int8,
        to_addr -> Text,
        subject -> Text,
        body_text -> Text,
        body_html -> Nullable<Text>,
        attempts -> Int4,
        next_attempt_at -> Int8,
        sent_at -> Nullable<Int8>,
        last_error -> Nullable<Text>,
    }
}

diesel::table! {
    mfa_authenticators (id) {
        id -> Int8,
        user_id -> Int8,
        #[sql_name = "type"]
        type_ -> Text,
        data -> Text,
        created_at -> Int8,
        last_used_at -> Nullable<Int8>,
        last_step -> Nullable<Int8>,
        version -> Int8,
    }
}

diesel::table! {
    phone_numbers (user_id) {
        user_id -> Int8,
        phone -> Text,
        verified -> Bool,
        created_at -> Int8,
    }
}

diesel::table! {
    rate_limit_hits (action, key, window_start) {
        action -> Text,
        key -> Text,
        window_start -> Int8,
        count -> Int4,
        expires_at -> Int8,
    }
}

diesel::table! {
    refresh_tokens (jti) {
        jti -> Text,
        session_id -> Int8,
        expires_at -> Int8,
    }
}

diesel::table! {
    sessions (id) {
        id -> Int8,
        key_hash -> Text,
        user_id -> Nullable<Int8>,
        client -> Text,
        data -> Text,
        created_at -> Int8,
        expires_at -> Int8,
        last_seen_at -> Int8,
        ip -> Nullable<Text>,
        user_agent -> Nullable<Text>,
        version -> Int8,
    }
}

diesel::table! {
    sms_outbox (id) {
        id -> Int8,
        to_number -> Text,
        body -> Text,
        kind -> Text,
        created_at -> Int8,
        next_attempt_at -> Int8,
        attempts -> Int4,
        last_error -> Nullable<Text>,
        sent_at -> Nullable<Int8>,
    }
}

diesel::table! {
    social_accounts (id) {
        id -> Int8,
        user_id -> Int8,
        provider -> Text,
        uid -> Text,
        extra_data -> Text,
        date_joined -> Int8,
        last_login -> Int8,
    }
}

diesel::table! {
    social_tokens (id) {
        id -> Int8,
        account_id -> Int8,
        client_id -> Text,
        token -> Text,
        token_secret -> Text,
        expires_at -> Nullable<Int8>,
    }
}

diesel::table! {
    webhook_outbox (id) {
        id -> Int8,
        event_id -> Text,
        event_type -> Text,
        endpoint -> Text,
        body -> Text,
        created_at -> Int8,
        next_attempt_at -> Int8,
        attempts -> Int4,
        last_error -> Nullable<Text>,
        delivered_at -> Nullable<Int8>,
    }
}

diesel::table! {
    users (id) {
        id -> Int8,
        username -> Nullable<Text>,
        username_lower -> Nullable<Text>,
        password_hash -> Nullable<Text>,
        is_active -> Bool,
        date_joined -> Int8,
        last_login -> Nullable<Int8>,
        first_name -> Text,
        last_name -> Text,
    }
}

diesel::joinable!(email_addresses -> users (user_id));
diesel::joinable!(mfa_authenticators -> users (user_id));
diesel::joinable!(phone_numbers -> users (user_id));
diesel::joinable!(refresh_tokens -> sessions (session_id));
diesel::joinable!(sessions -> users (user_id));
diesel::joinable!(social_accounts -> users (user_id));
diesel::joinable!(social_tokens -> social_accounts (account_id));

diesel::allow_tables_to_appear_in_same_query!(
    email_addresses,
    mail_outbox,
    mfa_authenticators,
    phone_numbers,
    rate_limit_hits,
    refresh_tokens,
    sessions,
    sms_outbox,
    social_accounts,
    social_tokens,
    users,
    webhook_outbox,
);
