DROP TABLE social_tokens;
DROP TABLE social_accounts;
